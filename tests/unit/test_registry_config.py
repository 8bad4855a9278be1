"""``registry.signed_stages`` and ``registry.allowed_signers``: bad values are named with the allowed set; the
interface a version bump compares."""

from __future__ import annotations

import pytest

from gitml.config.compose import compose
from gitml.errors import ConfigError


def test_signed_stages_must_be_stages_of_the_registry(conf_dir):
    with pytest.raises(ConfigError, match=r"registry\.signed_stages.*'production' not a stage.*Allowed: staging, prod"):
        compose(conf_dir, ["registry.signed_stages=[prod,production]"])
    cfg = compose(conf_dir, ["registry.signed_stages=[prod]"])
    assert cfg.registry.signed_stages == ["prod"] and cfg.registry.allowed_signers == ".github/allowed_signers"


@pytest.mark.parametrize("path", ["../keys", "/etc/allowed_signers", "''"])
def test_allowed_signers_stays_inside_the_repository(conf_dir, path):
    with pytest.raises(ConfigError, match=r"registry\.allowed_signers.*relative path inside the repository"):
        compose(conf_dir, ["registry.signed_stages=[prod]", f"registry.allowed_signers={path}"])
    compose(conf_dir, [f"registry.allowed_signers={path}"])  # unused while no stage is signed


def test_the_interface_compares_tasks_and_reads_contracts_written_before_tasks_alike():
    """A version bump is major when the interface changes: a contract without `task` (older
    gitml) is the same interface as its reproduction with `task: binary`; a regression is not."""
    from gitml.registry.tags import _interface

    columns = {"x": {"dtype": "float", "min": 0.0, "max": 1.0}}
    old = {"label": {"column": "y", "classes": [0, 1]}, "columns": columns}
    assert _interface(old) == _interface({"label": {"column": "y", "task": "binary", "classes": [0, 1]}, "columns": columns})
    assert _interface(old) != _interface({"label": {"column": "y", "task": "regression"}, "columns": columns})
