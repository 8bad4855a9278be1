"""The whole loop, end to end, exactly as `make loop` plays it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_make_loop_ends_with_v2_in_prod_then_a_canary_rollout_and_a_rollback(tmp_path: Path):
    out = run(sys.executable, "-m", "gitml.ci.loop", "--workdir", str(tmp_path / "loop"),
              "--source", str(ROOT), cwd=ROOT)
    text = out.stdout
    assert "one sticky report comment on #1" in text
    assert "no drift: no retraining pull request" in text
    assert "still one retraining pull request (#2), updated twice" in text
    assert "v1.1.0 in prod, the server answers with v1.1.0" in text
    failed = re.findall(r", (\d+) failed", text)  # the v2 swap, then each of the 4 traffic changes
    assert len(failed) == 5 and set(failed) == {"0"}, failed
    # the canary rollout and rollback (gitml.ci.loop_canary): every weight change under load, none failed
    assert re.search(r"canary v1\.2\.0 at 20% \(\d+% of answers\): promoted to 100%", text)
    assert "canary v1.0.0 rolled back through its pull request: v1.2.0 at 100%" in text
    assert "registration" in text and "assignment" in text
