"""The prepared folder, written chunk by chunk: split records, model-ready features, the preprocessor.

The split is decided on the label column alone (:func:`gitml.data.split.split_codes`), the
preprocessing is fitted on the training rows one column at a time
(:meth:`gitml.data.preprocess.Preprocessor.fit_columns`), and then every chunk of the
snapshot is sent, row group by row group, to the files of its splits: memory holds a chunk
and a column, never the data set. The files hold the same rows and numbers as splitting
and transforming the whole frame at once (tests/data/test_chunked.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gitml.config.schema import PreprocessConfig
from gitml.data.chunks import FrameWriter, Snapshot
from gitml.data.contract import Contract
from gitml.data.preprocess import Preprocessor
from gitml.data.split import SPLITS, TRAIN

if TYPE_CHECKING:
    import numpy as np


def fit_on_train(snapshot: Snapshot, codes: np.ndarray, contract: Contract, cfg: PreprocessConfig) -> Preprocessor:
    """The preprocessing fitted on the rows whose split ``codes`` say train, a column at a time."""
    train = codes == TRAIN
    return Preprocessor.fit_columns(lambda name: snapshot.column(name)[train].reset_index(drop=True), contract, cfg)


def write_splits(snapshot: Snapshot, codes: np.ndarray, prep: Preprocessor, out: Path, chunk_rows: int,
                 ) -> dict[str, int]:
    """Write ``out/{split}.parquet`` (records) and ``out/features/{split}.parquet``; rows per split.

    ``codes`` is each row's split, in snapshot order. A chunk adds one row group to each
    file its rows go to, so a split keeps the snapshot's row order.
    """
    import pandas as pd

    names = prep.feature_names()
    records = {split: FrameWriter(out / f"{split}.parquet", snapshot.arrow_types) for split in SPLITS}
    features = {split: FrameWriter(out / "features" / f"{split}.parquet") for split in SPLITS}
    start = 0
    try:
        for chunk in snapshot.chunks(chunk_rows):
            part_codes = codes[start:start + len(chunk)]
            start += len(chunk)
            for split, code in SPLITS.items():
                part = chunk[part_codes == code].reset_index(drop=True)
                if not len(part):
                    continue
                records[split].write(part)
                encoded = pd.DataFrame(prep.transform(part), columns=names)
                encoded[prep.label] = prep.encode_labels(part[prep.label])
                features[split].write(encoded)
    finally:
        for writer in [*records.values(), *features.values()]:
            writer.close()
    return {split: writer.rows for split, writer in records.items()}
