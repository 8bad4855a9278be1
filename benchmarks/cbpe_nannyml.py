"""gitml's CBPE (gitml/monitor/cbpe.py) against NannyML 0.13.1's on the data tests/unit/test_cbpe.py draws.

NannyML is not a gitml dependency (0.13.1 pulls xgboost, lightgbm, FLAML, Google Cloud Storage
and a telemetry client), so this runs in two interpreters:

    .venv/bin/python benchmarks/cbpe_nannyml.py write /tmp/cbpe       # the test's data, as CSV
    python3 -m venv /tmp/nml && /tmp/nml/bin/pip install nannyml==0.13.1 statsmodels
    NML_DISABLE_USAGE_LOGGING=1 /tmp/nml/bin/python benchmarks/cbpe_nannyml.py nannyml /tmp/cbpe

The second prints NannyML's per-chunk estimates (reference: the first REFERENCE rows, chunks of
CHUNK rows over all of them), which test_cbpe.py holds as NANNYML_* and compares with gitml's.
"""

from __future__ import annotations

import sys
from pathlib import Path

CHUNK, REFERENCE = 500, 1000


def write(folder: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.unit.test_cbpe import overconfident_binary, overconfident_multiclass

    folder.mkdir(parents=True, exist_ok=True)
    for name, (proba, truth) in (("binary", overconfident_binary()), ("multiclass", overconfident_multiclass())):
        import pandas as pd

        frame = pd.DataFrame(proba, columns=[f"p{c}" for c in range(proba.shape[1])])
        frame["pred"], frame["y"] = proba.argmax(axis=1), truth
        frame.to_csv(folder / f"{name}.csv", index=False, float_format="%.17g")


def nannyml(folder: Path) -> None:
    import nannyml as nml
    import pandas as pd

    for name in ("binary", "multiclass"):
        data = pd.read_csv(folder / f"{name}.csv")
        classes = sorted(int(c[1:]) for c in data.columns if c.startswith("p") and c[1:].isdigit())
        if name == "binary":
            kwargs = {"y_pred_proba": "p1", "problem_type": "classification_binary"}
        else:
            kwargs = {"y_pred_proba": {c: f"p{c}" for c in classes}, "problem_type": "classification_multiclass"}
        estimator = nml.CBPE(y_pred="pred", y_true="y", metrics=["accuracy", "roc_auc", "f1"], chunk_size=CHUNK,
                             **kwargs).fit(data.iloc[:REFERENCE])
        result = estimator.estimate(data.drop(columns=["y"])).to_df()
        result = result[result[("chunk", "period")] == "analysis"]
        for metric in ("accuracy", "roc_auc", "f1"):
            print(name, metric, [round(float(v), 6) for v in result[(metric, "value")]])


if __name__ == "__main__":
    {"write": write, "nannyml": nannyml}[sys.argv[1]](Path(sys.argv[2]))
