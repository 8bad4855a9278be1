"""The `gitml` CLI in a fresh interpreter: what only a new process can show."""

from __future__ import annotations

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
