"""Environment checks: Python, packages (versions from metadata, nothing imported), commands, device."""

from __future__ import annotations

import logging
import platform
import shutil
import sys
from importlib import metadata

from gitml.doctor.base import Check, Context, ok, problem

MIN_PYTHON = (3, 10)  # pyproject.toml: requires-python
CORE_PACKAGES = ("dvc", "hydra-core", "gto", "torch", "scikit-learn", "pandas", "alibi-detect")
SERVE_PACKAGES = ("fastapi", "uvicorn", "httptools", *(("uvloop",) if sys.platform != "win32" else ()))


def check_python(ctx: Context) -> list[Check]:
    version = platform.python_version()
    where = f"{version} ({sys.executable})"
    if sys.version_info[:2] < MIN_PYTHON:
        need = ".".join(map(str, MIN_PYTHON))
        return [problem("fail", "environment", "python", f"{where}; gitml needs >= {need}",
                        f"create the environment with Python >= {need} (make install PYTHON=python3.11)")]
    return [ok("environment", "python", where)]


def _versions(names: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Installed ``name version`` strings and missing names, from metadata (nothing imported)."""
    found, missing = [], []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            missing.append(name)
    return found, missing


def check_packages(ctx: Context) -> list[Check]:
    found, missing = _versions(("gitml", *CORE_PACKAGES))
    if missing:
        return [problem("fail", "environment", "packages", f"missing: {', '.join(missing)}; found: {', '.join(found)}",
                        "pip install gitml (in this repository: make install)")]
    return [ok("environment", "packages", ", ".join(found))]


def check_serve_extra(ctx: Context) -> list[Check]:
    found, missing = _versions(SERVE_PACKAGES)
    if missing:
        return [problem("warn", "environment", "serve extra",
                        f"missing: {', '.join(missing)} (gitml serve needs them)", "pip install 'gitml[serve]'")]
    return [ok("environment", "serve extra", ", ".join(found))]


def check_commands(ctx: Context) -> list[Check]:
    if shutil.which("git") is None:
        return [problem("fail", "environment", "commands", "git is not on PATH",
                        "install git (https://git-scm.com/downloads)")]
    absent = [name for name in ("dvc", "gitml") if shutil.which(name) is None]
    if absent:
        return [problem("warn", "environment", "commands",
                        f"{' and '.join(absent)} not on PATH: dvc repro runs `gitml <stage>` from dvc.yaml",
                        "activate the environment: source .venv/bin/activate")]
    return [ok("environment", "commands", "git, dvc and gitml on PATH")]


def check_device(ctx: Context) -> list[Check]:
    from gitml.errors import DeviceError
    from gitml.train.device import resolve_device

    spec = ctx.cfg.trainer.device if ctx.cfg else "auto"
    key = f"<trainer.device={spec}>" if ctx.cfg else "<trainer.device=auto, the default>"
    device_log = logging.getLogger("gitml.train.device")
    level = device_log.level
    device_log.setLevel(logging.WARNING)  # resolve_device logs "training on ..." at INFO
    try:
        device = resolve_device(spec)
    except DeviceError as exc:
        return [problem("fail", "environment", "device", str(exc),
                        "set trainer.device: auto in conf/trainer/ and run `gitml config compose`")]
    finally:
        device_log.setLevel(level)
    import torch

    if torch.cuda.is_available():
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        gpus = f"{torch.cuda.device_count()} CUDA device(s): {', '.join(names)}; CUDA {torch.version.cuda}"
    else:
        gpus = "no CUDA device"
    unused = "; unused by model.family=sklearn" if ctx.cfg and ctx.cfg.model.family == "sklearn" else ""
    return [ok("environment", "device", f"{device} {key} ({gpus}; torch {torch.__version__}){unused}")]
