"""alibi-detect's detectors imported one module at a time (monitor.alibi_modules.alibi_cd) give
the same results as through the package, without the package's imports (transformers and the
rest), and ks/tabular without torch; mmd, asked for after them, still runs on torch.

Each path runs in a fresh interpreter, so that what one imported cannot serve the other.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # two fresh interpreters importing torch: seconds each

SCRIPT = """
import json, sys
import numpy as np
import pandas as pd
if sys.argv[1] == "package":
    import alibi_detect.cd  # the whole package first: alibi_cd then uses it as it is
from gitml.monitor.detectors import Detector, build_alibi

rng = np.random.default_rng(7)
def frame(n, shift):
    return pd.DataFrame({"a": rng.normal(size=n) + shift, "b": rng.normal(size=n),
                         "c": rng.integers(0, 4, size=n).astype("float64")})
reference, current = frame(400, 0.0), frame(300, 0.3)
results = {}
for kind in ("ks", "tabular", "mmd", "classifier"):
    if kind == "classifier":  # its own module imports alibi's pytorch models, and they transformers
        # sweeps over every module (skops.io's whichmodule on import, scikit-learn's warning registry)
        [hasattr(module, name) for module in list(sys.modules.values()) for name in ("agm", "__warningregistry__")]
        heavy = "transformers" in sys.modules
    tests = ["ks", "ks", "chi2"] if kind == "tabular" else ["ks"] * 3 if kind == "ks" else []
    detector = Detector(kind=kind, columns=["a", "b", "c"], tests=tests, alibi=None, seed=3)
    detector.x_ref = reference.to_numpy(dtype="float64")
    detector.alibi = build_alibi(detector, detector.x_ref)
    results[kind] = detector.test(current).to_dict()
    if kind == "tabular":  # after fitting and testing both univariate detectors (scipy included)
        torch_after_univariate = "torch" in sys.modules
from alibi_detect.cd import LSDDDrift  # a public name the bare package lacks: its real __init__ runs
print(json.dumps({"results": results, "transformers": heavy, "completed": LSDDDrift.__name__,
                  "torch_after_univariate": torch_after_univariate}))
"""


def run(path: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, path], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_detector_modules_alone_match_the_package_import_without_its_imports():
    alone, package = run("alone"), run("package")
    assert alone["results"] == package["results"]  # p-values, statistics and verdicts, exactly
    assert alone["results"]["ks"]["features"][0]["name"] == "a"  # the shifted column, found
    assert package["transformers"] and not alone["transformers"]
    assert alone["completed"] == "LSDDDrift"
    assert package["torch_after_univariate"] and not alone["torch_after_univariate"]
    assert alone["results"]["mmd"]["p_value"] is not None  # mmd ran on torch after ks and tabular
