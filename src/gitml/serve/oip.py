"""Open Inference Protocol v2 infer requests to validated frames (one tensor per column).

Tensors come as JSON ``data`` or, with the binary tensor data extension (KServe, Triton),
as raw little-endian bytes after the JSON header: the request's
``Inference-Header-Content-Length`` header gives the JSON part's size and each binary
input says ``"parameters": {"binary_data_size": bytes}``, in input order. Outputs are
answered in binary when asked (``"binary_data": true`` on an output, or
``"binary_data_output": true`` on the request).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, TypeGuard

from gitml.errors import RequestError
from gitml.package.signature import CompiledSignature, InputColumn
from gitml.package.validation import validate_columns
from gitml.package.values import clip
from gitml.serve.formats import Parsed, bad, check_rows, loads, validated

if TYPE_CHECKING:
    import numpy as np

    from gitml.serve.model import ServedModel

V2_NUMERIC = ("FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
# A datetime column is BYTES: ISO 8601 text, as in JSON (a number's unit would be a guess).
V2_TYPES = {"float": (*V2_NUMERIC,), "int": (*V2_NUMERIC,), "bool": ("BOOL", *V2_NUMERIC), "category": ("BYTES",),
            "datetime": ("BYTES",)}
V2_DATATYPE = {"float": "FP64", "int": "INT64", "bool": "BOOL", "category": "BYTES", "datetime": "BYTES"}
OUTPUTS = ("prediction", "probabilities")
BINARY_HEADER = "inference-header-content-length"
BINARY_MEDIA = "application/octet-stream"
# Binary tensor data: little-endian, row-major, native sizes; BOOL is one byte (0 or 1).
V2_NUMPY = {"FP16": "<f2", "FP32": "<f4", "FP64": "<f8", "INT8": "i1", "INT16": "<i2", "INT32": "<i4",
            "INT64": "<i8", "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "BOOL": "u1"}


def split_body(body: bytes, header_length: str | None) -> tuple[Any, memoryview]:
    """The parsed JSON part of an infer request and the binary tensor data after it."""
    if header_length is None:
        return loads(body), memoryview(b"")
    size = header_length.strip()
    if not size.isdigit() or int(size) > len(body):
        raise bad(f"Inference-Header-Content-Length must be the byte size of the JSON part, at most the "
                  f"body's {len(body)} bytes", "Inference-Header-Content-Length")
    return loads(body[:int(size)]), memoryview(body)[int(size):]


def parse_v2(doc: Any, sig: CompiledSignature, max_rows: int, binary: memoryview | None = None,
             outputs: tuple[str, ...] = OUTPUTS) -> Parsed:
    """An OIP v2 infer request: one named tensor per input column, shape [n] or [n, 1].

    ``binary`` is the body after the JSON part (binary tensor data extension); each input
    with ``parameters.binary_data_size`` takes its bytes from there, in input order.
    ``outputs``: the outputs the model answers (a regression model: ``prediction`` only);
    asking for another is a 400 naming it.
    A tensor named after a column the data contract excludes (the signature's ``excluded``)
    is dropped unread; the model metadata names those under ``parameters.ignored_inputs``.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise bad('expected {"inputs": [{"name", "shape", "datatype", "data"}, ...]}, one tensor per column')
    binary = binary if binary is not None else memoryview(b"")
    specs = {c.name: c for c in sig.inputs}
    problems: list[dict[str, str]] = []
    columns: dict[str, Any] = {}
    rows: set[int] = set()
    offset = 0
    for position, tensor in enumerate(doc["inputs"]):
        where = f"inputs[{position}]"
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            problems.append({"field": where, "message": "a tensor is an object with a string 'name'"})
            continue
        name = tensor["name"]
        size = _binary_size(tensor, problems)  # taken even from a refused tensor: the next ones follow it
        chunk = None if size is None else binary[offset:offset + size]
        offset += size or 0
        if name in sig.ignored:  # an excluded column (date, id): its bytes are skipped, its values unread
            continue
        if name in columns:
            problems.append({"field": clip(name), "message": "tensor given twice"})
            continue
        if _column_shape(tensor.get("shape")):
            check_rows(tensor["shape"][0], max_rows)  # 413 before any of its data is taken
        values = _tensor_values(tensor, specs.get(name), problems, chunk)
        if values is not None:
            columns[name] = values
            rows.add(len(values))
    if offset != len(binary):
        problems.append({"field": "(body)", "message": f"the inputs declare {offset} byte(s) of binary data; "
                         f"the body holds {len(binary)} after the JSON part"})
    requested = _requested_outputs(doc.get("outputs"), _binary_default(doc, problems), problems, outputs)
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


def _binary_size(tensor: dict[str, Any], problems: list[dict[str, str]]) -> int | None:
    """The tensor's ``binary_data_size`` parameter, or None when its data is JSON."""
    parameters = tensor.get("parameters")
    if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
        return None
    size = parameters["binary_data_size"]
    if type(size) is not int or size < 0:
        problems.append({"field": clip(tensor["name"]), "message": "binary_data_size must be a byte count"})
        return 0
    return size


def _tensor_values(tensor: dict[str, Any], spec: InputColumn | None, problems: list[dict[str, str]],
                   chunk: memoryview | None = None) -> Any:
    name = tensor["name"]  # clipped where a message names it
    shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
    if spec is None:
        return _refuse(problems, name, "unexpected input (not in the signature)")
    if not _column_shape(shape):
        return _refuse(problems, name, "shape must be [n] or [n, 1]")
    allowed = V2_TYPES[spec.dtype]
    if datatype not in allowed:
        return _refuse(problems, name, f"datatype {clip(repr(datatype))} does not fit a {spec.dtype} "
                       f"column; use {V2_DATATYPE[spec.dtype]}")
    if chunk is not None:
        if data is not None:
            return _refuse(problems, name, "give data or parameters.binary_data_size, not both")
        return _binary_values(name, datatype, shape[0], chunk, problems)
    if not isinstance(data, list):
        return _refuse(problems, name, "data must be a list")
    if data and all(isinstance(v, list) for v in data):  # nested [[x], [y]] for shape [n, 1]
        if not all(len(v) == 1 for v in data):
            return _refuse(problems, name, "nested data must hold one value per row")
        data = [v[0] for v in data]
    if len(data) != shape[0]:
        return _refuse(problems, name, f"shape says {shape[0]} value(s), data holds {len(data)}")
    return data


def _binary_values(name: str, datatype: str, n: int, chunk: memoryview,
                   problems: list[dict[str, str]]) -> np.ndarray | list[str] | None:
    """One tensor's values from its bytes: a numpy view for numbers, text for BYTES."""
    import numpy as np

    if datatype == "BYTES":
        texts = _bytes_elements(chunk)
        if isinstance(texts, str):
            return _refuse(problems, name, texts)
        if len(texts) != n:
            return _refuse(problems, name, f"shape says {n} value(s), the binary data holds {len(texts)}")
        return texts
    dtype = np.dtype(V2_NUMPY[datatype])
    if len(chunk) != n * dtype.itemsize:
        return _refuse(problems, name, f"binary_data_size is {len(chunk)} byte(s); {n} {datatype} "
                       f"value(s) take {n * dtype.itemsize}")
    values = np.frombuffer(chunk, dtype=dtype)
    if datatype == "BOOL" and (values > 1).any():
        return _refuse(problems, name, "BOOL values are single bytes 0 or 1")
    return values


def _column_shape(shape: Any) -> TypeGuard[list[int]]:
    """Is ``shape`` [n] or [n, 1], with n a count? (bools are not ints here: True is not 1)"""
    if type(shape) is not list or len(shape) not in (1, 2) or type(shape[0]) is not int or shape[0] < 0:
        return False
    return len(shape) == 1 or (type(shape[1]) is int and shape[1] == 1)


def _refuse(problems: list[dict[str, str]], name: str, message: str) -> Any:
    """Note a problem with one tensor (its name clipped); None: the tensor gives no values."""
    problems.append({"field": clip(name), "message": message})
    return None


def _bytes_elements(chunk: memoryview) -> list[str] | str:
    """BYTES elements (a 4-byte little-endian length, then the bytes) as text; a message if malformed."""
    out: list[str] = []
    position, end = 0, len(chunk)
    while position < end:
        if position + 4 > end:
            return "BYTES data ends inside an element's 4-byte length"
        (size,) = struct.unpack_from("<I", chunk, position)
        position += 4
        if position + size > end:
            return f"BYTES element {len(out)} runs past the tensor's binary_data_size"
        try:
            out.append(str(chunk[position:position + size], "utf-8"))
        except UnicodeDecodeError:
            return f"BYTES element {len(out)} is not UTF-8 text"
        position += size
    return out


def _binary_default(doc: dict[str, Any], problems: list[dict[str, str]]) -> bool:
    parameters = doc.get("parameters")
    flag = parameters.get("binary_data_output", False) if isinstance(parameters, dict) else False
    if not isinstance(flag, bool):
        problems.append({"field": "parameters.binary_data_output", "message": "must be true or false"})
        return False
    return flag


def _requested_outputs(outputs: Any, binary: bool, problems: list[dict[str, str]],
                       answered: tuple[str, ...] = OUTPUTS) -> list[tuple[str, bool]]:
    """(output name, answer it in binary) for each output asked for, all of ``answered`` by default."""
    if outputs is None:
        return [(name, binary) for name in answered]
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and o.get("name") in OUTPUTS for o in outputs):
        problems.append({"field": "outputs", "message": f"outputs may name only {_names(answered)}"})
        return []
    absent = [o["name"] for o in outputs if o["name"] not in answered]
    if absent:  # probabilities of a regression model: it answers a number, with no classes
        problems.append({"field": "outputs", "message": f"this model has no output {_names(absent)}: a "
                         f"regression model answers {_names(answered)} (a number per row)"})
        return []
    requested = []
    for output in outputs:
        parameters = output.get("parameters")
        flag = parameters.get("binary_data", binary) if isinstance(parameters, dict) else binary
        if not isinstance(flag, bool):
            problems.append({"field": f"outputs.{output['name']}.parameters.binary_data",
                             "message": "must be true or false"})
        requested.append((output["name"], flag is True))
    return requested


def _names(names: Any) -> str:
    return " and ".join(f"'{n}'" for n in names)


def infer_outputs(model: ServedModel, output: np.ndarray, predicted: np.ndarray,
                  requested: list[tuple[str, bool]]) -> tuple[list[dict[str, Any]], bytes]:
    """The response's output tensors, and the binary data of those asked for in binary (in order).

    ``output`` is the model's output (:meth:`ServedModel.predict`): for a regression model the
    numbers, answered as the FP64 tensor ``prediction``.
    """
    import numpy as np

    n, k = len(output), output.shape[-1]
    outputs, blobs = [], []
    for name, binary in requested:
        tensor: dict[str, Any]
        if model.regression:  # parse_v2 let no other output than prediction through
            tensor = {"name": name, "datatype": "FP64", "shape": [n], "parameters": {}}
            if binary:
                blob = np.ascontiguousarray(output, dtype="<f8").tobytes()
            else:
                tensor["data"] = output.tolist()
        elif name == "prediction":
            tensor = {"name": name, "datatype": "BYTES", "shape": [n], "parameters": {}}
            if binary:
                encoded = model.class_bytes  # each class name, length-prefixed, once per model
                blob = b"".join([encoded[i] for i in predicted.tolist()])
            else:
                tensor["data"] = [model.class_names[i] for i in predicted.tolist()]
        else:
            tensor = {"name": name, "datatype": "FP64", "shape": [n, k], "parameters": {"classes": model.class_names}}
            if binary:
                blob = np.ascontiguousarray(output, dtype="<f8").tobytes()
            else:
                tensor["data"] = output.astype("float64").ravel().tolist()
        if binary:
            tensor["parameters"]["binary_data_size"] = len(blob)
            blobs.append(blob)
        if not tensor["parameters"]:
            del tensor["parameters"]
        outputs.append(tensor)
    return outputs, b"".join(blobs)
