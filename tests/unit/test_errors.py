"""The error catalogue: every class a user can meet says how to fix it, and the CLI prints that."""

from __future__ import annotations

import inspect

import pytest

from gitml import errors
from gitml.cli import main

# Errors whose fix is in the message itself (config keys and files) or that answer HTTP clients.
FIX_IN_MESSAGE = {"GitmlError", "ConfigError", "InputValidationError", "RequestError", "RequestLogError"}


def test_every_error_class_has_a_fix_hint():
    classes = {name: cls for name, cls in inspect.getmembers(errors, inspect.isclass)
               if issubclass(cls, errors.GitmlError) and cls.__module__ == errors.__name__}
    missing = [name for name, cls in classes.items() if name not in FIX_IN_MESSAGE and not cls.hint]
    assert missing == []


def test_the_cli_prints_the_fix_under_the_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["gitml", "deploy", "--target", str(tmp_path / "deploy"), "--version", "v1"])
    with pytest.raises(SystemExit) as exit_info:
        main()  # point back at a version that was never published
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "gitml: error: Version 'v1' is not published" in err
    assert f"gitml: fix: {errors.DeploymentError.hint}" in err and "Traceback" not in err


def test_an_instance_may_carry_its_own_hint():
    assert errors.GateFailed("x", hint="do y").hint == "do y"
    assert errors.GateFailed("x").hint == errors.GateFailed.hint
