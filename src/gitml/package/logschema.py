"""The request and feedback log contract (docs/logs.md): the one definition writer and readers share.

``gitml serve`` (serve/requestlog.py) writes these files; the drift check and retraining
(monitor/logs.py, monitor/quality.py) read them. A bundle's signature fixes the feature
and probability columns: :func:`request_columns` lists them in file order; and the type of
``prediction`` and ``label``: :func:`label_type` (a number for regression, else text).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitml.package.signature import Signature

REQUESTS, FEEDBACK = "requests", "feedback"  # the two logs, folders under serve.log_dir
REQUEST_ID, ROW, TS, MODEL_VERSION, PREDICTION, LABEL = "request_id", "row", "ts", "model_version", "prediction", "label"
KEYS = (REQUEST_ID, ROW)  # one logged row; a label joins its prediction on these
REQUEST_META = (REQUEST_ID, ROW, TS, MODEL_VERSION)  # before the features in a request-log file
FEEDBACK_COLUMNS = (REQUEST_ID, ROW, LABEL, TS)
# The type of ``prediction`` and ``label``: a class as text, or for a regression model a number.
LABEL_TEXT, LABEL_NUMBER = "string", "float64"
PROBA_PREFIX = "proba_"  # then one probability column per class
NOT_INPUTS = frozenset({*REQUEST_META, PREDICTION})  # request-log columns that are no feature
INDEXED = (REQUEST_ID, ROW, TS, MODEL_VERSION, PREDICTION, LABEL)  # columns written with statistics
PART_GLOB = "date=*/hour=*/part-*.parquet"  # <log_dir>/<log>/date=YYYY-MM-DD/hour=HH/part-<ns>-<pid>-<seq>.parquet


def request_columns(signature: Signature) -> list[str]:
    """The columns of a request-log file written for a bundle with ``signature``, in order
    (a regression bundle's has no probability column)."""
    return [*REQUEST_META, *signature.features, PREDICTION, *signature.proba_columns]


def label_type(signature: Signature) -> str:
    """The type of the ``prediction`` column of the request log and the ``label`` column of the
    feedback log for a bundle with ``signature``: ``float64`` for regression, else ``string``."""
    return LABEL_NUMBER if signature.regression else LABEL_TEXT
