"""The rows a torch family trains on: arrays in memory, or a prepared Parquet file read a row group at a time.

Both kinds answer what a fit needs before its first epoch (rows, features, classes, the
regression label's scaling, class counts, a fingerprint for checkpoints) and become the
device-side batch source of :mod:`gitml.train.batches`. A :class:`FeatureFile` answers from
its footer or by reading the label column a row group at a time: nothing here holds a split.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.config.schema import StreamConfig, StreamMode

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)
MIB = 2**20


@dataclass(frozen=True)
class ArrayRows:
    """Features and labels held in memory (the split, read whole)."""

    X: Any
    y: Any

    @property
    def rows(self) -> int:
        return len(self.X)

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def classes(self) -> list[int]:
        return sorted({int(v) for v in self.y})

    def label_counts(self, n_classes: int) -> np.ndarray:
        import numpy as np

        return np.bincount(np.asarray(self.y, dtype="int64"), minlength=n_classes)[:n_classes]

    def label_scaling(self) -> tuple[float, float]:
        return mean_and_scale(self.y)

    def scaled(self, target: tuple[float, float]) -> ArrayRows:
        """The rows with the label standardised as ``(y - center) / scale``."""
        return ArrayRows(self.X, (self.y - target[0]) / target[1])

    def fingerprint_parts(self) -> tuple[Any, ...]:
        return self.X, self.y


@dataclass(frozen=True)
class FeatureFile:
    """A prepared features file (``features/{split}.parquet``: float32 features + the label), read
    a row group at a time. Build with :meth:`open`, which reads the footer alone."""

    path: Path
    target: str
    regression: bool
    features: tuple[str, ...]
    group_rows: tuple[int, ...]  # rows of each row group, in file order
    scaling: tuple[float, float] | None = None  # a regression label's (center, scale), applied on read

    @classmethod
    def open(cls, path: str | Path, target: str, regression: bool = False) -> FeatureFile:
        import pyarrow.parquet as pq

        meta = pq.read_metadata(path)
        names = meta.schema.to_arrow_schema().names
        features = tuple(name for name in names if name != target)
        groups = tuple(meta.row_group(i).num_rows for i in range(meta.num_row_groups))
        return cls(Path(path), target, regression, features, groups)

    @property
    def rows(self) -> int:
        return sum(self.group_rows)

    @property
    def n_features(self) -> int:
        return len(self.features)

    def memory_bytes(self) -> int:
        """What holding the file in memory takes: rows x columns (features and label) x 4 bytes."""
        return self.rows * (self.n_features + 1) * 4

    def read(self, group: int) -> tuple[np.ndarray, np.ndarray]:
        """One row group's features (float32, rows x features) and labels (int64 codes, or
        float32 numbers for regression, standardised by ``scaling``)."""
        import numpy as np

        table = self._parquet().read_row_group(group, use_threads=False)
        X = np.empty((table.num_rows, self.n_features), dtype="float32")
        for j, name in enumerate(self.features):
            X[:, j] = table.column(name).to_numpy()
        return X, self._labels(table.column(self.target).to_numpy())

    def labels(self) -> Iterator[np.ndarray]:
        """Each row group's labels in file order, the label column alone."""
        parquet = self._parquet()
        for group in range(len(self.group_rows)):
            yield self._labels(parquet.read_row_group(group, columns=[self.target], use_threads=False)
                               .column(0).to_numpy())

    def classes(self) -> list[int]:
        import numpy as np

        found: set[int] = set()
        for labels in self.labels():
            found.update(int(v) for v in np.unique(labels))
        return sorted(found)

    def label_counts(self, n_classes: int) -> np.ndarray:
        import numpy as np

        counts = np.zeros(n_classes, dtype="int64")
        for labels in self.labels():
            counts += np.bincount(labels, minlength=n_classes)[:n_classes]
        return counts

    def label_scaling(self) -> tuple[float, float]:
        """The label's (mean, standard deviation) in two passes over the label column (equal to
        :meth:`ArrayRows.label_scaling` up to the order of float64 additions)."""
        import numpy as np

        mean = sum(float(np.sum(v, dtype="float64")) for v in self.labels()) / max(self.rows, 1)
        square = sum(float(np.sum((np.asarray(v, dtype="float64") - mean) ** 2)) for v in self.labels())
        scale = (square / max(self.rows, 1)) ** 0.5
        return mean, scale if scale > 0 else 1.0

    def scaled(self, target: tuple[float, float]) -> FeatureFile:
        return replace(self, scaling=target)

    def fingerprint_parts(self) -> tuple[Any, ...]:
        """The file's sha256 (read in 1 MiB blocks) and the label scaling: what a checkpoint resumes."""
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            for block in iter(lambda: handle.read(MIB), b""):
                digest.update(block)
        return f"{self.path.name}:{digest.hexdigest()}", self.scaling

    def _parquet(self) -> Any:
        """The file, read on this thread without pre-buffering: with jemalloc (the stage sets it) a
        process reading 100k-row groups of 50 features peaked at 486 MiB after 6 groups, against
        544 with pyarrow's threads and 494-614 with its default allocator (which kept growing)."""
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.path, pre_buffer=False)

    def _labels(self, values: Any) -> np.ndarray:
        import numpy as np

        if not self.regression:
            return np.asarray(values, dtype="int64")
        labels = np.asarray(values, dtype="float32")
        return labels if self.scaling is None else (labels - self.scaling[0]) / self.scaling[1]


def mean_and_scale(y: Any) -> tuple[float, float]:
    """A regression label's (mean, standard deviation): what a network's one output is scaled by
    (a constant label: scale 1).

    Example:
        >>> mean_and_scale([1.0, 3.0])
        (2.0, 1.0)
    """
    import numpy as np

    values = np.asarray(y, dtype="float64")
    scale = float(values.std())
    return float(values.mean()), scale if scale > 0 else 1.0


def streaming_plan(stream: StreamConfig, train: FeatureFile) -> bool:
    """Does the trainer stream ``train``? ``auto``: when its size from the footer exceeds the budget."""
    size, budget = train.memory_bytes(), stream.max_memory_mb * MIB
    if stream.mode is not StreamMode.auto:
        return stream.mode is StreamMode.always
    over = size > budget
    log.info("%s the training features: %s, %d rows x %d columns = %.0f MiB %s the %d MiB budget "
             "<trainer.stream.max_memory_mb=%d>", "streaming" if over else "holding", train.path, train.rows,
             train.n_features + 1, size / MIB, "over" if over else "within", stream.max_memory_mb,
             stream.max_memory_mb)
    return over
