"""alibi-detect's detector modules imported one at a time, the univariate ones without torch.

Two costs come before any alibi-detect detector can run, and neither buys anything for the
univariate detectors (``ks``, ``tabular``, the prediction test):

- ``alibi_detect/__init__.py`` imports every subpackage and ``alibi_detect/cd/__init__.py``
  every detector, which pulls in transformers: about 3,900 modules and 11-16 s.
- ``alibi_detect/utils/frameworks.py`` imports torch just to set ``has_pytorch`` (2-2.5 s);
  the modules after it then import torch again and read ``torch.nn.Module``.

:func:`alibi_cd` avoids both; the detectors it returns are alibi-detect's own classes, and
their results are the same as through the package (tests/integration/test_drift_imports.py).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

TORCH_FREE = frozenset({"ks", "tabular"})  # detector modules whose code never touches torch
FRAMEWORKS = "alibi_detect.utils.frameworks"  # the module that decides has_pytorch


def alibi_cd(name: str) -> ModuleType:
    """The detector module ``alibi_detect.cd.<name>``, with as few of alibi-detect's imports as it needs.

    Packages: when neither ``alibi_detect`` nor ``alibi_detect.cd`` is imported yet, each is
    registered bare (:func:`_bare_packages`), so one detector module costs only its own imports.

    torch: for ``ks`` and ``tabular``, when neither torch nor ``utils.frameworks`` is imported
    yet, ``frameworks`` is imported with torch refused (:class:`_RefuseTorch`): it records
    ``has_pytorch = False`` and the modules after it skip their ``import torch``. Nothing is
    bound to the name ``torch`` meanwhile: scipy looks torch up in ``sys.modules`` on every
    array it checks and would run a lazily loaded torch at once. A later detector that uses
    torch (``mmd``; ``classifier`` imports its pytorch models) first drops every
    alibi-detect module imported that way (:func:`_forget_torch_blind`), so it and the
    modules under it are imported afresh, with torch. Detectors built before keep working:
    they hold their own classes and functions. A process that imported torch or alibi-detect
    before gets the modules as they are.
    """
    if name in TORCH_FREE:
        if "torch" not in sys.modules and FRAMEWORKS not in sys.modules:
            _bare_packages()
            _import_refusing(FRAMEWORKS, ("torch",))
    else:
        _forget_torch_blind()
    _bare_packages()
    return importlib.import_module(f"alibi_detect.cd.{name}")


class _RefuseTorch(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path`` for one import: the named top-level packages are not found."""

    def __init__(self, refused: Sequence[str]) -> None:
        self.refused = tuple(refused)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.split(".")[0] in self.refused:
            # What an absent package raises: alibi-detect's `except ImportError` sets has_pytorch False.
            raise ModuleNotFoundError(f"No module named {fullname!r} (not imported for a univariate detector)",
                                      name=fullname)
        return None


def _import_refusing(module: str, refused: Sequence[str]) -> None:
    # The window is `frameworks`' own body only (typing, enum and its optional imports), so
    # scipy and scikit-learn, imported after it, see torch as simply not imported.
    finder = _RefuseTorch(refused)
    sys.meta_path.insert(0, finder)
    try:
        importlib.import_module(module)
    finally:
        sys.meta_path.remove(finder)


def _forget_torch_blind() -> None:
    """Drop every alibi-detect module when ``frameworks`` was imported with torch refused."""
    frameworks = sys.modules.get(FRAMEWORKS)
    if frameworks is None or getattr(frameworks, "has_pytorch", True):
        return
    if importlib.util.find_spec("torch") is None:
        return  # torch really is absent: has_pytorch is the truth, and the detector says so itself
    for loaded in [m for m in sys.modules if m == "alibi_detect" or m.startswith("alibi_detect.")]:
        del sys.modules[loaded]


def _bare_packages() -> None:
    """Register ``alibi_detect`` and ``alibi_detect.cd`` without running their ``__init__``.

    A bare package runs its real ``__init__`` the first time it is asked for a name that
    ``__init__`` defines (``from alibi_detect.cd import X`` still works); other names are
    plain misses, since tools probe every module in ``sys.modules`` (skops.io's
    whichmodule, scikit-learn's warning-registry sweep). A package already imported is
    used as it is.
    """
    import ast

    parent_path = None
    for package in ("alibi_detect", "alibi_detect.cd"):
        if package not in sys.modules:
            spec = importlib.machinery.PathFinder.find_spec(package, parent_path)
            if spec is None or spec.loader is None or not spec.origin or not spec.submodule_search_locations:
                return  # not a plain package on the path: let the ordinary import deal with it
            nodes = list(ast.walk(ast.parse(Path(spec.origin).read_bytes())))
            defined = {a.asname or a.name for n in nodes if isinstance(n, ast.ImportFrom) for a in n.names}
            defined |= {t.id for n in nodes if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
            module = importlib.util.module_from_spec(spec)

            def complete(attr: str, module: ModuleType = module, spec: Any = spec,
                         defined: set[str] = defined) -> Any:
                if attr not in defined:
                    raise AttributeError(f"module {module.__name__!r} has no attribute {attr!r}")
                del module.__dict__["__getattr__"]  # run __init__ once only
                spec.loader.exec_module(module)
                return getattr(module, attr)

            module.__dict__["__getattr__"] = complete  # PEP 562: called for a missing attribute
            sys.modules[package] = module
            if package == "alibi_detect.cd":
                sys.modules["alibi_detect"].cd = module  # type: ignore[attr-defined]
        parent_path = sys.modules[package].__path__
