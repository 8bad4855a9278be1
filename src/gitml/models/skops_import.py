"""``skops.io`` without torch: a scikit-learn model's save, check and load need no torch.

On import, ``skops.io`` lists scikit-learn's estimators (``sklearn.utils.all_estimators``),
which walks every package under ``sklearn`` and imports each one, among them
``sklearn.externals.array_api_compat.torch``, which imports torch: 2.2 of the 4.2 s that
``gitml predict`` on a logistic regression spent importing at load 6 (its CPU time: 4.4 s
with torch, 2.6 s without), and every other process that saves or loads a ``model.skops``
pays it too: train, evaluate, package, gate, serve. ``all_estimators``
then skips everything under ``externals``, so no estimator is found there: with that one
package refused for the duration of the import (``pkgutil.walk_packages`` passes over a
package whose import fails) skops trusts exactly the same type names.
tests/integration/test_cli_process.py checks both, in fresh interpreters.
"""

from __future__ import annotations

import sys
from types import ModuleType

TORCH_SHIM = "sklearn.externals.array_api_compat.torch"


def import_skops_io() -> ModuleType:
    """``import skops.io``, keeping torch out when nothing imported it yet.

    Example: ``sio = import_skops_io(); sio.load(path, trusted=[...])``
    """
    if "skops.io" in sys.modules or "torch" in sys.modules or TORCH_SHIM in sys.modules:
        import skops.io  # already paid for, or torch is here anyway: import as it is

        return skops.io
    sys.modules[TORCH_SHIM] = None  # type: ignore[assignment]  # None: "import refused", by Python's rule
    try:
        import skops.io
    finally:
        if sys.modules.get(TORCH_SHIM, ...) is None:
            del sys.modules[TORCH_SHIM]  # a later `import` of it (array API on torch) works as usual
    return skops.io
