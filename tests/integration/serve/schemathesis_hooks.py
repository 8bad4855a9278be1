"""Schemathesis hooks for test_real_clients: what JSON Schema cannot say about gitml's bodies.

Loaded by `st run` through SCHEMATHESIS_HOOKS. Each hook carries one rule that the OpenAPI
document states in words (descriptions) because JSON Schema has no keyword for it; the
hooks apply it to *positive* cases only, so negative cases still test the server's refusals.

- columnar ``inputs``: every column's list has one length;
- OIP v2 tensors: ``shape[0]`` is the number of values in ``data``, the same for all tensors;
- an Arrow IPC stream body is valid Arrow, and an OIP binary body (application/octet-stream)
  is a JSON part and tensor bytes, its size in the Inference-Header-Content-Length header; both
  are built from the bundle's reference rows (the bundle folder is GITML_ST_BUNDLE).
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa
import schemathesis
from hypothesis import strategies as st

from gitml.package.bundle import load_bundle
from gitml.serve.formats import ARROW_STREAM, arrow_stream
from gitml.serve.oip import BINARY_HEADER, BINARY_MEDIA
from tests.integration.serve.test_binary_formats import binary_infer

schemathesis.serializer.alias("application/csv", "text/csv")  # the same body as text/csv
REFERENCE = load_bundle(os.environ["GITML_ST_BUNDLE"]).reference().reset_index(drop=True)
BATCHES = [REFERENCE.iloc[start:start + size] for start, size in ((0, 1), (1, 3), (4, 20))]
ARROW_BODIES = [arrow_stream(pa.Table.from_pandas(rows, preserve_index=False)) for rows in BATCHES]
BINARY_BODIES = dict(binary_infer(rows, numeric, binary_data_output=answer)
                     for rows in BATCHES for numeric in ("FP64", "FP32") for answer in (False, True))

schemathesis.openapi.media_type(ARROW_STREAM, st.sampled_from(ARROW_BODIES))
schemathesis.openapi.media_type(BINARY_MEDIA, st.sampled_from(list(BINARY_BODIES)))


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    if case.meta is None or case.meta.generation.mode.is_negative:
        return case
    if isinstance(case.body, bytes) and case.body in BINARY_BODIES:
        case.headers = {**(case.headers or {}), BINARY_HEADER: BINARY_BODIES[case.body][BINARY_HEADER]}
    if not isinstance(case.body, dict):
        return case
    if case.path == "/invocations" and isinstance(case.body.get("inputs"), dict):
        lists = [v for v in case.body["inputs"].values() if isinstance(v, list)]
        if lists:
            n = min(map(len, lists))
            case.body["inputs"] = {k: v[:n] if isinstance(v, list) else v for k, v in case.body["inputs"].items()}
    elif case.path.endswith("/infer") and isinstance(case.body.get("inputs"), list):
        tensors = [t for t in case.body["inputs"] if isinstance(t, dict) and isinstance(t.get("data"), list)]
        if tensors:
            n = min(len(t["data"]) for t in tensors)
            for tensor in tensors:
                tensor["data"] = tensor["data"][:n]
                if isinstance(tensor.get("shape"), list) and tensor["shape"]:
                    tensor["shape"][0] = n
    return case
