"""Open Inference Protocol v2 infer requests to validated frames (one tensor per column)."""

from __future__ import annotations

from typing import Any

from gitml.package.signature import CompiledSignature, clip, validate_columns
from gitml.serve.formats import Parsed, RequestError, bad, check_rows, validated

V2_NUMERIC = ("FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
V2_TYPES = {"float": (*V2_NUMERIC,), "int": (*V2_NUMERIC,), "bool": ("BOOL", *V2_NUMERIC), "category": ("BYTES",)}
V2_DATATYPE = {"float": "FP64", "int": "INT64", "bool": "BOOL", "category": "BYTES"}
OUTPUTS = ("prediction", "probabilities")


def parse_v2(doc: Any, sig: CompiledSignature, max_rows: int) -> Parsed:
    """An OIP v2 infer request: one named tensor per input column, shape [n] or [n, 1]."""
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise bad('expected {"inputs": [{"name", "shape", "datatype", "data"}, ...]}, one tensor per column')
    specs = {c["name"]: c for c in sig.inputs}
    problems: list[dict[str, str]] = []
    columns: dict[str, list[Any]] = {}
    rows: set[int] = set()
    for position, tensor in enumerate(doc["inputs"]):
        where = f"inputs[{position}]"
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            problems.append({"field": where, "message": "a tensor is an object with a string 'name'"})
            continue
        name = tensor["name"]
        if name in columns:
            problems.append({"field": clip(name), "message": "tensor given twice"})
            continue
        values = _tensor_values(tensor, specs.get(name), problems)
        if values is not None:
            columns[name] = values
            rows.add(len(values))
    requested = _requested_outputs(doc.get("outputs"), problems)
    if len(rows) > 1:
        problems.append({"field": "inputs", "message": f"tensors disagree on the batch size: {sorted(rows)[:5]}"})
    if problems:
        raise RequestError.invalid(problems, "infer request")
    n_rows = rows.pop() if rows else 0
    check_rows(n_rows, max_rows)
    frame = validated(lambda: validate_columns(columns, sig, n_rows=n_rows))
    request_id = doc.get("id")
    extra = {"id": clip(request_id, 128) if isinstance(request_id, str) else None, "outputs": requested}
    return Parsed(frame, n_rows, extra)


def _tensor_values(tensor: dict[str, Any], spec: dict[str, Any] | None, problems: list[dict[str, str]]) -> list[Any] | None:
    name = clip(tensor["name"])
    shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
    if spec is None:
        problems.append({"field": name, "message": "unexpected input (not in the signature)"})
        return None
    if not (isinstance(shape, list) and 1 <= len(shape) <= 2 and all(type(d) is int and d >= 0 for d in shape)
            and (len(shape) == 1 or shape[1] == 1)):
        problems.append({"field": name, "message": "shape must be [n] or [n, 1]"})
        return None
    allowed = V2_TYPES[spec["dtype"]]
    if datatype not in allowed:
        problems.append({"field": name, "message": f"datatype {clip(repr(datatype))} does not fit a "
                         f"{spec['dtype']} column; use {V2_DATATYPE[spec['dtype']]}"})
        return None
    if not isinstance(data, list):
        problems.append({"field": name, "message": "data must be a list"})
        return None
    if data and all(isinstance(v, list) for v in data):  # nested [[x], [y]] for shape [n, 1]
        if not all(len(v) == 1 for v in data):
            problems.append({"field": name, "message": "nested data must hold one value per row"})
            return None
        data = [v[0] for v in data]
    if len(data) != shape[0]:
        problems.append({"field": name, "message": f"shape says {shape[0]} value(s), data holds {len(data)}"})
        return None
    return data


def _requested_outputs(outputs: Any, problems: list[dict[str, str]]) -> list[str]:
    if outputs is None:
        return list(OUTPUTS)
    names = [o.get("name") for o in outputs] if isinstance(outputs, list) and all(
        isinstance(o, dict) for o in outputs) else None
    if names is None or not all(n in OUTPUTS for n in names):
        problems.append({"field": "outputs", "message": "outputs may name only 'prediction' and 'probabilities'"})
        return []
    return names
