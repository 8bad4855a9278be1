"""``gitml package``: assemble the bundle ``models/bundle/`` (before the gate judges it)."""

from __future__ import annotations

from pathlib import Path

from gitml.config.schema import Config
from gitml.package.build import PackageInputs
from gitml.package.build import package as build


def package(cfg: Config, inputs: PackageInputs, out_dir: str | Path) -> Path:
    return build(cfg, inputs, out_dir).path
