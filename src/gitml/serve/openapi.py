"""The OpenAPI document of the model server, generated from the served model's signature.

Request bodies are read as raw bytes (the fast path parses them itself), so their schemas
are declared here: each JSON scoring format and CSV, with column names, types and allowed
categories taken from the signature, and an example built from the bundle's reference
rows. The document is rebuilt when a different model is swapped in.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gitml.serve.formats import ARROW_STREAM, CSV_TYPES
from gitml.serve.oip import BINARY_MEDIA


class Prediction(BaseModel):
    prediction: Any = Field(description="The predicted class.")
    probabilities: dict[str, float] = Field(description="Probability of each class, keyed by class as text.")


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


class FeedbackItem(BaseModel):
    request_id: str = Field(description="The x-request-id of the prediction.")
    row: int = Field(0, ge=0, description="Row of that request (0-based); not with 'labels'.")
    label: Any = Field(None, description="The true class of that row.")
    labels: list[Any] | None = Field(None, description="True classes of rows 0..n-1, instead of row + label.")


class FeedbackBatch(BaseModel):
    feedback: list[FeedbackItem]


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


MODELS = (InvocationResponse, ErrorResponse, FeedbackItem, FeedbackBatch, FeedbackResponse, V2Tensor,
          V2InferResponse)
ERRORS = {
    "400": "Malformed body or input that does not match the signature (field-level problems).",
    "413": "Body over serve.max_body_bytes or batch over serve.max_batch_rows.",
    "415": "Content type the endpoint does not take (see its request body).",
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def error_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    return {code: {"description": ERRORS[code], "content": {"application/json": {"schema": ref("ErrorResponse")}}}
            for code in codes}


def build_openapi(base: dict[str, Any], model: Any) -> dict[str, Any]:
    """Add the signature's request schemas and examples to FastAPI's generated document."""
    schemas = base.setdefault("components", {}).setdefault("schemas", {})
    for cls in MODELS:
        spec = cls.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(spec.pop("$defs", {}))
        schemas[cls.__name__] = spec
    schemas.update(signature_schemas(model))
    example_row = _example_row(model)
    paths = base.get("paths", {})
    invocations = paths.get("/invocations", {}).get("post")
    if invocations is not None:
        invocations["requestBody"] = invocation_body(model, example_row)
    for path, item in paths.items():
        if path.endswith("/infer") and "post" in item:
            item["post"]["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": ref("V2InferRequest"), "example": v2_example(model, example_row)},
                BINARY_MEDIA: {"schema": {"type": "string", "format": "binary", "description": (
                    "binary tensor data extension: the JSON request (its size in the "
                    "Inference-Header-Content-Length header), then the raw bytes of each input with "
                    "parameters.binary_data_size, in input order")}}}}
    feedback = paths.get("/feedback", {}).get("post")
    if feedback is not None:
        feedback["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"oneOf": [ref("FeedbackItem"), ref("FeedbackBatch")]},
            "examples": {
                "one_row": {"value": {"request_id": "9f1c...", "row": 0, "label": model.class_names[0]}},
                "all_rows": {"value": {"request_id": "9f1c...", "labels": model.class_names[:1]}},
                "batch": {"value": {"feedback": [{"request_id": "9f1c...", "row": 0, "label": model.class_names[0]}]}},
            }}}}
    return base


def column_schema(spec: dict[str, Any]) -> dict[str, Any]:
    dtype = spec["dtype"]
    if dtype == "category":
        schema: dict[str, Any] = {"type": "string", "enum": list(spec.get("categories") or [])}
    elif dtype == "bool":
        schema = {"oneOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}]}
    else:
        schema = {"type": "integer" if dtype == "int" else "number",
                  "description": "a number (numeric text is accepted too)"}
    if spec.get("nullable"):
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


def signature_schemas(model: Any) -> dict[str, Any]:
    inputs = model.signature.inputs
    names = [c["name"] for c in inputs]
    row = {"type": "object", "additionalProperties": False, "required": names,
           "properties": {c["name"]: column_schema(c) for c in inputs}}
    positional = {"type": "array", "minItems": len(names), "maxItems": len(names),
                  "prefixItems": [column_schema(c) for c in inputs],
                  "description": f"values in signature order: {', '.join(names)}"}
    columns = {"type": "object", "additionalProperties": False, "required": names,
               "properties": {c["name"]: {"type": "array", "items": column_schema(c)} for c in inputs}}
    tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
        "name": {"type": "string", "enum": names},
        "shape": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2,
                  "description": "[n] or [n, 1]"},
        "datatype": {"type": "string", "enum": ["FP64", "FP32", "INT64", "INT32", "BOOL", "BYTES"]},
        "data": {"type": "array"},
    }}
    return {
        "InputRow": row,
        "InputRowValues": positional,
        "DataframeSplit": _one_key("dataframe_split", {
            "type": "object", "required": ["data"], "properties": {
                "columns": {"type": "array", "items": {"type": "string", "enum": names},
                            "description": "column names; default: signature order"},
                "data": {"type": "array", "items": {"type": "array"}, "minItems": 1},
                "index": {"type": "array", "description": "ignored"}}}),
        "DataframeRecords": _one_key("dataframe_records", {"type": "array", "items": ref("InputRow"),
                                                           "minItems": 1}),
        "Instances": _one_key("instances", {"oneOf": [
            {"type": "array", "items": ref("InputRow"), "minItems": 1},
            {"type": "array", "items": ref("InputRowValues"), "minItems": 1}]}),
        "Inputs": _one_key("inputs", {"oneOf": [
            columns, {"type": "array", "items": ref("InputRow"), "minItems": 1}]}),
        "V2InferRequest": {"type": "object", "required": ["inputs"], "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": tensor, "minItems": 1,
                       "description": "one tensor per signature column"},
            "outputs": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string", "enum": ["prediction", "probabilities"]}}}}}},
    }


def _one_key(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [key], "additionalProperties": False,
            "properties": {key: schema, "params": {"type": "object", "description": "ignored"}}}


def invocation_body(model: Any, row: dict[str, Any]) -> dict[str, Any]:
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
    csv_content = {"schema": {"type": "string", "description": "a header row naming the columns, then one row "
                              "per input; an empty field is a missing value"},
                   "example": f"{header}\n{line}\n"}
    return {"required": True, "content": {
        "application/json": {"schema": {"oneOf": [ref("DataframeSplit"), ref("DataframeRecords"),
                                                   ref("Instances"), ref("Inputs")]},
                             "examples": examples},
        **{kind: csv_content for kind in CSV_TYPES},
        ARROW_STREAM: {"schema": {"type": "string", "format": "binary", "description": (
            "an Arrow IPC stream (one or more record batches) with one column per signature input; "
            f"send Accept: {ARROW_STREAM} to get the predictions back as a stream with the columns "
            "prediction and proba_<class>")}},
    }}


def v2_example(model: Any, row: dict[str, Any]) -> dict[str, Any]:
    from gitml.serve.oip import V2_DATATYPE

    dtypes = {c["name"]: c["dtype"] for c in model.signature.inputs}
    return {"inputs": [{"name": k, "shape": [1], "datatype": V2_DATATYPE[dtypes[k]], "data": [v]}
                       for k, v in row.items()]}


def _example_row(model: Any) -> dict[str, Any]:
    """The first reference row, as JSON-ready values in signature order."""
    try:
        frame = model.bundle.reference().head(1)
        from gitml.package.signature import validate_input

        clean = validate_input(frame, model.signature)
        record = clean.iloc[0].to_dict()
    except Exception:
        record = {}
    out: dict[str, Any] = {}
    for spec in model.signature.inputs:
        name, value = spec["name"], record.get(spec["name"])
        if spec["dtype"] == "category":
            out[name] = value if isinstance(value, str) else (spec.get("categories") or [""])[0]
        elif value is None or value != value:
            out[name] = 0
        elif spec["dtype"] == "int":
            out[name] = int(value)
        elif spec["dtype"] == "bool":
            out[name] = bool(value)
        else:
            out[name] = float(value)
    return out
