"""CLI hygiene: instant help, help text and an example on every command, clean errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main

from gitml.cli import app

HEAVY = ("torch", "pandas", "numpy", "dvc", "sklearn", "alibi_detect", "hydra", "omegaconf", "pandera")


def all_commands():
    root = typer.main.get_command(app)

    def walk(cmd, path: tuple[str, ...]):
        yield " ".join(("gitml", *path)), cmd
        if hasattr(cmd, "commands"):  # a group (typer may vendor its own click)
            for name, sub in cmd.commands.items():
                yield from walk(sub, (*path, name))

    return list(walk(root, ()))


def test_help_imports_no_heavy_library():
    code = (
        "import sys\nfrom gitml.cli import app\n"
        "from typer.testing import CliRunner\n"
        "CliRunner().invoke(app, ['--help'])\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(("name", "command"), all_commands(), ids=[n for n, _ in all_commands()])
def test_every_command_and_option_has_help_and_an_example(name, command):
    assert (command.help or "").strip(), f"{name} has no help"
    assert "Example:" in command.help, f"{name} has no example"
    for param in command.params:
        if param.param_type_name == "option":
            assert (param.help or "").strip(), f"{name} {param.opts[0]} has no help"


def test_config_error_is_one_red_line_not_a_traceback(tmp_path, conf_dir):
    out = subprocess.run(
        [sys.executable, "-m", "gitml", "config", "compose", "--conf-dir", str(conf_dir),
         "--params", str(tmp_path / "p.yaml"), "trainer.epochs=abc"],
        capture_output=True, text=True,
    )
    assert out.returncode == 1
    assert "trainer.epochs" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "p.yaml").exists()


def test_traceback_flag_shows_the_stack(tmp_path, conf_dir):
    out = subprocess.run(
        [sys.executable, "-m", "gitml", "--traceback", "config", "compose", "--conf-dir", str(conf_dir),
         "--print", "trainer.epochs=abc"],
        capture_output=True, text=True,
    )
    assert out.returncode != 0 and "Traceback" in out.stderr
