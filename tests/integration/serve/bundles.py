"""Train real tiny bundles with the library stages, as `dvc repro` would, into a folder.

The configuration is the reference instance's ``conf/`` composed with overrides that keep
it tiny (tests/projects.py TINY_OVERRIDES); every stage is the real one. Shared by the serving tests and
``benchmarks/bench_serve.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.projects import ROOT, TINY_OVERRIDES

# No registry beside these bundles: no champion to compare with.
TINY = (*TINY_OVERRIDES, "gate.champion.enabled=false")


def train_bundle(work: Path, overrides: tuple[str, ...] = (), *, prepared: Path | None = None) -> Path:
    """Run ingest -> validate -> prepare -> train -> evaluate -> package under ``work``.

    Returns the bundle folder ``work/models/bundle``. With ``prepared`` (another run's
    ``data/prepared``) the data stages are skipped and that data is reused.
    """
    from gitml.config.compose import compose, to_plain
    from gitml.config.params import validate_config
    from gitml.package.build import PackageInputs, package
    from gitml.stages.evaluate import evaluate
    from gitml.stages.ingest import ingest
    from gitml.stages.prepare import prepare
    from gitml.stages.train import train
    from gitml.stages.validate import validate

    cfg = validate_config(to_plain(compose(ROOT / "conf", [*TINY, *overrides])), source="tests")
    work.mkdir(parents=True, exist_ok=True)
    data = prepared.parent if prepared is not None else work / "data"
    contract = data / "contract.json"
    if prepared is None:
        ingest(cfg.data, data / "raw", root=ROOT)
        validate(cfg.data, data / "raw", data / "production", contract, work / "reports/validation.json",
                 root=ROOT)
        prepare(cfg.data, data / "raw", data / "production", contract, data / "prepared",
                data / "summary.json")
    model = work / "models/model"
    train(cfg, data / "prepared", model, None, work / "reports/training.csv", work / "reports/train.json")
    evaluate(cfg.data, data / "prepared", model, work / "reports/metrics.json", work / "reports/plots")
    inputs = PackageInputs(model, data / "prepared", contract, work / "reports/metrics.json",
                           data / "summary.json", work / "dvc.lock")
    old = Path.cwd()
    os.chdir(work)  # git_state() looks at the working directory: keep it out of the checkout
    try:
        return package(cfg, inputs, work / "models/bundle").path
    finally:
        os.chdir(old)
