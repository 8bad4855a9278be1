"""Preprocessing fitted on the training split only, stored as plain JSON (no pickle).

Numeric columns: median imputation, then standard or min-max scaling. Categorical
columns: one-hot (unknown levels encode as all zeros) or ordinal (unknown -> -1), with the
levels taken from the data contract so every split and every request encodes alike.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.config.schema import Encoding, PreprocessConfig, Scaling
from gitml.data.contract import Contract
from gitml.errors import GitmlError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FORMAT = "gitml.preprocessor/v1"
log = logging.getLogger(__name__)


@dataclass
class Preprocessor:
    numeric: list[str]
    categorical: list[str]
    label: str
    classes: list[Any]
    scaling: str = Scaling.standard.value
    encoding: str = Encoding.onehot.value
    fill: dict[str, float] = field(default_factory=dict)
    center: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    levels: dict[str, list[str]] = field(default_factory=dict)

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(cls, train: pd.DataFrame, contract: Contract, cfg: PreprocessConfig) -> Preprocessor:
        numeric = [c for c, s in contract.columns.items() if s.dtype in ("int", "float", "bool")]
        categorical = [c for c, s in contract.columns.items() if s.dtype == "category"]
        prep = cls(
            numeric=numeric, categorical=categorical, label=contract.label,
            classes=list(contract.classes), scaling=cfg.scaling.value, encoding=cfg.categorical.value,
        )
        for name in numeric:
            values = train[name].astype("float64")
            median = float(values.median()) if values.notna().any() else 0.0
            filled = values.fillna(median)
            if prep.scaling == "standard":
                center, scale = float(filled.mean()), float(filled.std(ddof=0))
            elif prep.scaling == "minmax":
                center, scale = float(filled.min()), float(filled.max() - filled.min())
            else:
                center, scale = 0.0, 1.0
            prep.fill[name], prep.center[name] = median, center
            prep.scale[name] = scale if scale > 1e-12 else 1.0
        for name in categorical:
            prep.levels[name] = list(contract.columns[name].categories or [])
        for name, other in contract.excluded.items():
            log.info("column '%s' (%s) is not a model feature: %s", name, other.dtype, other.reason)
        return prep

    # ------------------------------------------------------------ transform
    def feature_names(self) -> list[str]:
        names = list(self.numeric)
        for name in self.categorical:
            if self.encoding == "onehot":
                names += [f"{name}={level}" for level in self.levels[name]]
            else:
                names.append(name)
        return names

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Model-ready float32 matrix, columns in :meth:`feature_names` order.

        Written straight into one preallocated float32 matrix: no per-block copies to
        stack, and a frame whose columns already are the numeric inputs is read without a
        column selection (the model server's validated frames are).
        """
        import numpy as np

        widths = [len(self.levels[c]) if self.encoding == "onehot" else 1 for c in self.categorical]
        out = np.empty((len(frame), len(self.numeric) + sum(widths)), dtype="float32")
        k = len(self.numeric)
        if k:
            same = len(frame.columns) == k and all(a == b for a, b in zip(frame.columns, self.numeric, strict=True))
            raw = (frame if same else frame[self.numeric]).to_numpy(dtype="float64", na_value=np.nan)
            center, scale, filled = self._scaling()
            scaled = np.subtract(raw, center)
            np.divide(scaled, scale, out=scaled)
            missing = np.isnan(scaled)
            if missing.any():  # imputed with the median, scaled like the rest
                np.copyto(scaled, np.broadcast_to(filled, scaled.shape), where=missing)
            out[:, :k] = scaled
        position = k
        for name, width in zip(self.categorical, widths, strict=True):
            codes = _codes(frame[name], self.levels[name])
            block = out[:, position:position + width]
            if self.encoding == "onehot":
                block[:] = 0.0
                known = codes >= 0
                block[np.nonzero(known)[0], codes[known]] = 1.0
            else:
                block[:, 0] = codes
            position += width
        return out

    def _scaling(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(center, scale, the scaled fill value) per numeric column."""
        import numpy as np

        center = np.array([self.center[c] for c in self.numeric])
        scale = np.array([self.scale[c] for c in self.numeric])
        return center, scale, (np.array([self.fill[c] for c in self.numeric]) - center) / scale

    def encode_labels(self, labels: pd.Series) -> np.ndarray:
        import numpy as np

        index = {_key(c): i for i, c in enumerate(self.classes)}
        codes = np.array([index.get(_key(v), -1) for v in labels], dtype="int64")
        if (codes < 0).any():
            bad = sorted({str(v) for v, c in zip(labels, codes, strict=True) if c < 0})[:5]
            raise GitmlError(f"Label value(s) {bad} not in the known classes {self.classes}.")
        return codes

    # ---------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

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


def _codes(series: pd.Series, levels: list[str]) -> np.ndarray:
    import numpy as np
    import pandas as pd

    lookup = pd.Index(levels)
    return np.asarray(lookup.get_indexer(series.astype("string").fillna("\0")), dtype="int64")
