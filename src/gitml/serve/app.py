# Over 300 lines: the whole HTTP surface (routes, request handling, error answers, middleware) in one place.
"""The FastAPI app: MLflow's scoring protocol, Open Inference Protocol v2, feedback, metrics.

Bodies are read as bytes and parsed by :mod:`gitml.serve.formats` (the schemas are
declared for OpenAPI in :mod:`gitml.serve.openapi`). A body up to 1 MiB is answered on the
event loop: a few thousand rows take a few milliseconds, and handing them to a thread
costs more than that stall (0.5-0.9 ms of a 1.5 ms, 1,000-row request, measured). A larger
one goes to the thread pool so it never stalls other requests for long. Every request reads
the served model once, at its start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from gitml import __version__
from gitml.errors import RequestError
from gitml.serve import oip, openapi
from gitml.serve.feedback import AUTH_REALM, bearer_matches, feedback_responses, parse_feedback
from gitml.serve.formats import (
    ARROW_STREAM,
    arrow_answer,
    loads,
    media_type,
    parse_invocations,
)
from gitml.serve.requestlog import FeedbackChunk
from gitml.serve.shadow import Route, shadow_predict
from gitml.serve.slots import MODEL_HEADER

if TYPE_CHECKING:
    from gitml.serve.model import ServedModel
    from gitml.serve.slots import ModelSlot
    from gitml.serve.state import ServeState

log = logging.getLogger(__name__)
INLINE_BYTES = 1 << 20  # bodies up to this size are answered on the event loop (see above)
ERROR_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 408: "REQUEST_TIMEOUT", 413: "PAYLOAD_TOO_LARGE",
               415: "UNSUPPORTED_MEDIA_TYPE"}
CLIENT_CLOSED = 499  # counted in the metrics under nginx's code for it; no answer is sent: nobody listens
ERROR_CODES.update({401: "UNAUTHORIZED", 409: "CONFLICT", 503: "UNAVAILABLE"})  # /feedback refusals
JSON = "application/json"


def create_app(state: ServeState) -> FastAPI:
    """The app over ``state`` (model holder, logs, metrics, follower); lifespan starts and stops them."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.start()
        try:
            yield
        finally:
            await run_in_threadpool(state.stop)

    app = FastAPI(title="gitml model server", version=__version__, lifespan=lifespan, redoc_url=None,
                  description="MLflow-compatible /invocations, Open Inference Protocol v2, feedback and "
                  "Prometheus metrics over a verified gitml bundle. See docs/serve.md.")
    app.state.gitml = state
    app.add_middleware(MetricsMiddleware, state=state)
    _routes(app, state)
    _errors(app, state)
    _openapi(app, state)
    return app


# ---------------------------------------------------------------------- routes


# Over 60 lines: one decorated function per route, the API's table of contents.
def _routes(app: FastAPI, state: ServeState) -> None:
    cfg = state.cfg

    @app.get("/ping", summary="Liveness (MLflow)", response_class=Response)
    async def ping() -> Response:
        return Response(b"\n", media_type="text/plain")

    # Status answers load nothing (serve.lazy_load): a default model not loaded shows as null.
    @app.get("/health", summary="Status and the served models (the default one first)")
    async def health() -> dict[str, Any]:
        model = state.models.peek(None)
        answer: dict[str, Any] = {"status": "ok", "version": model and model.version, "model": model and model.info(),
                                  "uptime_seconds": round(time.time() - state.started_at, 3),
                                  "reloads": state.reloads, "reload_failures": state.reload_failures,
                                  "gitml": __version__}
        holder = state.models.slot(None).holder
        if holder is not None and holder.routes is not None:  # the default model's traffic split
            answer["traffic"] = holder.routes.split.to_dict()
        if not state.models.single:
            answer["models"] = _every_model(state, lambda m: m.info())
        return answer

    @app.get("/version", summary="Version of the served models (the default one first)")
    async def version() -> dict[str, Any]:
        model = state.models.peek(None)
        answer: dict[str, Any] = {"model_version": model and model.version, "name": state.models.default_name(),
                                  "bundle_id": model and model.bundle_id, "gitml": __version__}
        if not state.models.single:
            answer["models"] = _every_model(state, lambda m: {"model_version": m.version, "bundle_id": m.bundle_id})
        return answer

    @app.post("/invocations", summary="Predict (MLflow scoring protocol: JSON formats or CSV)",
              response_class=Response,
              responses={200: {"model": openapi.InvocationResponse, "description": "One prediction per row."},
                         **openapi.error_responses("400", "413", "415")})
    async def invocations(request: Request) -> Response:
        slot, model = await _served(state, request.headers.get(MODEL_HEADER))
        route = _route(state, slot, model, request.headers)
        body = await read_body(request, cfg.max_body_bytes)
        content_type = request.headers.get("content-type")
        arrow = ARROW_STREAM in request.headers.get("accept", "")
        if len(body) <= INLINE_BYTES:
            return state_invoke(state, slot, route, body, content_type, arrow)
        return await run_in_threadpool(state_invoke, state, slot, route, body, content_type, arrow)

    @app.post("/feedback", summary="True labels for earlier predictions", response_class=Response,
              responses={200: {"model": openapi.FeedbackResponse, "description": "Labels queued for the log."},
                         **openapi.error_responses("400", "413", "415"), **feedback_responses()})
    async def feedback(request: Request) -> Response:
        # Checks in gitml.serve.feedback: token, then body, then the window (id, row range, one label a row).
        if state.feedback_token is not None and not bearer_matches(request.headers.get("authorization"),
                                                                   state.feedback_token):
            return error_response(401, "POST /feedback wants 'Authorization: Bearer <token>' with the token "
                                  "this server was given <serve.feedback_token_env>.", headers={"www-authenticate": AUTH_REALM})
        slot, model = await _served(state, request.headers.get(MODEL_HEADER))  # labels for this model's answers
        body = await read_body(request, cfg.max_body_bytes)
        _require_json(request)
        labels = parse_feedback(loads(body), model.classes, cfg.max_batch_rows, cfg.max_batch_rows)
        slot.feedback_window.claim(labels)
        refused = slot.feedback_log.offer(FeedbackChunk(time.time_ns() // 1000, [label[:3] for label in labels],
                                                        model.label_type))
        if refused:  # never 200 for a label the writer did not take
            slot.feedback_window.release(labels)
            return error_response(503, f"No label of this body was recorded: {refused}; post it again later.",
                                  headers={"retry-after": "1"})
        state.metrics.feedback.inc(len(labels))
        return _json({"accepted": len(labels)})

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        payload, content_type = state.metrics.render()
        return Response(payload, media_type=content_type)

    # ---------------------------------------------------------- Open Inference Protocol v2
    @app.get("/v2", summary="OIP v2 server metadata")
    async def v2_server() -> dict[str, Any]:
        return {"name": "gitml", "version": __version__, "extensions": ["binary_tensor_data"]}

    @app.get("/v2/health/live", summary="OIP v2 liveness")
    async def v2_live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready", summary="OIP v2 readiness")
    async def v2_ready() -> dict[str, bool]:
        return {"ready": True}

    @app.get("/v2/models/{name}", summary="OIP v2 model metadata",
             responses=openapi.error_responses("400") | {"404": {"description": "No such model."}})
    async def v2_metadata(name: str) -> dict[str, Any]:
        return (await _served(state, name))[1].v2_metadata()

    @app.get("/v2/models/{name}/versions/{model_version}", summary="OIP v2 model metadata (one version)")
    async def v2_metadata_version(name: str, model_version: str) -> dict[str, Any]:
        return (await _served(state, name, model_version))[1].v2_metadata()

    @app.get("/v2/models/{name}/ready", summary="OIP v2 model readiness")
    async def v2_model_ready(name: str) -> dict[str, Any]:
        return {"name": _ready(state, name), "ready": True}

    @app.get("/v2/models/{name}/versions/{model_version}/ready", summary="OIP v2 model readiness (one version)")
    async def v2_model_version_ready(name: str, model_version: str) -> dict[str, Any]:
        return {"name": _ready(state, name, model_version), "ready": True}

    v2_responses: dict[int | str, dict[str, Any]] = {200: {"model": openapi.V2InferResponse, "description": "prediction (and, from a classifier, probabilities)."},
                    **openapi.error_responses("400", "413", "415"), "404": {"description": "No such model."}}

    @app.post("/v2/models/{name}/infer", summary="OIP v2 inference", response_class=Response,
              responses=v2_responses)
    async def v2_infer(name: str, request: Request) -> Response:
        return await _v2(state, request, name, None)

    @app.post("/v2/models/{name}/versions/{model_version}/infer", summary="OIP v2 inference (one version)",
              response_class=Response, responses=v2_responses)
    async def v2_infer_version(name: str, model_version: str, request: Request) -> Response:
        return await _v2(state, request, name, model_version)


async def _v2(state: ServeState, request: Request, name: str, model_version: str | None) -> Response:
    slot, model = await _served(state, name, model_version)
    route = _route(state, slot, model, request.headers) if model_version is None else Route(model, None, "explicit")
    body = await read_body(request, state.cfg.max_body_bytes)
    header_length = request.headers.get(oip.BINARY_HEADER)
    # No Content-Type reads as JSON (binary tensors when the header is there), as Triton and
    # KServe read it: tritonclient, the reference OIP client, sends none.
    if header_length is None:
        _require_json(request, "")
    else:  # binary tensor data extension: JSON, then raw tensor bytes
        _require_json(request, oip.BINARY_MEDIA, "")
    if len(body) <= INLINE_BYTES:
        return state_v2(state, slot, route, body, header_length)
    return await run_in_threadpool(state_v2, state, slot, route, body, header_length)


async def _served(state: ServeState, name: str | None, model_version: str | None = None) -> tuple[ModelSlot, ServedModel]:
    """The slot and model a request names (None: the default one), loading it off the event loop
    when it is not loaded (serve.lazy_load, or unloaded by serve.max_loaded_models); else 404."""
    slot = state.models.slot(name)
    model = state.models.loaded(slot.name)
    if model is None:
        model = await run_in_threadpool(state.models.model, slot.name)
    routes = slot.holder.routes if slot.holder is not None else None
    if routes is not None and model_version is not None:  # any version of a split, named (tests, comparisons)
        model = routes.models.get(model_version, model)
    _check_named(state, model, name, model_version)
    return slot, model


def _route(state: ServeState, slot: ModelSlot, model: ServedModel, headers: Any) -> Route:
    """The version answering a request (under a traffic split: by its routing key) and the shadow."""
    routes = slot.holder.routes if slot.holder is not None else None
    if routes is None:
        return Route(model, None, "stable")
    chosen, keyed = routes.pick(headers)
    if not keyed:
        state.metrics.unkeyed.labels(chosen.name).inc()
    return Route(chosen, routes.shadow, routes.role(chosen.version))


def _ready(state: ServeState, name: str, model_version: str | None = None) -> str:
    """OIP model readiness: a served name is ready (a model not loaded loads on its first request)."""
    model = state.models.loaded(state.models.slot(name).name)
    if model is not None:  # one not loaded: its versions are known once it is
        _check_named(state, model, name, model_version)
    return name


def _check_named(state: ServeState, model: ServedModel, name: str | None, model_version: str | None) -> None:
    if (name is not None and name != model.name) or (model_version is not None and model_version != model.version):
        what = f"model '{name}'" + (f" version '{model_version}'" if model_version else "")
        raise RequestError(404, f"No {what[:200]} here; this server serves {state.models.describe()}.")


def _every_model(state: ServeState, describe: Callable[[ServedModel], dict[str, Any]]) -> dict[str, Any]:
    """``describe`` of each served model by name; one not loaded is ``{"loaded": false}`` (not loaded for this)."""
    answer: dict[str, Any] = {}
    for name, slot in state.models.slots.items():
        holder = slot.holder
        answer[name] = {**describe(holder.current), "loaded": True} if holder else {"loaded": False}
        if holder is not None and holder.routes is not None:
            answer[name]["traffic"] = holder.routes.split.to_dict()
    return answer


def _require_json(request: Request, *also: str) -> None:
    kind = media_type(request.headers.get("content-type"))
    if kind != JSON and not kind.endswith("+json") and kind not in also:
        raise RequestError(415, f"Unsupported content type '{kind[:60] or '(none)'}'; send "
                           f"{' or '.join([JSON, *filter(None, also)])}.")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) anything over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(400, "Invalid Content-Length header.")
        if int(declared) > limit:
            raise RequestError(413, f"Body of {declared} bytes exceeds the maximum of {limit} "
                               "<serve.max_body_bytes>.")
    timeout = request.app.state.gitml.cfg.body_timeout_seconds
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):  # a slow client holds a connection and a task: bound both
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestError(413, f"Body exceeds the maximum of {limit} bytes <serve.max_body_bytes>.")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestError(408, f"The body did not arrive within {timeout} s <serve.body_timeout_seconds>.",
                           headers={"connection": "close"}) from None
    except ClientDisconnect:  # nobody to answer, and not a fault of the server: one debug line, no 500
        log.debug("client went away after %d body bytes of %s %s", size, request.method, request.url.path)
        raise RequestError(CLIENT_CLOSED, "The client closed the connection before its body arrived.") from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# ---------------------------------------------------------------------- the work


def state_invoke(state: ServeState, slot: ModelSlot, route: Route, body: bytes, content_type: str | None,
                 arrow: bool = False) -> Response:
    """Answer /invocations: JSON, or an Arrow IPC stream when the client accepts one."""
    model = route.model
    parsed = parse_invocations(body, content_type, model.signature, state.cfg.max_batch_rows,
                               state.cfg.max_decompressed_bytes)
    output = _predict(state, route, parsed.frame)  # class probabilities, or a regression model's numbers
    predicted = model.predicted(output)
    request_id = _record(state, slot, model, parsed.frame, output, predicted)
    headers = {"x-model-version": model.version, "x-request-id": request_id}
    if arrow:
        answer = arrow_answer(model, output, predicted, {"model_version": model.version, "request_id": request_id})
        response = Response(answer, media_type=ARROW_STREAM, headers=headers)
    else:
        payload = {"predictions": model.predictions(output, predicted), "model_version": model.version,
                   "request_id": request_id}
        response = _json(payload, headers)
    return _with_shadow(response, state, slot, route, parsed.frame, request_id)


def state_v2(state: ServeState, slot: ModelSlot, route: Route, body: bytes,
             header_length: str | None = None) -> Response:
    model = route.model
    doc, binary = oip.split_body(body, header_length)
    parsed = oip.parse_v2(doc, model.signature, state.cfg.max_batch_rows, binary, model.outputs)
    output = _predict(state, route, parsed.frame)
    predicted = model.predicted(output)
    request_id = _record(state, slot, model, parsed.frame, output, predicted)
    outputs, blob = oip.infer_outputs(model, output, predicted, parsed.extra["outputs"])
    payload = {"model_name": model.name, "model_version": model.version, "id": parsed.extra["id"] or request_id,
               "parameters": {"request_id": request_id}, "outputs": outputs}
    headers = {"x-model-version": model.version, "x-request-id": request_id}
    if not blob:
        response = _json(payload, headers)
    else:
        head = orjson.dumps(payload)
        response = Response(head + blob, media_type=oip.BINARY_MEDIA,
                            headers={**headers, oip.BINARY_HEADER: str(len(head))})
    return _with_shadow(response, state, slot, route, parsed.frame, request_id)


def _predict(state: ServeState, route: Route, frame: Any) -> Any:
    started = time.perf_counter()
    try:
        output = route.model.predict(frame)
    except Exception:
        state.metrics.failed(route.model.name, route.model.version, route.role)
        raise
    state.metrics.timed(route.model.name, route.model.version, route.role, time.perf_counter() - started)
    return output


def _with_shadow(response: Response, state: ServeState, slot: ModelSlot, route: Route, frame: Any,
                 request_id: str) -> Response:
    """With a shadow, predict it on the same rows after the answer is sent (in the thread pool)."""
    if route.shadow is not None:
        response.background = BackgroundTask(shadow_predict, state, slot, route.shadow, frame, request_id)
    return response


def _record(state: ServeState, slot: ModelSlot, model: ServedModel, frame: Any, output: Any, predicted: Any) -> str:
    """Log the answered rows in the model's own log (before the answer leaves) and count them."""
    request_id = state.next_request_id()
    inputs = frame.to_numpy() if model.signature.all_numeric else frame  # a view of the one float block
    slot.request_log.append(model.log_chunk(request_id, time.time_ns() // 1000, inputs, output, predicted))
    slot.feedback_window.add(request_id, len(predicted))  # /feedback labels only rows answered here
    state.metrics.predicted(model.name, model.version, model.class_names, predicted)
    return request_id


def _json(payload: Any, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    try:
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:  # e.g. a lone surrogate from a request: escape it instead
        body = json.dumps(payload, ensure_ascii=True, default=str).encode()
    return Response(body, status_code=status, media_type=JSON, headers=headers)


# ---------------------------------------------------------------------- errors and metrics


def _errors(app: FastAPI, state: ServeState) -> None:
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> Response:
        return error_response(exc.status, exc.message, exc.problems, headers=exc.headers, oip=_is_oip(request))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error_response(exc.status_code, str(exc.detail)[:200], headers=getattr(exc, "headers", None),
                              oip=_is_oip(request))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        problems = [{"field": ".".join(str(p) for p in e.get("loc", ()))[:80], "message": str(e.get("msg"))[:200]}
                    for e in exc.errors()[:20]]
        return error_response(400, "The request is not valid.", problems)

    @app.exception_handler(Exception)
    async def server_fault(request: Request, exc: Exception) -> Response:
        log.exception("internal error answering %s %s", request.method, request.url.path)
        return error_response(500, "Internal error; the server log has the details.", code="INTERNAL_ERROR",
                              oip=_is_oip(request))


def _is_oip(request: Request) -> bool:
    path = request.url.path
    return path == "/v2" or path.startswith("/v2/")


def error_response(status: int, message: str, problems: list[dict[str, str]] | None = None,
                   code: str | None = None, headers: dict[str, str] | None = None, oip: bool = False) -> Response:
    body: dict[str, Any] = {
        "error_code": code or ERROR_CODES.get(status, "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"),
        "message": message, "problems": problems or []}
    if oip:  # the Open Inference Protocol's own key, the only one its clients (tritonclient) show
        named = "; ".join(f"{p['field']}: {p['message']}" for p in (problems or [])[:5])
        body["error"] = f"{message} {named}" if named else message
    return _json(body, headers, status)


class MetricsMiddleware:
    """Counts and times every request by route template (not raw path: bounded label values)."""

    def __init__(self, app: Any, state: ServeState):
        self.app, self.state = app, state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_watch(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "(unmatched)"
            self.state.metrics.observe(endpoint, status, time.perf_counter() - started)


def _openapi(app: FastAPI, state: ServeState) -> None:
    from fastapi.openapi.utils import get_openapi

    cache: dict[str, Any] = {}

    def document() -> dict[str, Any]:
        model = state.models.model(None)  # the default model's signature
        key = f"{model.version}:{model.bundle_id}"
        if key not in cache:
            cache.clear()
            base = get_openapi(title=app.title, version=app.version, description=app.description,
                               routes=app.routes)
            cache[key] = openapi.build_openapi(base, model, state.cfg.max_batch_rows,
                                               feedback_auth=state.feedback_token is not None)
        return cache[key]

    app.openapi = document  # type: ignore[method-assign]
