"""The OpenAPI document of the model server, generated from the served model's signature.

Request bodies are read as raw bytes (the fast path parses them itself), so their schemas
are declared here: each JSON scoring format and CSV, with column names, types and allowed
categories taken from the signature, and an example built from the bundle's reference
rows. The document is rebuilt when a different model is swapped in.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gitml.data.dates import iso
from gitml.serve.formats import ARROW_STREAM, CSV_TYPES
from gitml.serve.oip import BINARY_MEDIA
from gitml.serve.request_schemas import csv_pattern, feedback_schemas, ref, signature_schemas


class Prediction(BaseModel):
    prediction: Any = Field(description="The predicted class.")
    probabilities: dict[str, float | None] = Field(description=(
        "Probability of each class, keyed by class as text; null where the model's output is not a finite "
        "number (inputs far outside the data it was trained on, e.g. 1e39 for a float32 network)."))


class InvocationResponse(BaseModel):
    predictions: list[Prediction] = Field(description="One entry per input row, in input order.")
    model_version: str
    request_id: str = Field(description="Also in the x-request-id header; quote it on POST /feedback.")


class Problem(BaseModel):
    field: str = Field(description="Column, tensor or key at fault; (batch) or (body) for the whole request.")
    message: str


class ErrorResponse(BaseModel):
    error_code: str = Field(description="BAD_REQUEST, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, NOT_FOUND, "
                            "INTERNAL_ERROR")
    message: str
    problems: list[Problem] = Field(default_factory=list)
    error: str | None = Field(None, description="On /v2 routes: the message and the first "
                              "problems, under the Open Inference Protocol's key.")


class FeedbackResponse(BaseModel):
    accepted: int = Field(description="Labels appended to the feedback log.")


class V2Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class V2InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    outputs: list[V2Tensor]


# The answer of one row of a regression model (in place of Prediction's class and probabilities).
NUMBER_PREDICTION = {"title": "Prediction", "type": "object", "required": ["prediction"], "additionalProperties": False,
                     "properties": {"prediction": {"anyOf": [{"type": "number"}, {"type": "null"}], "description": (
                         "The predicted number; null where the model's output is not a finite number (inputs far "
                         "outside the data it was trained on)")}}}
MODELS = (InvocationResponse, ErrorResponse, FeedbackResponse, V2Tensor, V2InferResponse)
ERRORS = {
    "400": "Malformed body or input that does not match the signature (field-level problems).",
    "404": "No such model or version: this server serves one model, named in the message.",
    "408": "The body did not arrive within serve.body_timeout_seconds.",
    "413": "Body over serve.max_body_bytes or batch over serve.max_batch_rows.",
    "415": "Content type the endpoint does not take (see its request body).",
}
POST_ERRORS = ("400", "408", "413", "415")  # what reading and parsing any body can answer
MODEL_ERRORS = ("400", "404")  # routes naming a model (and version) in the path

def error_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    return {code: {"description": ERRORS[code], "content": {"application/json": {"schema": ref("ErrorResponse")}}}
            for code in codes}


def build_openapi(base: dict[str, Any], model: Any, max_rows: int = 10_000,
                  feedback_auth: bool = False) -> dict[str, Any]:
    """Add the signature's request schemas and examples to FastAPI's generated document.

    ``max_rows`` is serve.max_batch_rows: no request has more rows, so no feedback row is past it.
    ``feedback_auth``: /feedback wants a bearer token (serve.feedback_token_env is set).
    """
    schemas = base.setdefault("components", {}).setdefault("schemas", {})
    for cls in MODELS:
        spec = cls.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(spec.pop("$defs", {}))
        schemas[cls.__name__] = spec
    if model.regression:  # the answer of a row is a number, with no classes
        schemas["Prediction"] = NUMBER_PREDICTION
    schemas.update(signature_schemas(model, max_rows))
    _ignored_inputs(schemas, model)
    schemas.update(feedback_schemas(model, max_rows))
    example_row = _example_row(model)
    paths = base.get("paths", {})
    _document_errors(paths, schemas)
    _served_names(paths, model)
    invocations = paths.get("/invocations", {}).get("post")
    if invocations is not None:
        invocations["requestBody"] = invocation_body(model, example_row, max_rows)
    for path, item in paths.items():
        if path.endswith("/infer") and "post" in item:
            _infer_operation(item["post"], model, example_row)
    feedback = paths.get("/feedback", {}).get("post")
    if feedback is not None:
        _feedback_operation(base, feedback, model, feedback_auth)
    return base


def _ignored_inputs(schemas: dict[str, Any], model: Any) -> None:
    """The data contract's excluded columns (ids; dates in older contracts) as optional, ignored properties.

    Listed rather than left out: a client generated from this document may then send rows as
    the source data has them, which the server takes (it drops those columns unread). The
    positional forms and CSV's pattern keep the signature's columns only, and OIP's metadata
    leaves them out of its inputs (clients take those as the tensors to send).
    """
    excluded = model.bundle.signature.excluded
    if not excluded:
        return

    def ignored(kind: str) -> str:
        return f"ignored: a {kind} column the data contract excludes from the model's features"

    row, columns = schemas["InputRow"], schemas["Inputs"]["properties"]["inputs"]["oneOf"][0]
    tensors = schemas["V2InferRequest"]["properties"]["inputs"]
    for column in excluded:
        row["properties"][column.name] = {"description": ignored(column.kind)}
        columns["properties"][column.name] = {"type": "array", "description": ignored(column.kind)}
    tensors["maxItems"] += len(excluded)
    tensors["description"] += (f"; a tensor named {', '.join(c.name for c in excluded)} "
                               "(excluded by the data contract) is ignored")


def _infer_operation(operation: dict[str, Any], model: Any, example_row: dict[str, Any]) -> None:
    """OIP infer: a JSON body or a binary one (the extension), and answers in either."""
    binary_answer = ("outputs asked for with binary_data: the JSON answer (its size in the "
                     "Inference-Header-Content-Length header), then each such output's bytes")
    binary_request = ("binary tensor data extension: the JSON request (its size in the "
                      "Inference-Header-Content-Length header, which this body needs), then the raw bytes "
                      "of each input with parameters.binary_data_size, in input order")
    operation["description"] = V2_BINARY
    answered = operation.get("responses", {}).get("200", {}).setdefault("content", {})
    answered[BINARY_MEDIA] = {"schema": {"type": "string", "format": "binary", "description": binary_answer}}
    operation["requestBody"] = {"required": True, "content": {
        "application/json": {"schema": ref("V2InferRequest"), "example": v2_example(model, example_row)},
        BINARY_MEDIA: {"schema": {"type": "string", "format": "binary", "description": binary_request}}}}


def _feedback_operation(base: dict[str, Any], operation: dict[str, Any], model: Any, auth: bool) -> None:
    """/feedback: its body, examples and, when a token is configured, the bearer scheme."""
    if auth:
        base["components"]["securitySchemes"] = {"feedbackToken": {
            "type": "http", "scheme": "bearer",
            "description": "the token in the environment variable serve.feedback_token_env names"}}
        operation["security"] = [{"feedbackToken": []}]
    first = _example_label(model)
    operation["requestBody"] = {"required": True, "content": {"application/json": {
        "schema": {"oneOf": [ref("FeedbackItem"), ref("FeedbackBatch")]},
        "examples": {
            "one_row": {"value": {"request_id": "9f1c...", "row": 0, "label": first}},
            "all_rows": {"value": {"request_id": "9f1c...", "labels": [first]}},
            "batch": {"value": {"feedback": [{"request_id": "9f1c...", "row": 0, "label": first}]}},
        }}}}


V2_BINARY = (
    "Tensors come as JSON `data`, or with the binary tensor data extension (Triton, KServe): the "
    "body is the JSON request, then the raw bytes of each input that has "
    "`parameters.binary_data_size`, in input order; the header Inference-Header-Content-Length gives "
    "the JSON part's size, and the Content-Type is then application/octet-stream or none. A request "
    "with no Content-Type is read as JSON. Every signature column is one tensor of shape [n] or [n, 1] "
    "with n values, the same n for all.")


def _document_errors(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Every status a route can answer. Not FastAPI's 422: a bad parameter is answered 400."""
    for path, item in paths.items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            codes = (MODEL_ERRORS if "{name}" in path else ()) + (POST_ERRORS if method == "post" else ())
            for code in codes:
                responses.setdefault(code, error_responses(code)[code])
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def _served_names(paths: dict[str, Any], model: Any) -> None:
    """The model and version path parameters take the one name and version this server serves."""
    served = {"name": model.name, "model_version": model.version}
    for item in paths.values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("name") in served:
                    parameter["schema"] = {"type": "string", "enum": [served[parameter["name"]]]}


def invocation_body(model: Any, row: dict[str, Any], max_rows: int = 10_000) -> dict[str, Any]:
    names = list(row)
    values = list(row.values())
    examples = {
        "dataframe_split": {"value": {"dataframe_split": {"columns": names, "data": [values]}}},
        "dataframe_records": {"value": {"dataframe_records": [row]}},
        "instances": {"value": {"instances": [row]}},
        "instances_values": {"value": {"instances": [values]}},
        "inputs": {"value": {"inputs": {k: [v] for k, v in row.items()}}},
    }
    header = ",".join(names)
    line = ",".join("" if v is None else str(v) for v in values)
    csv_content = {"schema": {"type": "string", "pattern": csv_pattern(model), "description": (
        "a header row naming the columns (written here in signature order; any order is read), then one row "
        f"per input, at most {max_rows}; an empty field is a missing value")},
                   "example": f"{header}\n{line}\n"}
    return {"required": True, "content": {
        "application/json": {"schema": {"oneOf": [ref("DataframeSplit"), ref("DataframeRecords"),
                                                   ref("Instances"), ref("Inputs")]},
                             "examples": examples},
        **{kind: csv_content for kind in CSV_TYPES},
        ARROW_STREAM: {"schema": {"type": "string", "format": "binary", "description": (
            "an Arrow IPC stream (one or more record batches) with one column per signature input; "
            f"send Accept: {ARROW_STREAM} to get the predictions back as a stream with the columns "
            + ("prediction (a float64)" if model.regression else "prediction and proba_<class>"))}},
    }}


def _example_label(model: Any) -> Any:
    """A label /feedback takes: the first class, or for a regression model a number."""
    return 0.0 if model.regression else model.class_names[0]


def v2_example(model: Any, row: dict[str, Any]) -> dict[str, Any]:
    from gitml.serve.oip import V2_DATATYPE

    dtypes = {c.name: c.dtype for c in model.signature.inputs}
    return {"inputs": [{"name": k, "shape": [1], "datatype": V2_DATATYPE[dtypes[k]], "data": [v]}
                       for k, v in row.items()]}


def _example_row(model: Any) -> dict[str, Any]:
    """The first reference row, as JSON-ready values in signature order."""
    try:
        frame = model.bundle.reference().head(1)
        from gitml.package.validation import validate_input

        clean = validate_input(frame, model.signature)
        record = clean.iloc[0].to_dict()
    except Exception:
        record = {}
    out: dict[str, Any] = {}
    for spec in model.signature.inputs:
        name, value = spec.name, record.get(spec.name)
        if spec.dtype == "category":
            out[name] = value if isinstance(value, str) else (spec.categories or ("",))[0]
        elif spec.dtype == "datetime":  # validated as epoch seconds; a request sends ISO text
            out[name] = "2024-01-01" if value is None or value != value else iso(float(value))
        elif value is None or value != value:
            out[name] = 0
        elif spec.dtype == "int":
            out[name] = int(value)
        elif spec.dtype == "bool":
            out[name] = bool(value)
        else:
            out[name] = float(value)
    return out
