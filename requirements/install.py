"""`make install`: install into this interpreter's venv with uv at the pinned version, else pip.

Both take requirements/constraints.txt (torch stays the CPU build on this machine's disk).
uv reads no pip.conf, so the index settings pip would use (`pip config list`: index-url,
extra-index-url, find-links, cert, constraint, no-index) are handed to it as options, and
``--index-strategy unsafe-best-match`` lets it pick across indexes as pip does: uv's default
takes a package's versions from the first index that has it, which here misses scipy 1.15.3
and torch 2.13.0+cpu. ``--compile-bytecode``, as pip does, so the stages' first imports are
not the ones paying for it.

`make install` on a fresh clone, empty caches, two cores: pip 245 s wall (220 s CPU), uv 102 s
(121 s CPU) at load 1-3; pip 625 s, uv 123 s at load 5-8 (the same 186 packages, torch
2.13.0+cpu; uv resolves celery 5.6.3 and python-dateutil 4.0.0 where pip takes 5.7.0 and
2.9.0.post0). ``GITML_INSTALLER=pip`` forces pip; a uv that cannot be had or fails falls
back to pip, saying so.

Usage: .venv/bin/python requirements/install.py -e '.[serve,dev]'
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

UV_VERSION = "0.13.9"
CONSTRAINTS = "requirements/constraints.txt"
# pip's own precedence: an environment variable beats the [install] section, which beats [global]
SECTIONS = {"global": 0, "install": 1, ":env:": 2}
KEYS = ("index-url", "extra-index-url", "find-links", "cert", "constraint", "no-index")


def pip_install(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                    "-c", CONSTRAINTS, *args], check=True)


def pinned_uv() -> str | None:
    """A uv of the pinned version: on PATH, in this venv, or installed there by pip."""
    here = str(Path(sys.executable).parent / "uv")
    for candidate in (shutil.which("uv"), here):
        if candidate and _version(candidate) == UV_VERSION:
            return candidate
    try:
        pip_install(f"uv=={UV_VERSION}")
    except subprocess.CalledProcessError:
        return None
    return here if _version(here) == UV_VERSION else None


def _version(uv: str) -> str | None:
    try:
        out = subprocess.run([uv, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = out.split()
    return parts[1] if len(parts) > 1 else None


def pip_settings() -> dict[str, str]:
    """pip's effective value of each of KEYS, from `pip config list` (files and PIP_* variables)."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    found: dict[str, tuple[int, str]] = {}
    for line in out.splitlines():
        name, _, raw = line.partition("=")
        section, _, key = name.rpartition(".")
        if key in KEYS and section in SECTIONS and SECTIONS[section] >= found.get(key, (-1, ""))[0]:
            found[key] = (SECTIONS[section], str(ast.literal_eval(raw)))
    return {key: value for key, (_, value) in found.items()}


def uv_options(settings: dict[str, str]) -> list[str]:
    options = ["--python", sys.executable, "--index-strategy", "unsafe-best-match", "--compile-bytecode",
               "-c", CONSTRAINTS]
    if "index-url" in settings:
        options += ["--default-index", settings["index-url"]]
    for name, flag in (("extra-index-url", "--index"), ("find-links", "--find-links"), ("constraint", "-c")):
        for value in settings.get(name, "").split():
            options += [flag, value]
    if settings.get("no-index", "").lower() in ("1", "true", "yes", "on"):
        options.append("--no-index")
    return options


def main(args: list[str]) -> int:
    if os.environ.get("GITML_INSTALLER", "uv") != "pip" and (uv := pinned_uv()):
        settings = pip_settings()
        env = {**os.environ, **({"SSL_CERT_FILE": settings["cert"]} if "cert" in settings else {})}
        if subprocess.run([uv, "pip", "install", "-q", *uv_options(settings), *args], env=env).returncode == 0:
            print(f"make install: installed with uv {UV_VERSION}", file=sys.stderr)
            return 0
        print("make install: uv failed (above); installing with pip instead", file=sys.stderr)
    pip_install(*args)
    print("make install: installed with pip", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
