"""Request body schemas of the model server, from the served model's signature.

Exact where JSON Schema can be: column names, types, categories, the OIP tensor of each
column, CSV as written canonically, feedback items. Rules it cannot state (every column list
of one length, a tensor's ``shape[0]`` equal to its number of values, any column order) are
said in the descriptions; ``tests/integration/serve/schemathesis_hooks.py`` applies them.
"""

from __future__ import annotations

from typing import Any

from gitml.package.signature import FLOAT32_MAX, InputColumn
from gitml.serve.oip import V2_TYPES


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


# A number as the server reads it: JSON numbers, or text Python's float() reads (CSV cells),
# within the model's float32 range (a larger number is refused: signature.FLOAT32_MAX).
FLOAT_MAX = FLOAT32_MAX
FLOAT64_MAX = 1.7976931348623157e308  # a regression label: any finite number
# Bounded digits and exponent keep it inside that range (15 digits x 1e22 < 3.4e38).
NUMBER_TEXT = r"[+-]?(?:[0-9]{1,15}(?:\.[0-9]{0,15})?|\.[0-9]{1,15})(?:[eE](?:-[0-9]{1,2}|\+?(?:1?[0-9]|2[0-2])))?"
INT_TEXT = r"[+-]?[0-9]{1,15}"
# A date as the document states it: ISO 8601, a day with an optional time in UTC. The server
# reads more (any day of any month, offsets, fractions of a second: data.dates.request_dates);
# days up to 28 and years 1700-2199 (inside pandas' nanosecond range, 1678-2261) keep every
# text this pattern matches a date the server takes.
DATE_TEXT = r"(?:1[7-9]|2[01])[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?Z?)?"
NUMERIC_TEXT = rf"^\s*{NUMBER_TEXT}\s*$"


def numeric_text(dtype: str, nullable: bool = False) -> str:
    """The text a numeric column takes (an int column: no fraction); blank is a missing value."""
    text = INT_TEXT if dtype == "int" else NUMBER_TEXT
    return rf"^\s*(?:{text}){'?' if nullable else ''}\s*$"


def feedback_schemas(model: Any, max_rows: int) -> dict[str, Any]:
    """One labelled row (``row`` + ``label``), all rows of a request (``labels``), or a batch of either.

    A label is a class of the model, or for a regression model a number (the true value).
    """
    classes = list(model.classes)
    label: dict[str, Any] = {"anyOf": [{"enum": classes}, {"type": "string", "enum": [str(c) for c in classes]}],
                             "description": f"a class of the model: {', '.join(map(str, classes))}"}
    if model.regression:
        label = {"type": "number", "minimum": -FLOAT64_MAX, "maximum": FLOAT64_MAX,
                 "description": "the true value of the row's target (a regression model)"}
    request_id = {"type": "string", "pattern": r"^[A-Za-z0-9._:-]{1,128}$",
                  "description": "the x-request-id of the prediction, answered by this server process"}
    one_row = {"type": "object", "required": ["request_id", "label"], "additionalProperties": False,
               "properties": {"request_id": request_id, "label": label, "row": {
                   "type": "integer", "minimum": 0, "maximum": max_rows - 1, "default": 0,
                   "description": "row of that request (0-based)"}}}
    all_rows = {"type": "object", "required": ["request_id", "labels"], "additionalProperties": False,
                "properties": {"request_id": request_id, "labels": {
                    "type": "array", "items": label, "minItems": 1, "maxItems": max_rows,
                    "description": "true labels of rows 0..n-1"}}}
    return {"FeedbackItem": {"oneOf": [one_row, all_rows]},
            "FeedbackBatch": {"type": "object", "required": ["feedback"], "additionalProperties": False,
                              "properties": {"feedback": {"type": "array", "items": ref("FeedbackItem"),
                                                          "minItems": 1}}}}


def column_schema(spec: InputColumn) -> dict[str, Any]:
    dtype = spec.dtype
    if dtype == "category" and spec.open:
        levels = list(spec.categories or [])
        schema: dict[str, Any] = {"type": "string", "examples": levels[:20], "description": (
            f"a level such as {', '.join(levels[:5])}; a level the model has not seen is read as '(other)'")}
    elif dtype == "category":
        schema = {"type": "string", "enum": list(spec.categories or [])}
    elif dtype == "datetime":
        schema = {"type": "string", "pattern": f"^{DATE_TEXT}$", "description": (
            "a date or date and time, ISO 8601 (e.g. 2024-05-31 or 2024-05-31T14:00:00Z); any date, "
            "later ones included")}
    elif dtype == "bool":
        schema = {"oneOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}]}
    else:
        number = {"type": "integer" if dtype == "int" else "number", "minimum": -FLOAT_MAX, "maximum": FLOAT_MAX}
        text = {"type": "string", "pattern": numeric_text(dtype, spec.nullable)}
        schema = {"anyOf": [number, text], "description": "a number, or numeric text"}
    if spec.nullable:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


def signature_schemas(model: Any, max_rows: int = 10_000) -> dict[str, Any]:
    """The request schemas of the signature's columns; more than ``max_rows`` rows get 413."""
    inputs = model.signature.inputs

    def rows_of(item: dict[str, Any]) -> dict[str, Any]:
        return {"type": "array", "items": item, "minItems": 1, "maxItems": max_rows}

    names = [c.name for c in inputs]
    row = {"type": "object", "additionalProperties": False, "required": names,
           "properties": {c.name: column_schema(c) for c in inputs}}
    positional = {"type": "array", "minItems": len(names), "maxItems": len(names),
                  "prefixItems": [column_schema(c) for c in inputs],
                  "description": f"values in signature order: {', '.join(names)}"}
    columns = {"type": "object", "additionalProperties": False, "required": names,
               "description": "column -> its values, every list one length (or column -> one value: one row)",
               "properties": {c.name: rows_of(column_schema(c)) for c in inputs}}
    return {
        "InputRow": row,
        "InputRowValues": positional,
        "DataframeSplit": _one_key("dataframe_split", {
            "type": "object", "required": ["data"], "properties": {
                "columns": {"type": "array", "prefixItems": [{"const": n} for n in names], "minItems": len(names),
                            "maxItems": len(names), "description": "the signature's column names (default); "
                            "another order is read too, with each row's values in that order"},
                "data": rows_of(ref("InputRowValues")),
                "index": {"description": "ignored"}}}),
        "DataframeRecords": _one_key("dataframe_records", rows_of(ref("InputRow"))),
        "Instances": _one_key("instances", {"oneOf": [rows_of(ref("InputRow")), rows_of(ref("InputRowValues"))]}),
        "Inputs": _one_key("inputs", {"oneOf": [
            columns, ref("InputRow"), rows_of(ref("InputRow")), rows_of(ref("InputRowValues"))]}),
        "V2InferRequest": {"type": "object", "required": ["inputs"], "properties": {
            "id": {"description": "echoed back when it is a string (other values are ignored)"},
            "parameters": _lenient_object("binary_data_output"),
            "inputs": {"type": "array", "prefixItems": [v2_tensor(c, max_rows) for c in inputs], "minItems": len(names),
                       "maxItems": len(names), "description": "one tensor per signature column (listed in "
                       "signature order here; any order is read), each with n values, the same n for all"},
            "outputs": {"anyOf": [{"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "enum": list(model.outputs)},
                "parameters": _lenient_object("binary_data")}}}, {"type": "null"}],
                "description": "the outputs to answer; absent or null: all of them"}}},
    }


def _lenient_object(flag: str) -> dict[str, Any]:
    """OIP parameters: an object whose ``flag`` is true or false; a value that is no object is ignored."""
    return {"anyOf": [{"type": "object", "properties": {flag: {"type": "boolean"}}}, {"not": {"type": "object"}}],
            "description": f"{flag}: answer in binary (see the operation); not an object: ignored"}


def v2_tensor(spec: InputColumn, max_rows: int = 10_000) -> dict[str, Any]:
    """One input column as an OIP tensor in JSON: shape [n] or [n, 1], data n values (or n [value]s)."""
    value = column_schema(spec)
    nested = {"type": "array", "prefixItems": [value], "minItems": 1, "maxItems": 1}
    return {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
        "name": {"const": spec.name},
        "shape": {"type": "array", "prefixItems": [{"type": "integer", "minimum": 1, "maximum": max_rows},
                                                   {"const": 1}],
                  "minItems": 1, "maxItems": 2, "description": "[n] or [n, 1]; data holds n values"},
        "datatype": {"enum": list(V2_TYPES[spec.dtype])},
        "data": {"oneOf": [{"type": "array", "minItems": 1, "maxItems": max_rows, "items": value},
                           {"type": "array", "minItems": 1, "maxItems": max_rows, "items": nested}]},
        "parameters": {"anyOf": [{"type": "object", "properties": {"binary_data_size": False}},
                                 {"not": {"type": "object"}}],
                       "description": "binary_data_size only with the binary extension (see the operation); "
                       "not an object: ignored"},
    }}


def _one_key(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [key], "additionalProperties": False,
            "properties": {key: schema, "params": {"description": "ignored (MLflow's inference parameters)"}}}


def csv_pattern(model: Any) -> str:
    """A CSV body as written canonically: the header in signature order, then rows of valid cells."""
    import re

    def cell(spec: InputColumn) -> str:
        if spec.dtype == "category" and spec.open:
            text = '[^,\r\n"\x00]+'  # any level: an unseen one is read as "(other)"
        elif spec.dtype == "category":
            text = "(?:" + "|".join(re.escape(str(c)) for c in spec.categories or []) + ")"
        else:
            text = {"bool": "(?:0|1)", "int": INT_TEXT, "datetime": DATE_TEXT}.get(spec.dtype, NUMBER_TEXT)
        return f"(?:{text})?" if spec.nullable else f"(?:{text})"

    inputs = model.signature.inputs
    header = ",".join(re.escape(c.name) for c in inputs)
    return f"^{header}(?:\\r?\\n{','.join(map(cell, inputs))})+\\r?\\n?$"
