"""scikit-learn's toy data sets, read from the files scikit-learn ships, without importing it.

Importing scikit-learn (and the scipy.stats it imports) costs the ingest stage ~2 s to
read a CSV of a few hundred rows. The files and the feature names here are scikit-learn's
own: a test compares every set with scikit-learn's loader, and a set whose file is not
where this looks is loaded through scikit-learn instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

_MEASURES = ("radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
             "concave points", "symmetry", "fractal dimension")
FEATURES: dict[str, list[str]] = {
    "breast_cancer": [f"mean {m}" for m in _MEASURES] + [f"{m} error" for m in _MEASURES]
    + [f"worst {m}" for m in _MEASURES],
    "wine": ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
             "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
             "od280/od315_of_diluted_wines", "proline"],
    "iris": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
    "digits": [f"pixel_{row}_{col}" for row in range(8) for col in range(8)],
    "diabetes": ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"],
}
# File under sklearn/datasets/data/, and whether its first line is a header (counts and class names).
FILES = {"breast_cancer": ("breast_cancer.csv", 1), "wine": ("wine_data.csv", 1),
         "iris": ("iris.csv", 1), "digits": ("digits.csv.gz", 0),
         # regression: unscaled (as load_diabetes(scaled=False)), target in a file of its own
         "diabetes": ("diabetes_data_raw.csv.gz", 0)}
DIABETES_TARGET = "diabetes_target.csv.gz"


def read_toy_set(name: str) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """(feature names, data, target) of ``name``, or None where its file is not found.

    The target is int64 class codes, or float64 for the regression set (diabetes).
    """
    import numpy as np

    spec = importlib.util.find_spec("sklearn")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations or name not in FILES:
        return None
    file, header = FILES[name]
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / file
    if not path.is_file():
        return None
    if name == "diabetes":
        data, target = np.loadtxt(path), np.loadtxt(path.with_name(DIABETES_TARGET))
        if data.shape != (len(target), len(FEATURES[name])):
            return None
        return FEATURES[name], data, target
    table = np.loadtxt(path, delimiter=",", skiprows=header, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != len(FEATURES[name]) + 1:
        return None
    return FEATURES[name], table[:, :-1], table[:, -1].astype(np.int64)
