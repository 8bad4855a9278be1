"""The ``gitml`` command: every command is a thin Typer function over one :mod:`gitml.api` verb.

Commands live by topic (``pipeline``, ``registry``, ``serving``, ``monitoring``, ``forge``)
and register on the one app in :mod:`gitml.cli.base`; :func:`main` maps errors to exit codes.
"""

from __future__ import annotations

import importlib
import sys

import typer

from gitml.cli.base import _state, app
from gitml.errors import GitmlError

# Each module registers its commands on `app`; `gitml --help` lists them in this order.
for _topic in ("init", "pipeline", "project", "registry", "serving", "monitoring", "forge", "experiments", "models",
               "canary"):
    importlib.import_module(f"gitml.cli.{_topic}")

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point: one place maps errors to exit codes."""
    try:
        app()
    except GitmlError as exc:
        if _state["traceback"]:
            raise
        typer.secho(f"gitml: error: {exc}", fg=typer.colors.RED, err=True)
        if exc.hint and exc.hint not in str(exc):
            typer.secho(f"gitml: fix: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.secho("gitml: interrupted", fg=typer.colors.RED, err=True)
        sys.exit(130)
    except Exception:
        if not _state["traceback"]:
            import traceback as tb

            typer.secho(
                "gitml: internal error (a bug, please report it with the trace below)",
                fg=typer.colors.RED, err=True,
            )
            tb.print_exc()
            sys.exit(2)
        raise
