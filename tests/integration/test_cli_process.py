"""The `gitml` CLI in a fresh interpreter: what only a new process can show."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "pandas", "numpy", "dvc", "sklearn", "alibi_detect", "hydra", "omegaconf", "pandera")


def test_help_imports_no_heavy_library():
    code = (
        "import sys\nfrom gitml.cli import app\n"
        "from typer.testing import CliRunner\n"
        "CliRunner().invoke(app, ['--help'])\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_traceback_flag_shows_the_stack(tmp_path, conf_dir):
    out = subprocess.run(
        [sys.executable, "-m", "gitml", "--traceback", "config", "compose", "--conf-dir", str(conf_dir),
         "--print", "trainer.epochs=abc"],
        capture_output=True, text=True,
    )
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_predict_with_a_scikit_learn_bundle_imports_no_torch_and_skops_trusts_the_same_types(tmp_path):
    # skops.io's import walks every scikit-learn package, one of which imports torch (about
    # 2 s of a 4 s `gitml predict`); gitml.models.skops_import keeps it out (see there).
    import pandas as pd
    import skops.io._trusted_types as plain

    from tests.tiny_bundles import rows, tiny_bundle

    bundle = tiny_bundle(tmp_path / "bundle")
    rows(5).to_csv(tmp_path / "rows.csv", index=False)
    code = (
        "import json, sys\nfrom gitml import api\n"
        f"api.predict({str(bundle)!r}, {str(tmp_path / 'rows.csv')!r}, {str(tmp_path / 'scored.csv')!r})\n"
        "import skops.io._trusted_types as t\nfrom gitml.models.skops_import import TORCH_SHIM\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'shim': TORCH_SHIM in sys.modules,\n"
        "                  'sklearn': t.SKLEARN_ESTIMATOR_TYPE_NAMES, 'internal': t.SKLEARN_INTERNAL_TYPE_NAMES}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    fresh = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(pd.read_csv(tmp_path / "scored.csv")) == 5
    assert not fresh["torch"] and not fresh["shim"]  # refused only during the import: importable after
    assert fresh["sklearn"] == plain.SKLEARN_ESTIMATOR_TYPE_NAMES and len(fresh["sklearn"]) > 100
    assert fresh["internal"] == plain.SKLEARN_INTERNAL_TYPE_NAMES
