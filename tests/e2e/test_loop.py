"""The whole loop, end to end, exactly as `make loop` plays it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_make_loop_ends_with_v2_in_prod_and_the_server_answering_v2(tmp_path: Path):
    out = run(sys.executable, "-m", "gitml.ci.loop", "--workdir", str(tmp_path / "loop"),
              "--source", str(ROOT), cwd=ROOT)
    text = out.stdout
    assert "one sticky report comment on #1" in text
    assert "no drift: no retraining pull request" in text
    assert "still one retraining pull request (#2), updated twice" in text
    assert "v1.1.0 in prod, the server answers with v1.1.0" in text
    assert ", 0 failed" in text
    assert "registration" in text and "assignment" in text
