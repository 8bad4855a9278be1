"""Model serving: a FastAPI app over a verified bundle (see docs/serve.md).

``app`` (endpoints), ``formats`` (MLflow JSON formats and CSV -> validated frames),
``oip`` (Open Inference Protocol v2 requests), ``feedback`` (labels), ``openapi`` (the
document, from the signature), ``model`` (the served model and its swappable holder),
``requestlog`` (request and feedback logs), ``metrics`` (Prometheus), ``deployment`` (the
folder ``--follow`` watches), ``follow`` (sources and the reloader), ``state`` (one
process's parts), ``server`` (uvicorn), ``simulate`` (traffic), ``cli`` (commands).
"""
