"""Turn signature-shaped frames into the arrays alibi-detect tests, the same way each time.

Two views of the same rows:

- :meth:`FeatureEncoding.codes` for the univariate detectors (``ks``, ``tabular``):
  numeric columns as they are, categorical columns as integer codes in the order of the
  signature's categories (an unknown or missing level gets the extra code ``len(levels)``,
  so new levels show up as drift instead of vanishing).
- :meth:`FeatureEncoding.standardised` for the multivariate ones (``mmd``,
  ``classifier``): numeric columns as z-scores with the *reference* mean and standard
  deviation, categorical columns one-hot (unknown levels: all zeros).

Datetime inputs are not tested (listed in ``dates``): production rows are dated after the
training range by nature, so a test of the date itself would report drift on every run and
open a retraining pull request each time. The drift check says so in a note.
Missing numeric values take the reference median, as the model's preprocessing does;
so do infinities (the drift check counts them first, see :mod:`gitml.monitor.quality`).
The encoding is plain JSON, stored next to a cached detector.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from gitml.errors import RequestLogError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from gitml.package.signature import Signature


@dataclass
class FeatureEncoding:
    """Column order, categorical levels and reference statistics of the bundle's inputs."""

    numeric: list[str]
    categorical: list[str]
    levels: dict[str, list[str]] = field(default_factory=dict)
    fill: dict[str, float] = field(default_factory=dict)
    center: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    dates: list[str] = field(default_factory=list)  # datetime inputs, not tested (see the module doc)

    @property
    def columns(self) -> list[str]:
        """Feature order of :meth:`codes`: numeric first, then categorical."""
        return [*self.numeric, *self.categorical]

    @property
    def tests(self) -> list[str]:
        """The univariate test ``tabular`` runs on each column of :meth:`codes`."""
        return ["ks"] * len(self.numeric) + ["chi2"] * len(self.categorical)

    @classmethod
    def fit(cls, reference: pd.DataFrame, signature: Signature) -> FeatureEncoding:
        """Read the column kinds and levels from ``signature``, the statistics from ``reference``."""
        inputs = signature.inputs
        encoding = cls(
            numeric=[c.name for c in inputs if c.dtype not in ("category", "datetime")],
            categorical=[c.name for c in inputs if c.dtype == "category"],
            dates=[c.name for c in inputs if c.dtype == "datetime"],
        )
        _require(reference, encoding.columns, "the bundle's reference sample")
        for spec in inputs:
            if spec.dtype == "category":
                # The signature's levels, plus any the reference holds that it does not.
                seen = reference[spec.name].dropna().astype(str).unique().tolist()
                declared = [str(v) for v in spec.categories or []]
                encoding.levels[spec.name] = declared + sorted(set(seen) - set(declared))
        if encoding.numeric:
            import numpy as np

            # One row per column (contiguous), so each statistic reads memory in order.
            values = float_rows(reference, encoding.numeric, dates=encoding.dates)
            seen = np.isfinite(values)
            if seen.all():  # the usual case
                medians, filled = np.median(values, axis=1), values
            else:
                medians = np.array([np.median(row[ok]) if ok.any() else 0.0
                                    for row, ok in zip(values, seen, strict=True)])
                filled = np.where(seen, values, medians[:, None])
            centers, scales = filled.mean(axis=1), filled.std(axis=1)
            for j, name in enumerate(encoding.numeric):
                encoding.fill[name], encoding.center[name] = float(medians[j]), float(centers[j])
                encoding.scale[name] = float(scales[j]) if scales[j] > 1e-12 else 1.0
        return encoding

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        """``(rows, columns)`` float64: numeric values, then categorical codes.

        Built column by column and returned as a Fortran-ordered array: the univariate
        tests read one column at a time.
        """
        import numpy as np

        _require(frame, self.columns, "the request log")
        out = np.empty((len(self.columns), len(frame)))
        self._numeric_rows(frame, out=out[: len(self.numeric)])
        for j, name in enumerate(self.categorical, start=len(self.numeric)):
            out[j] = self._codes(frame, name)
        return out.T

    def standardised(self, frame: pd.DataFrame) -> np.ndarray:
        """``(rows, numeric + one-hot width)`` float32 for the multivariate detectors."""
        import numpy as np

        _require(frame, self.columns, "the request log")
        width = len(self.numeric) + sum(len(self.levels[n]) for n in self.categorical)
        out = np.zeros((width, len(frame)), dtype="float32")
        if self.numeric:
            center = np.array([self.center[n] for n in self.numeric])[:, None]
            scale = np.array([self.scale[n] for n in self.numeric])[:, None]
            out[: len(self.numeric)] = (self._numeric_rows(frame) - center) / scale
        offset = len(self.numeric)
        for name in self.categorical:
            codes, n_levels = self._codes(frame, name), len(self.levels[name])
            known = codes < n_levels  # unknown levels stay all zeros
            out[offset + codes[known], np.flatnonzero(known)] = 1.0
            offset += n_levels
        return np.ascontiguousarray(out.T)

    def decode(self, name: str, codes: np.ndarray) -> list[str]:
        """Level names for the codes of categorical column ``name`` (the extra code is "(other)")."""
        levels = [*self.levels[name], "(other)"]
        return [levels[int(c)] for c in codes]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.dates:  # absent when empty: an encoding without dates is stored as before
            del data["dates"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureEncoding:
        return cls(**data)

    # ------------------------------------------------------------------ helpers
    def _numeric_rows(self, frame: pd.DataFrame, out: np.ndarray | None = None) -> np.ndarray:
        import numpy as np

        values = float_rows(frame, self.numeric, out=out, dates=self.dates)
        missing = ~np.isfinite(values)  # inf too: it would poison z-scores and kernels
        if missing.any():
            fill = np.array([self.fill[n] for n in self.numeric])
            values[missing] = fill[np.nonzero(missing)[0]]
        return values

    def _codes(self, frame: pd.DataFrame, name: str) -> np.ndarray:
        import numpy as np
        import pandas as pd

        levels, values = self.levels[name], frame[name]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            values = values.astype(str)  # levels are text; a numeric-looking column still matches
        index = pd.Index(levels).get_indexer(values)  # unknown and missing: -1
        return np.where(index < 0, len(levels), index).astype("int64")


def float_rows(frame: pd.DataFrame, columns: list[str], out: np.ndarray | None = None,
               dates: Collection[str] = ()) -> np.ndarray:
    """``(columns, rows)`` float64, one row per column; values that are not numbers: NaN.

    Columns named in ``dates`` are read as dates, in epoch seconds.
    """
    import numpy as np
    import pandas as pd

    from gitml.data.dates import epoch_seconds

    out = np.empty((len(columns), len(frame))) if out is None else out
    for j, name in enumerate(columns):
        series = frame[name]
        if name in dates:
            out[j] = epoch_seconds(series)
            continue
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            series = pd.to_numeric(series.astype(object).where(series.notna(), None), errors="coerce")
        out[j] = series.to_numpy(dtype="float64", na_value=np.nan)
    return out


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RequestLogError(
            f"{what[0].upper()}{what[1:]} lacks feature column(s) {missing} of the bundle's "
            f"signature. Columns present: {', '.join(map(str, frame.columns))}."
        )
