"""The data contract: every snapshot satisfies it, each split holds the classes, no test row leaks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def contract(output: Callable[[str], Path]) -> Any:
    from gitml.data.contract import load_contract

    return load_contract(output("contract"))


def test_every_snapshot_satisfies_the_contract(contract: Any, output: Callable[[str], Path], params: Any) -> None:
    from gitml.data.contract import check_frame
    from gitml.data.snapshots import read_parquet, snapshot_files

    files = snapshot_files(output("raw")) + snapshot_files(Path(params.paths.production))
    assert files, "no snapshot to check"
    failures = [f.sentence() for path in files for f in check_frame(read_parquet(path), contract, path.name)]
    assert not failures, "\n".join(failures)


def test_the_label_is_the_configured_column(contract: Any, params: Any) -> None:
    assert contract.label == params.data.target
    if params.data.task is not None:
        assert contract.task == params.data.task.value
    if not contract.regression:
        assert len(contract.classes) >= 2, f"the label holds one class: {contract.classes}"


def test_training_rows_hold_every_class(contract: Any, splits: dict[str, Any]) -> None:
    labels = splits["train"][contract.label]
    if contract.regression:  # a number: the training rows span most of its range
        import pandas as pd

        everything = pd.concat([splits[name][contract.label] for name in ("train", "val", "test")])
        assert labels.std() > 0.5 * everything.std(), "the training split holds too narrow a range of the label"
        return
    seen = {str(c) for c in labels.unique()}
    assert seen == {str(c) for c in contract.classes}


def test_no_test_row_is_also_a_training_row(splits: dict[str, Any]) -> None:
    import pandas as pd

    train, test = splits["train"], splits["test"]
    pool = pd.concat([train, splits["val"], test], ignore_index=True)
    repeated = int(pool.duplicated().sum())  # identical rows in the data itself may land on both sides
    leaked = len(test.merge(train.drop_duplicates(), how="inner"))
    assert leaked <= repeated, f"{leaked} test rows also in train (the data repeats {repeated} rows)"
