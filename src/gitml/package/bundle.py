"""Assemble, load and use a bundle.

Layout of ``models/bundle/``::

    model/                     model.json + weights (safetensors | skops) + preprocessor.json
    signature.json             inputs (columns, dtypes, ranges, categories), outputs (classes)
    metadata.json              name, git commit, params, data hashes, metrics, gate, versions, time
    reference.parquet          drift reference sample: raw feature columns
    reference_predictions.parquet   the model's probabilities on that sample
    MODEL_CARD.md              intended use, data, metrics overall and by slice, gate, limits
    manifest.json              sha256 and size of every other file (written last)

:func:`load_bundle` verifies the manifest before reading anything else.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.data.preprocess import Preprocessor
from gitml.package.manifest import verify_manifest, write_manifest
from gitml.package.signature import validate_input

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MODEL_DIR, SIGNATURE, METADATA = "model", "signature.json", "metadata.json"
REFERENCE, REFERENCE_PREDICTIONS, CARD = "reference.parquet", "reference_predictions.parquet", "MODEL_CARD.md"


@dataclass
class Bundle:
    """A verified bundle, ready to predict."""

    path: Path
    model: Any
    preprocessor: Preprocessor
    signature: dict[str, Any]
    metadata: dict[str, Any]

    @property
    def classes(self) -> list[Any]:
        return list(self.signature["outputs"]["classes"])

    @property
    def version(self) -> str:
        return str(self.metadata.get("version") or self.metadata.get("bundle_id", "unversioned"))

    def predict_proba(self, frame: pd.DataFrame, max_rows: int | None = None) -> np.ndarray:
        """Validate ``frame`` against the signature, preprocess, return class probabilities."""
        clean = validate_input(frame, self.signature, max_rows=max_rows)
        return self.model.predict_proba(self.preprocessor.transform(clean))

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Class and per-class probabilities for each row."""
        import pandas as pd

        proba = self.predict_proba(frame)
        names = [str(c) for c in self.classes]
        out = pd.DataFrame(proba, columns=[f"proba_{c}" for c in names], index=frame.index)
        out.insert(0, "prediction", [self.classes[i] for i in proba.argmax(axis=1)])
        return out

    def reference(self) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(self.path / REFERENCE)


def load_bundle(path: str | Path) -> Bundle:
    """Verify the manifest, then load the model (safe formats only) and the signature."""
    from gitml.models import load_model

    path = Path(path)
    verify_manifest(path)
    signature = json.loads((path / SIGNATURE).read_text(encoding="utf-8"))
    metadata = json.loads((path / METADATA).read_text(encoding="utf-8"))
    model = load_model(path / MODEL_DIR)
    prep = Preprocessor.load(path / MODEL_DIR / "preprocessor.json")
    return Bundle(path, model, prep, signature, metadata)


def assemble(
    out: Path, *, model_dir: Path, signature: dict[str, Any], metadata: dict[str, Any],
    reference: pd.DataFrame, card: str,
) -> None:
    """Write a complete bundle into the new folder ``out`` (the caller makes it atomic)."""
    import pandas as pd

    from gitml.models import load_model

    out.mkdir(parents=True)
    shutil.copytree(model_dir, out / MODEL_DIR)
    (out / SIGNATURE).write_text(json.dumps(signature, indent=2) + "\n", encoding="utf-8")
    (out / METADATA).write_text(json.dumps(metadata, indent=2, default=str) + "\n", encoding="utf-8")
    features = [c["name"] for c in signature["inputs"]]
    sample = reference[features].reset_index(drop=True)
    sample.to_parquet(out / REFERENCE, index=False)
    model = load_model(out / MODEL_DIR)
    prep = Preprocessor.load(out / MODEL_DIR / "preprocessor.json")
    proba = model.predict_proba(prep.transform(sample))
    pd.DataFrame(proba, columns=[f"proba_{c}" for c in signature["outputs"]["classes"]]).to_parquet(
        out / REFERENCE_PREDICTIONS, index=False
    )
    (out / CARD).write_text(card, encoding="utf-8")
    write_manifest(out)
