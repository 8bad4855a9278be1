"""Data sources selected by ``data.source``: scikit-learn built-ins, CSV, Parquet, synthetic.

Every source returns one DataFrame with feature columns and the label column named
``target`` (``data.target``). Column names are normalised to snake_case so they are easy
to use in config (slices), JSON requests and SQL-ish tools.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from gitml.config.schema import SourceConfig, SourceKind, SyntheticConfig
from gitml.errors import DataSourceError

if TYPE_CHECKING:
    import pandas as pd

SKLEARN_SETS = ("breast_cancer", "wine", "iris", "digits", "diabetes")  # diabetes: regression


def snake_case(name: str) -> str:
    """``"mean radius"`` -> ``"mean_radius"``; ``"OD280/OD315 of x"`` -> ``"od280_od315_of_x"``."""
    cleaned = re.sub(r"[^0-9a-zA-Z]+", "_", str(name)).strip("_").lower()
    return cleaned or "col"


def load_source(source: SourceConfig, target: str, root: Path = Path(".")) -> pd.DataFrame:
    """Load the configured source as a DataFrame whose label column is ``target``."""
    if source.kind is SourceKind.sklearn:
        frame = load_sklearn(source.name or "", target)
    elif source.kind in (SourceKind.csv, SourceKind.parquet):
        frame = load_file(root / (source.path or ""), source.kind, source.label or target, target)
    elif source.kind is SourceKind.synthetic:
        frame = generate_synthetic(source.synthetic, target)
    else:  # pragma: no cover - the enum is exhaustive
        raise DataSourceError(f"Unknown source kind {source.kind!r}.")
    return frame


def load_sklearn(name: str, target: str) -> pd.DataFrame:
    import pandas as pd

    from gitml.data.toysets import read_toy_set

    if name not in SKLEARN_SETS:
        raise DataSourceError(
            f"Unknown scikit-learn data set '{name}' in 'data.source.name'. "
            f"Allowed: {', '.join(SKLEARN_SETS)}."
        )
    found = read_toy_set(name)
    if found is None:  # not where scikit-learn keeps its files: ask scikit-learn
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name}")(**({"scaled": False} if name == "diabetes" else {}))
        found = list(bunch.feature_names), bunch.data, bunch.target
    names, data, labels = found
    frame = pd.DataFrame(data, columns=[snake_case(c) for c in names])
    frame[target] = labels if labels.dtype.kind == "f" else labels.astype("int64")
    return frame


def read_csv(path: Path, label: str) -> pd.DataFrame:
    """``path`` as pandas reads it, except a text label: there only an empty field is missing.

    pandas reads "NA", "None", "null", "N/A", "NaN" and a few more as missing in every column,
    so a class named "NA" (North America) or "None" (no plan) vanished: `gitml schema infer`
    found two classes of three, and validate then failed the very file the contract came from
    (a third of its labels missing). A numeric label keeps pandas' reading. ``label`` is
    matched by its snake_case name, as ingest and infer match it.
    """
    import pandas as pd
    from pandas.api import types

    frame = pd.read_csv(path)
    names = [c for c in frame.columns if snake_case(str(c)) == snake_case(label)]
    if len(names) != 1 or not frame[names[0]].isna().any():
        return frame
    parsed = frame[names[0]]
    if types.is_numeric_dtype(parsed) and not types.is_bool_dtype(parsed):
        return frame
    text = pd.read_csv(path, usecols=[names[0]], dtype=str, keep_default_na=False)[names[0]]
    if (parsed.isna() & (text != "")).any():  # words pandas took for missing values
        frame[names[0]] = text.where(text != "", None)
    return frame


def load_file(path: Path, kind: SourceKind, label: str, target: str) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise DataSourceError(f"Source file '{path}' (data.source.path) does not exist.")
    try:
        frame = read_csv(path, label) if kind is SourceKind.csv else pd.read_parquet(path)
    except Exception as exc:
        raise DataSourceError(f"Cannot read {kind.name} file '{path}': {exc}") from exc
    frame.columns = [snake_case(c) for c in frame.columns]
    label = snake_case(label)
    if label not in frame.columns:
        raise DataSourceError(
            f"Label column '{label}' (data.source.label) not found in '{path}'. "
            f"Columns: {', '.join(frame.columns)}."
        )
    return frame.rename(columns={label: target})


def iter_source(source: SourceConfig, target: str, root: Path = Path("."),
                chunk_rows: int = 100_000) -> Iterator[pd.DataFrame]:
    """The configured source as frames of at most ``chunk_rows`` rows (label column ``target``).

    A CSV or Parquet file is streamed, never loaded whole (:func:`iter_csv`, Parquet batch by
    batch); the built-in sets and the generator are made in memory and handed out in slices.
    Concatenated, the frames are :func:`load_source`'s frame.
    """
    if source.kind in (SourceKind.csv, SourceKind.parquet):
        path = root / (source.path or "")
        if not path.is_file():
            raise DataSourceError(f"Source file '{path}' (data.source.path) does not exist.")
        label = snake_case(source.label or target)
        try:
            frames = iter_csv(path, source.label or target, chunk_rows) if source.kind is SourceKind.csv \
                else _iter_parquet(path, chunk_rows)
            for frame in frames:
                yield _named(frame, label, target, path)
        except (ValueError, OSError) as exc:  # pandas' ParserError and ArrowInvalid are ValueErrors
            raise DataSourceError(f"Cannot read {source.kind.name} file '{path}': {exc}") from exc
        return
    frame = load_source(source, target, root)
    for start in range(0, max(len(frame), 1), chunk_rows):
        yield frame.iloc[start:start + chunk_rows]


def _iter_parquet(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    from gitml.data.chunks import Snapshot

    snapshot = Snapshot([path])
    if snapshot.rows == 0:  # no batches: the header alone
        yield pq.read_schema(path).empty_table().to_pandas()
    yield from snapshot.chunks(chunk_rows)


def iter_csv(path: Path, label: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """:func:`read_csv` in frames of ``chunk_rows`` rows, typed as the whole file would be.

    pandas types each chunk anew (an int column with a blank in one chunk is float64 there
    only), so a first pass finds the type the whole file gives each column and whether the
    label needs reading as text; the second pass yields the chunks cast to those types.
    """
    import pandas as pd
    from pandas.api import types

    heads, text_label, name = [], False, None
    for chunk, text in _csv_passes(path, label, chunk_rows):
        heads.append(chunk.iloc[:1])
        if text is not None:
            name = str(text.name)
            text_label |= bool((chunk[name].isna() & (text != "")).any())
    dtypes = pd.concat(heads, ignore_index=True).dtypes if len(heads) > 1 else heads[0].dtypes
    if name is not None and (types.is_numeric_dtype(dtypes[name]) and not types.is_bool_dtype(dtypes[name])):
        text_label = False
    for chunk, text in _csv_passes(path, label, chunk_rows, text_label):
        changed = {c: dtypes[c] for c in chunk.columns if chunk[c].dtype != dtypes[c]}
        chunk = chunk.astype(changed) if changed else chunk
        if text is not None:
            chunk[text.name] = text.where(text != "", None)
        yield chunk


def _csv_passes(path: Path, label: str, chunk_rows: int, text_label: bool = True,
                ) -> Iterator[tuple[pd.DataFrame, pd.Series | None]]:
    """(chunk, the label column read as text or None) pairs; the text only when the label is found once."""
    import pandas as pd

    chunks = pd.read_csv(path, chunksize=chunk_rows)
    names = [c for c in pd.read_csv(path, nrows=0).columns if snake_case(str(c)) == snake_case(label)]
    if len(names) != 1 or not text_label:
        for chunk in chunks:
            yield chunk, None
        return
    texts = pd.read_csv(path, usecols=names, dtype=str, keep_default_na=False, chunksize=chunk_rows)
    for chunk, text in zip(chunks, texts, strict=True):
        yield chunk, text[names[0]].set_axis(chunk.index)


def _named(frame: pd.DataFrame, label: str, target: str, path: Path) -> pd.DataFrame:
    frame.columns = [snake_case(c) for c in frame.columns]
    if label not in frame.columns:
        raise DataSourceError(
            f"Label column '{label}' (data.source.label) not found in '{path}'. "
            f"Columns: {', '.join(frame.columns)}."
        )
    return frame.rename(columns={label: target})


def generate_synthetic(cfg: SyntheticConfig, target: str) -> pd.DataFrame:
    """Gaussian class clusters with categorical columns tied to the label, plus knobs.

    ``shift`` moves the first ``shift_features`` numeric columns by that many standard
    deviations *after* labelling, a pure covariate shift: P(y|x) stays put for unshifted
    columns, P(x) moves. Categorical levels are strings ``"a".."z"``.
    """
    import numpy as np
    import pandas as pd

    if cfg.n_rows < cfg.n_classes or cfg.n_classes < 2:
        raise DataSourceError("Synthetic data needs n_classes >= 2 and n_rows >= n_classes.")
    rng = np.random.default_rng(cfg.seed)
    weights = np.asarray(cfg.class_weights or [1.0] * cfg.n_classes, dtype=float)
    if weights.shape != (cfg.n_classes,) or (weights <= 0).any():
        raise DataSourceError(
            f"'data.source.synthetic.class_weights' needs {cfg.n_classes} positive numbers."
        )
    labels = rng.choice(cfg.n_classes, size=cfg.n_rows, p=weights / weights.sum())
    centers = rng.normal(0.0, cfg.class_sep, size=(cfg.n_classes, cfg.n_numeric))
    numeric = centers[labels] + rng.normal(0.0, 1.0, size=(cfg.n_rows, cfg.n_numeric))
    columns: dict[str, object] = {}
    n_shift = cfg.n_numeric if cfg.shift_features is None else min(cfg.shift_features, cfg.n_numeric)
    for j in range(cfg.n_numeric):
        values = numeric[:, j]
        if cfg.shift and j < n_shift:
            values = values + cfg.shift * values.std()
        columns[f"num_{j}"] = values.astype("float64")
    levels = np.array([chr(ord("a") + i) for i in range(min(cfg.n_levels, 26))])
    for j in range(cfg.n_categorical):
        # Each class prefers a different level, so categoricals carry signal.
        preferred = (labels + j) % len(levels)
        random_level = rng.integers(0, len(levels), size=cfg.n_rows)
        use_preferred = rng.random(cfg.n_rows) < 0.6
        columns[f"cat_{j}"] = levels[np.where(use_preferred, preferred, random_level)]
    frame = pd.DataFrame(columns)
    frame[target] = labels.astype("int64")
    return frame
