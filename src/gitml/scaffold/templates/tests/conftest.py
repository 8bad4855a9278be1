"""Fixtures of this project's tests: the composed params and what the pipeline wrote.

The tests read the outputs of `dvc repro` where params.yaml's ``paths`` put them; before
the first run (or without `dvc pull`) they skip and say so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def declared_models() -> list[str | None]:
    """The models params.yaml declares (conf/models/), or [None]: the one model of a one-model project."""
    import yaml

    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    return sorted(raw.get("models") or {}) or [None]


@pytest.fixture(scope="session", params=declared_models(), ids=lambda name: name or "model")
def params(request: pytest.FixtureRequest) -> Any:
    """params.yaml, validated (gitml.config.schema.Config): each declared model's section in turn."""
    from gitml import api

    return api.load_params(ROOT / "params.yaml", request.param)


@pytest.fixture(scope="session")
def output(params: Any) -> Callable[[str], Path]:
    """``output("prepared")``: the path ``paths.prepared`` names; skips when the pipeline has not written it."""

    def find(key: str) -> Path:
        path = ROOT / getattr(params.paths, key)
        if not path.exists():
            pytest.skip(f"{path.relative_to(ROOT)} (paths.{key}) is missing: run `dvc repro` (or `dvc pull`) first")
        return path

    return find


@pytest.fixture(scope="session")
def splits(output: Callable[[str], Path]) -> dict[str, Any]:
    """The prepared train, val and test rows (raw columns and the label)."""
    import pandas as pd

    folder = output("prepared")
    return {name: pd.read_parquet(folder / f"{name}.parquet") for name in ("train", "val", "test")}
