"""Send traffic to a running server and label it: the production half of the loop, on demand.

Rows come from the synthetic generator (for a model trained on ``data=synthetic``: the
training configuration with its ``shift`` knob set, which moves the numeric columns) or from the prepared test split with a covariate
shift of ``shift`` standard deviations added to every numeric column. Each batch is one
``POST /invocations``; its true labels then go to ``POST /feedback``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.errors import GitmlError

if TYPE_CHECKING:
    import pandas as pd

SOURCES = ("synthetic", "test")


@dataclass
class SimulationResult:
    url: str
    batches: int = 0
    rows: int = 0
    failed: int = 0
    correct: int = 0
    absolute_error: float = 0.0  # sum over the rows answered, for a regression model
    regression: bool = False  # the served model predicts a number: summarised by MAE, not accuracy
    labelled: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        score = self.absolute_error if self.regression else self.correct
        quality = f"{'MAE' if self.regression else 'accuracy'} {f'{score / self.rows:.3f}' if self.rows else 'n/a'}"
        versions = ", ".join(f"{v} ({n} batches)" for v, n in self.versions.items()) or "none"
        line = (f"sent {self.batches} batch(es), {self.rows} row(s) to {self.url} in {self.seconds:.1f}s: "
                f"{self.failed} failed, {quality}, {self.labelled} label(s) posted; model {versions}")
        if self.errors:
            line += f"; first error: {self.errors[0]}"
        return line


def simulate(url: str, batches: int, batch_rows: int, source: str = "synthetic", shift: float = 0.0,
             seed: int = 0, data_dir: str | Path | None = None, params_file: str | Path | None = None,
             feedback: bool = True, timeout: float = 30.0) -> SimulationResult:
    """Send ``batches`` batches of ``batch_rows`` rows to ``url`` (and their labels, with ``feedback``).

    ``data_dir`` (the prepared splits, for ``source="test"``) defaults to ``paths.prepared``.

    Example:
        >>> simulate("http://127.0.0.1:8080", batches=10, batch_rows=200, source="test", shift=1.0)
    """
    import httpx

    if source not in SOURCES:
        raise GitmlError(f"Unknown source '{source}'. Allowed: {', '.join(SOURCES)}.")
    if batches < 1 or batch_rows < 1:
        raise GitmlError("--batches and --batch-rows must be at least 1.")
    from gitml.config.params import has_data, load_params_or_defaults

    params = load_params_or_defaults(params_file)
    data = params.data if has_data(params) else None
    target = data.target if data is not None else "target"
    data_dir = data_dir if data_dir is not None else params.paths.prepared
    result = SimulationResult(url.rstrip("/"))
    started = time.perf_counter()
    with httpx.Client(base_url=result.url, timeout=timeout) as client:
        inputs, result.regression = _server_inputs(client)
        make = _synthetic(data, params_file, target, shift) if source == "synthetic" else _test_rows(data_dir, target, shift)
        for number in range(batches):
            frame = make(batch_rows, seed + number)
            _check_columns(frame, inputs, target, source)
            _send(client, frame, inputs, target, feedback, result)
    result.seconds = time.perf_counter() - started
    return result


def _server_inputs(client: Any) -> tuple[dict[str, str], bool]:
    """The served model's inputs (name -> OIP datatype), and whether it is a regression model."""
    import httpx

    try:
        name = client.get("/version").raise_for_status().json()["name"]
        metadata = client.get(f"/v2/models/{name}").raise_for_status().json()
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise GitmlError(f"Cannot read the model's metadata from {client.base_url}: {exc}. "
                         "Is `gitml serve` running there?") from exc
    regression = (metadata.get("parameters") or {}).get("task") == "regression"
    return {t["name"]: t["datatype"] for t in metadata["inputs"]}, regression


def _synthetic(data: Any, params_file: str | Path | None, target: str, shift: float) -> Any:
    from gitml.config.schema import SourceKind
    from gitml.data.sources import generate_synthetic

    if data is None or data.source.kind is not SourceKind.synthetic:
        raise GitmlError(f"--source synthetic needs the params file of a model trained on data=synthetic "
                         f"(got {params_file or 'no params.yaml'}: "
                         f"{'missing' if data is None else 'data.source.kind=' + data.source.kind.name}). "
                         "Use --source test for other data.")
    # The generator's class structure depends on its seed and size, so draw from exactly the
    # training configuration (plus the shift) and sample each batch from that pool.
    pool = generate_synthetic(dataclasses.replace(data.source.synthetic, shift=shift), target)

    def make(rows: int, seed: int) -> pd.DataFrame:
        return pool.sample(n=rows, random_state=seed, replace=rows > len(pool)).reset_index(drop=True)

    return make


def _test_rows(data_dir: str | Path, target: str, shift: float) -> Any:
    import numpy as np
    import pandas as pd

    path = Path(data_dir) / "test.parquet"
    if not path.is_file():
        raise GitmlError(f"No test split at '{path}': run the pipeline (`dvc repro`) or pass --data.")
    test = pd.read_parquet(path)
    numeric = [c for c in test.columns if c != target and pd.api.types.is_numeric_dtype(test[c])
               and not pd.api.types.is_bool_dtype(test[c])]
    spread = {c: float(test[c].std(ddof=0) or 0.0) for c in numeric}

    def make(rows: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        frame = test.iloc[rng.integers(0, len(test), size=rows)].reset_index(drop=True)
        for column in numeric:
            moved = frame[column].astype("float64") + shift * spread[column]
            integral = pd.api.types.is_integer_dtype(test[column])
            frame[column] = moved.round().astype(test[column].dtype) if integral else moved
        return frame

    return make


def _check_columns(frame: pd.DataFrame, inputs: dict[str, str], target: str, source: str) -> None:
    missing = [c for c in inputs if c not in frame.columns]
    if missing or target not in frame.columns:
        raise GitmlError(f"The {source} rows do not fit the served model: missing "
                         f"{', '.join(missing[:5]) or target}. Was it trained on this data?")


def _send(client: Any, frame: pd.DataFrame, inputs: dict[str, str], target: str, feedback: bool,
          result: SimulationResult) -> None:
    import httpx

    columns = list(inputs)
    rows = frame[columns].astype(object).where(frame[columns].notna(), None).to_numpy().tolist()
    labels = frame[target].tolist()
    result.batches += 1
    try:
        response = client.post("/invocations", json={"dataframe_split": {"columns": columns, "data": rows}})
        response.raise_for_status()
        answer = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        result.failed += 1
        result.errors.append(_describe(exc))
        return
    result.rows += len(rows)
    version = str(answer.get("model_version"))
    result.versions[version] = result.versions.get(version, 0) + 1
    predicted = [p["prediction"] for p in answer["predictions"]]
    if result.regression:  # a null (non-finite) answer counts as an infinite error
        result.absolute_error += sum(abs(float(y) - p) if p is not None else float("inf")
                                     for p, y in zip(predicted, labels, strict=True))
    else:
        result.correct += sum(str(p) == str(y) for p, y in zip(predicted, labels, strict=True))
    if feedback:
        try:
            client.post("/feedback", json={"request_id": answer["request_id"],
                                           "labels": [_plain(v) for v in labels]}).raise_for_status()
            result.labelled += len(labels)
        except httpx.HTTPError as exc:
            result.errors.append(_describe(exc))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _describe(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    return str(exc)[:200]
