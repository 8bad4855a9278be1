"""Batches and validation chunks on the training device, from rows in memory or streamed row groups.

In memory (:class:`TensorRows`) the split is moved to the device once and each epoch draws
one seeded permutation of all rows. Streamed (:class:`StreamedRows`) each epoch shuffles the
order of the row groups, reads ``trainer.stream.shuffle_row_groups`` of them at a time (a
window) and draws a permutation of the window's rows from the same seeded generator; the
epoch's row order is the windows' permuted rows one after another, cut into the same global
batches (:func:`gitml.train.steps.batch_spans`). A window covering every row group keeps the
file's group order, so its one permutation is the in-memory one: the same batches, the same
weights. Each rank of a group takes every ``world``-th row of each global batch either way.

Memory while streaming holds one window, the few rows of a batch that straddles two windows,
and for validation one row group and one chunk: :attr:`StreamedRows.peak_rows` records it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gitml.train.rows import ArrayRows, FeatureFile

Batch = tuple[Any, Any, Any]  # this rank's features and labels, and the global batch's labels (None alone)


def epoch_generator(seed: int, epoch: int) -> Any:
    """The generator an epoch's row permutations come from: the same on every rank and after a resume."""
    import torch

    return torch.Generator().manual_seed(seed * 100_003 + epoch)


class TensorRows:
    """Rows held on the device as two tensors."""

    def __init__(self, rows: ArrayRows, device: Any, regression: bool):
        import torch

        self.X = torch.as_tensor(rows.X, dtype=torch.float32, device=device)
        self.y = torch.as_tensor(rows.y, dtype=torch.float32 if regression else torch.long, device=device)
        self.rows, self.device, self.peak_rows = len(self.X), device, len(self.X)

    def batches(self, seed: int, epoch: int, spans: list[tuple[int, int]], me: int, world: int) -> Iterator[Batch]:
        import torch

        order = torch.randperm(self.rows, generator=epoch_generator(seed, epoch)).to(self.device)
        for start, stop in spans:
            index = order[start:stop]
            if world == 1:
                yield self.X[index], self.y[index], None
            else:
                mine = index[me::world]
                yield self.X[mine], self.y[mine], self.y[index]

    def chunks(self, me: int, world: int, chunk: int) -> Iterator[tuple[Any, Any]]:
        """This rank's rows (every ``world``-th) in chunks of ``chunk`` rows."""
        X, y = (self.X, self.y) if world == 1 else (self.X[me::world], self.y[me::world])
        for start in range(0, len(X), chunk):
            yield X[start : start + chunk], y[start : start + chunk]


class StreamedRows:
    """Rows read from a :class:`~gitml.train.rows.FeatureFile` a window of row groups at a time."""

    def __init__(self, file: FeatureFile, device: Any, shuffle_row_groups: int):
        self.file, self.device, self.window_groups = file, device, shuffle_row_groups
        self.rows, self.peak_rows = file.rows, 0

    def windows(self, seed: int, epoch: int) -> list[list[int]]:
        """The epoch's windows of row groups: all in file order when they fit one window, else the
        groups in a seeded order, ``shuffle_row_groups`` at a time.

        Example:
            >>> StreamedRows(file_of_5_groups, "cpu", 2).windows(42, 1)  # doctest: +SKIP
            [[3, 0], [4, 1], [2]]
        """
        import numpy as np

        count, size = len(self.file.group_rows), self.window_groups
        if size >= count:
            return [list(range(count))]
        order = np.random.default_rng([seed, epoch]).permutation(count)
        return [[int(g) for g in order[i : i + size]] for i in range(0, count, size)]

    def batches(self, seed: int, epoch: int, spans: list[tuple[int, int]], me: int, world: int) -> Iterator[Batch]:
        generator = epoch_generator(seed, epoch)
        windows = iter(self.windows(seed, epoch))
        window: tuple[Any, Any, Any] | None = None  # features, labels and the order of their rows
        used = 0  # rows of the window's order already batched
        for start, stop in spans:
            need, parts = stop - start, list[tuple[Any, Any, Any]]()
            while need:
                if window is None or used == len(window[2]):
                    window = None  # release the spent window before reading the next
                    window = self._window(next(windows), generator, sum(len(part[0]) for part in parts))
                    used = 0
                X, y, order = window
                take = min(need, len(order) - used)
                index = order[used : used + take]
                used, need = used + take, need - take
                # A batch that straddles two windows keeps only its rows of this one, not the window.
                parts.append((X[index], y[index], None) if need else (X, y, index))
                del X, y, order
            yield _assemble(parts, me, world)

    def chunks(self, me: int, world: int, chunk: int) -> Iterator[tuple[Any, Any]]:
        """This rank's rows (every ``world``-th of the file) in file order, in chunks of ``chunk`` rows."""
        import numpy as np

        held: list[tuple[np.ndarray, np.ndarray]] = []
        offset = 0
        for group, size in enumerate(self.file.group_rows):
            X, y = self.file.read(group)
            first = (me - offset) % world
            held.append((X[first::world], y[first::world]))
            offset += size
            self._hold(size + sum(len(part[0]) for part in held))
            while sum(len(part[0]) for part in held) >= chunk:
                yield self._tensors(held, chunk)
        while held and sum(len(part[0]) for part in held):
            yield self._tensors(held, chunk)

    def _window(self, groups: list[int], generator: Any, straddling: int) -> tuple[Any, Any, Any]:
        """The window's rows on the device and a permutation of them (from the epoch's generator)."""
        import numpy as np
        import torch

        rows = sum(self.file.group_rows[group] for group in groups)
        X, y, at = np.empty((rows, self.file.n_features), dtype="float32"), None, 0
        for group in groups:  # one row group read at a time, copied into the window
            X_group, y_group = self.file.read(group)
            y = np.empty(rows, dtype=y_group.dtype) if y is None else y
            X[at : at + len(X_group)], y[at : at + len(X_group)] = X_group, y_group
            at += len(X_group)
        self._hold(rows + straddling)
        order = torch.randperm(len(X), generator=generator).to(self.device)
        return torch.from_numpy(X).to(self.device), torch.from_numpy(y).to(self.device), order

    def _tensors(self, held: list[tuple[Any, Any]], chunk: int) -> tuple[Any, Any]:
        """The first ``chunk`` rows held, as tensors; the rest stay in ``held``."""
        import numpy as np
        import torch

        X, y = np.concatenate([part[0] for part in held]), np.concatenate([part[1] for part in held])
        held[:] = [(X[chunk:], y[chunk:])] if len(X) > chunk else []
        return torch.from_numpy(X[:chunk]).to(self.device), torch.from_numpy(y[:chunk]).to(self.device)

    def _hold(self, rows: int) -> None:
        self.peak_rows = max(self.peak_rows, rows)


def _assemble(parts: list[tuple[Any, Any, Any]], me: int, world: int) -> Batch:
    """A global batch from its parts (rows of a window by index, or rows already taken) and this rank's share."""
    import torch

    if len(parts) == 1:
        X, y, index = parts[0]
        if world == 1:
            return X[index], y[index], None
        mine = index[me::world]
        return X[mine], y[mine], y[index]
    X = torch.cat([p[0] if p[2] is None else p[0][p[2]] for p in parts])
    y = torch.cat([p[1] if p[2] is None else p[1][p[2]] for p in parts])
    return (X, y, None) if world == 1 else (X[me::world], y[me::world], y)


def device_rows(rows: ArrayRows | FeatureFile, device: Any, regression: bool,
                shuffle_row_groups: int) -> TensorRows | StreamedRows:
    """The batch source for ``rows`` on ``device``: tensors for rows in memory, a stream for a file."""
    if isinstance(rows, FeatureFile):
        return StreamedRows(rows, device, shuffle_row_groups)
    return TensorRows(rows, device, regression)
