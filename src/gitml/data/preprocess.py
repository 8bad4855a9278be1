"""Preprocessing fitted on the training split only, stored as plain JSON (no pickle).

Numeric and boolean columns: imputation (median, mean or a constant; ``data.preprocess.
numeric_impute``), then standard or min-max scaling. Datetime columns expand into numeric
parts (``datetime_parts``: year, month, ..., and "days" since the training split's earliest
date, so later dates extend the scale) imputed and scaled alike; never a category. Each
nullable numeric, bool or datetime column may add a 0/1 missing indicator
(``missing_indicator``). Categorical columns: one-hot or ordinal, with the levels taken from
the data contract so every split and every request encodes alike; ``max_levels`` keeps the
most frequent ones and reads the rest, and any level an ``open`` column has not listed, as
"(other)"; a missing category is all zeros (-1 ordinal), the most frequent level or a
"(missing)" level of its own (``categorical_impute``). Memory is one float32 matrix of
rows x features: a capped one-hot never grows with the levels the data holds.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.config.schema import (
    CategoricalImpute,
    Encoding,
    NumericImpute,
    PreprocessConfig,
    Scaling,
)
from gitml.data.contract import ColumnSpec, Contract
from gitml.data.dates import SECONDS_PER_DAY, date_parts, epoch_seconds
from gitml.data.task import regression_labels, task_of_classes
from gitml.errors import GitmlError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FORMAT = "gitml.preprocessor/v1"
OTHER, MISSING = "(other)", "(missing)"
# Written only when set: a preprocessor without dates, caps or imputation options is the
# same JSON as before they existed, and one written then reads as having none.
OPTIONAL = ("dates", "origin", "indicators", "other", "missing_level", "category_fill")
log = logging.getLogger(__name__)


@dataclass
class Preprocessor:
    numeric: list[str]
    categorical: list[str]
    label: str
    classes: list[Any]  # empty for regression
    scaling: str = Scaling.standard.value
    encoding: str = Encoding.onehot.value
    fill: dict[str, float] = field(default_factory=dict)  # by scalar feature: a numeric column or a date part
    center: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    levels: dict[str, list[str]] = field(default_factory=dict)
    dates: dict[str, list[str]] = field(default_factory=dict)  # datetime column -> its parts
    origin: dict[str, float] = field(default_factory=dict)  # datetime column -> epoch second "days" counts from
    indicators: list[str] = field(default_factory=list)  # columns with a 0/1 missing feature
    other: list[str] = field(default_factory=list)  # categorical columns with an "(other)" level
    missing_level: list[str] = field(default_factory=list)  # categorical columns with a "(missing)" level
    category_fill: dict[str, str] = field(default_factory=dict)  # categorical column -> level a null takes
    task: str = ""  # binary, multiclass or regression; empty (files written before tasks): from the classes

    def __post_init__(self) -> None:
        self.task = self.task or task_of_classes(self.classes)

    @property
    def regression(self) -> bool:
        return self.task == "regression"

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(cls, train: pd.DataFrame, contract: Contract, cfg: PreprocessConfig) -> Preprocessor:
        return cls.fit_columns(train.__getitem__, contract, cfg)

    @classmethod
    def fit_columns(cls, column: Callable[[str], pd.Series], contract: Contract, cfg: PreprocessConfig) -> Preprocessor:
        """:meth:`fit` reading the training split a column at a time (``column(name)``): each statistic is one column's."""
        import numpy as np

        specs = contract.columns
        prep = cls(numeric=[c for c, s in specs.items() if s.dtype in ("int", "float", "bool")],
                   categorical=[c for c, s in specs.items() if s.dtype == "category"], label=contract.label,
                   classes=list(contract.classes), task=contract.task, scaling=cfg.scaling.value,
                   encoding=cfg.categorical.value,
                   dates={c: list(cfg.datetime_parts) for c, s in specs.items() if s.dtype == "datetime"})
        if cfg.missing_indicator:
            prep.indicators = [c for c in [*prep.numeric, *prep.dates] if specs[c].max_null_fraction > 0]
        for name in prep.numeric:  # float64, NaN where missing
            prep._fit_scalars([name], column(name).to_numpy(dtype="float64", na_value=np.nan)[:, None], cfg)
        for name, parts in prep.dates.items():  # midnight of the earliest training date: "days" counts whole days
            seconds = epoch_seconds(column(name))
            earliest = float(np.nanmin(seconds)) if (seconds == seconds).any() else 0.0
            prep.origin[name] = math.floor(earliest / SECONDS_PER_DAY) * SECONDS_PER_DAY
            prep._fit_scalars([f"{name}.{p}" for p in parts], date_parts(seconds, parts, prep.origin[name]), cfg)
        for name in prep.categorical:
            prep._fit_levels(name, specs[name], column(name), cfg)
        for name, other in contract.excluded.items():
            log.info("column '%s' (%s) is not a model feature: %s", name, other.dtype, other.reason)
        return prep

    def _fit_scalars(self, names: list[str], raw: np.ndarray, cfg: PreprocessConfig) -> None:  # raw: NaN missing
        import pandas as pd

        for j, name in enumerate(names):
            values = pd.Series(raw[:, j])
            if cfg.numeric_impute is NumericImpute.constant:
                fill = float(cfg.fill_value)
            elif not values.notna().any():
                fill = 0.0
            else:
                fill = float(values.median() if cfg.numeric_impute is NumericImpute.median else values.mean())
            filled = values.fillna(fill)
            if self.scaling == "standard":
                center, scale = float(filled.mean()), float(filled.std(ddof=0))
            elif self.scaling == "minmax":
                center, scale = float(filled.min()), float(filled.max() - filled.min())
            else:
                center, scale = 0.0, 1.0
            self.fill[name], self.center[name] = fill, center
            self.scale[name] = scale if scale > 1e-12 else 1.0

    def _fit_levels(self, name: str, spec: ColumnSpec, values: pd.Series, cfg: PreprocessConfig) -> None:
        """The contract's levels, capped to the ``max_levels`` most frequent in training; nulls per config."""
        declared = list(spec.categories or [])
        counts = values.dropna().astype(str).value_counts()
        levels, other = declared, spec.open
        if cfg.max_levels is not None and len(declared) > cfg.max_levels:
            kept = set(sorted(declared, key=lambda v: (-int(counts.get(v, 0)), v))[:cfg.max_levels])
            levels, other = [v for v in declared if v in kept], True
        self.levels[name] = levels
        if other:
            self.other.append(name)
        if spec.max_null_fraction > 0 and cfg.categorical_impute is CategoricalImpute.missing_level:
            self.missing_level.append(name)
        elif spec.max_null_fraction > 0 and cfg.categorical_impute is CategoricalImpute.most_frequent and levels:
            known = counts[counts.index.isin(levels)]
            self.category_fill[name] = str(known.index[0]) if len(known) else levels[0]

    # ------------------------------------------------------------ transform
    def _scalar_names(self) -> list[str]:
        """Numeric columns, then each date's parts: the features imputed and scaled."""
        return [*self.numeric, *(f"{name}.{part}" for name, parts in self.dates.items() for part in parts)]

    def feature_names(self) -> list[str]:
        names = [*self._scalar_names(), *(f"{name}.missing" for name in self.indicators)]
        for name in self.categorical:
            if self.encoding == "onehot":
                names += [f"{name}={level}" for level in self._levels_out(name)]
            else:
                names.append(name)
        return names

    def _levels_out(self, name: str) -> list[str]:
        """A column's levels as encoded: the kept ones, then "(other)" and "(missing)" when it has them."""
        return [*self.levels[name], *([OTHER] if name in self.other else []),
                *([MISSING] if name in self.missing_level else [])]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Model-ready float32 matrix, columns in :meth:`feature_names` order.

        Written straight into one preallocated float32 matrix: no per-block copies to
        stack, and a frame whose columns already are the numeric inputs is read without a
        column selection (the model server's validated frames are).
        """
        import numpy as np

        widths = [len(self._levels_out(c)) if self.encoding == "onehot" else 1 for c in self.categorical]
        k = len(self._scalar_names())
        out = np.empty((len(frame), k + len(self.indicators) + sum(widths)), dtype="float32")
        if k:
            raw = self._scalars(frame)
            center, scale, filled = self._scaling()
            scaled = np.subtract(raw, center)
            np.divide(scaled, scale, out=scaled)
            missing = np.isnan(scaled)
            if missing.any():  # imputed, scaled like the rest
                np.copyto(scaled, np.broadcast_to(filled, scaled.shape), where=missing)
            # An input the signature takes (up to float32's largest) may scale past it: kept
            # finite, so a model reads a very large number rather than inf (scikit-learn refuses inf).
            limit = np.finfo(np.float32).max
            np.clip(scaled, -limit, limit, out=scaled)
            out[:, :k] = scaled
            for i, name in enumerate(self.indicators):
                out[:, k + i] = np.isnan(raw[:, self._scalar_position(name)])
        position = k + len(self.indicators)
        for name, width in zip(self.categorical, widths, strict=True):
            codes = self._codes(frame[name], name)
            block = out[:, position:position + width]
            if self.encoding == "onehot":
                block[:] = 0.0
                known = codes >= 0
                block[np.nonzero(known)[0], codes[known]] = 1.0
            else:
                block[:, 0] = codes
            position += width
        return out

    def _scalars(self, frame: pd.DataFrame) -> np.ndarray:
        """float64 rows x scalar features, NaN where missing: numeric columns, then date parts."""
        import numpy as np

        k = len(self.numeric)
        if not self.dates:
            same = len(frame.columns) == k and all(a == b for a, b in zip(frame.columns, self.numeric, strict=True))
            return (frame if same else frame[self.numeric]).to_numpy(dtype="float64", na_value=np.nan)
        widths = [len(parts) for parts in self.dates.values()]
        raw = np.empty((len(frame), k + sum(widths)))
        if k:
            raw[:, :k] = frame[self.numeric].to_numpy(dtype="float64", na_value=np.nan)
        for (name, parts), width in zip(self.dates.items(), widths, strict=True):
            raw[:, k:k + width] = date_parts(epoch_seconds(frame[name]), parts, self.origin.get(name, 0.0))
            k += width
        return raw

    def _scalar_position(self, name: str) -> int:
        """Where a column's value (a date: its first part) sits among the scalar features."""
        if name in self.numeric:
            return self.numeric.index(name)
        return self._scalar_names().index(f"{name}.{self.dates[name][0]}")

    def _scaling(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(center, scale, the scaled fill value) per scalar feature."""
        import numpy as np

        names = self._scalar_names()
        center = np.array([self.center[c] for c in names])
        scale = np.array([self.scale[c] for c in names])
        return center, scale, (np.array([self.fill[c] for c in names]) - center) / scale

    def _codes(self, series: pd.Series, name: str) -> np.ndarray:
        """Level positions in :meth:`_levels_out` order; -1 for a value no level takes."""
        import numpy as np
        import pandas as pd

        levels = self.levels[name]
        text = series.astype("string")
        if name in self.category_fill:
            text = text.fillna(self.category_fill[name])
        missing = text.isna().to_numpy()
        codes = np.asarray(pd.Index(levels).get_indexer(text.fillna("\0")), dtype="int64")
        extra = len(levels)
        if name in self.other:
            codes[(codes < 0) & ~missing] = extra
            extra += 1
        if name in self.missing_level:
            codes[missing] = extra
        return codes

    def encode_labels(self, labels: pd.Series) -> np.ndarray:
        """Class codes (int64) for a classification task; the numbers (float64) for regression."""
        import numpy as np

        if self.regression:
            return regression_labels(labels, self.label)

        index = {_key(c): i for i, c in enumerate(self.classes)}
        codes = np.array([index.get(_key(v), -1) for v in labels], dtype="int64")
        if (codes < 0).any():
            bad = sorted({str(v) for v, c in zip(labels, codes, strict=True) if c < 0})[:5]
            raise GitmlError(f"Label value(s) {bad} not in the known classes {self.classes}.")
        return codes

    # ---------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **{k: v for k, v in asdict(self).items() if v or k not in OPTIONAL}}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Preprocessor:
        return cls.from_bytes(Path(path).read_bytes(), str(path))

    @classmethod
    def from_bytes(cls, raw: bytes, where: str) -> Preprocessor:
        """Parse the JSON bytes of a saved preprocessor; ``where`` names it in errors."""
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise GitmlError(f"'{where}' is not a gitml preprocessor ({FORMAT}): not JSON ({exc}).") from exc
        if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
            raise GitmlError(f"'{where}' is not a gitml preprocessor ({FORMAT}).")
        try:
            return cls(**data)
        except TypeError as exc:
            raise GitmlError(f"'{where}' is not a gitml preprocessor ({FORMAT}): {exc}.") from exc


def _key(value: Any) -> str:
    # Labels round-trip through Parquet, JSON and CSV: compare 1, 1.0 and "1" alike.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)
