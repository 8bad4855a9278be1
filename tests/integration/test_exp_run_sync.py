"""After a real `dvc exp run -S`, `gitml config check` and `gitml doctor` agree with params.yaml.

DVC recomposes params.yaml with the overrides (Hydra integration on) and records none of
them; gitml recovers them from the values (config/explain.py).
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import copy_project, run

pytestmark = pytest.mark.slow


def test_config_check_and_doctor_accept_what_dvc_exp_run_wrote(fresh_template, tmp_path):
    project = copy_project(fresh_template, tmp_path / "project")
    # only the first stage runs (seconds): the point is the params.yaml DVC writes before it
    run("dvc", "exp", "run", "-S", "model=logreg", "-S", "trainer.epochs=3", "ingest", cwd=project)
    written = (project / "params.yaml").read_text()
    assert "# overrides:" not in written  # DVC's dump: our header, and the overrides, are gone

    check = run("gitml", "config", "check", cwd=project)
    assert "composed with model=logreg trainer.epochs=3" in check.stderr, check.stderr
    doctor = run("gitml", "doctor", "--json", cwd=project, check=False)
    sync = next(c for c in json.loads(doctor.stdout) if (c["section"], c["name"]) == ("config", "sync"))
    assert sync["status"] == "ok" and "model=logreg trainer.epochs=3" in sync["detail"], sync

    # the command both print records them: same values, now with the header
    run("gitml", "config", "compose", "model=logreg", "trainer.epochs=3", cwd=project)
    recorded = (project / "params.yaml").read_text()
    assert '# overrides: ["model=logreg", "trainer.epochs=3"]' in recorded
    assert yaml.safe_load(recorded) == yaml.safe_load(written)

    # a hand edit on top of DVC's file is still caught, naming the key
    (project / "params.yaml").write_text(written.replace("patience:", "patiense:", 1))
    refused = run("gitml", "config", "check", cwd=project, check=False)
    assert refused.returncode == 1 and "patiense" in refused.stderr, refused.stderr
