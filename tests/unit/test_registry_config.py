"""``registry.signed_stages`` and ``registry.allowed_signers``: bad values are named with the allowed set."""

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
