"""CLI hygiene: help text and an example on every command, clean errors (in-process).

What needs a fresh interpreter (instant help, the --traceback stack) is in
tests/integration/test_cli_process.py.
"""

from __future__ import annotations

import sys

import pytest
import typer.main

from gitml.cli import app, main


def all_commands():
    root = typer.main.get_command(app)

    def walk(cmd, path: tuple[str, ...]):
        yield " ".join(("gitml", *path)), cmd
        if hasattr(cmd, "commands"):  # a group (typer may vendor its own click)
            for name, sub in cmd.commands.items():
                yield from walk(sub, (*path, name))

    return list(walk(root, ()))


@pytest.mark.parametrize(("name", "command"), all_commands(), ids=[n for n, _ in all_commands()])
def test_every_command_and_option_has_help_and_an_example(name, command):
    assert (command.help or "").strip(), f"{name} has no help"
    assert "Example:" in command.help, f"{name} has no example"
    for param in command.params:
        if param.param_type_name == "option":
            assert (param.help or "").strip(), f"{name} {param.opts[0]} has no help"


def test_config_error_is_one_red_line_not_a_traceback(tmp_path, conf_dir, monkeypatch, capsys):
    # main(), the console entry point, maps errors to exit codes: called as `gitml` calls it.
    monkeypatch.setattr(sys, "argv", [
        "gitml", "config", "compose", "--conf-dir", str(conf_dir),
        "--params", str(tmp_path / "p.yaml"), "trainer.epochs=abc",
    ])
    with pytest.raises(SystemExit) as exited:
        main()
    stderr = capsys.readouterr().err
    assert exited.value.code == 1
    assert "trainer.epochs" in stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "p.yaml").exists()
