"""Assemble, load and use a bundle.

Layout of ``models/bundle/``::

    model/                     model.json + weights (safetensors | skops) + preprocessor.json
    signature.json             inputs (columns, dtypes, ranges, categories), outputs (classes)
    metadata.json              name, git commit, params, data hashes, metrics, gate, versions, time
    reference.parquet          drift reference sample: raw feature columns
    reference_predictions.parquet   the model's probabilities on that sample
    MODEL_CARD.md              intended use, data, metrics overall and by slice, gate, limits
    manifest.json              sha256 and size of every other file (written last)

:func:`load_bundle` reads every file once, checks those bytes against the manifest, and
builds the model, preprocessor, signature and metadata from the same bytes.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.data.preprocess import Preprocessor
from gitml.errors import BundleError, GitmlError
from gitml.package.manifest import read_verified, write_manifest
from gitml.package.signature import validate_input

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MODEL_DIR, SIGNATURE, METADATA = "model", "signature.json", "metadata.json"
REFERENCE, REFERENCE_PREDICTIONS, CARD = "reference.parquet", "reference_predictions.parquet", "MODEL_CARD.md"
PREPROCESSOR = "preprocessor.json"


@dataclass
class Bundle:
    """A verified bundle, ready to predict."""

    path: Path
    model: Any
    preprocessor: Preprocessor
    signature: dict[str, Any]
    metadata: dict[str, Any]
    # reference.parquet's verified bytes, as load read them (None: read from ``path``)
    reference_data: bytes | None = field(default=None, repr=False)

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
        """The drift reference sample, from the bytes load verified (never re-read from disk)."""
        import pandas as pd

        source: Any = io.BytesIO(self.reference_data) if self.reference_data is not None else self.path / REFERENCE
        try:
            return pd.read_parquet(source)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise BundleError(str(self.path), [f"{REFERENCE} is not a readable Parquet file ({exc})"]) from exc


def load_bundle(path: str | Path, trusted_types: Iterable[str] = ()) -> Bundle:
    """Read the bundle's files once, verify those bytes, and build everything from them.

    Safe formats only: JSON, safetensors, skops with gitml's exact trusted types (plus
    ``trusted_types``, the loader's ``model.trusted_types``), Parquet. Raises BundleError or
    ModelLoadError, naming the file, for anything missing, altered or unsafe.

    Example:
        >>> bundle = load_bundle("models/bundle")
        >>> bundle.predict(frame)
    """
    from gitml.models import load_model_files

    path = Path(path)
    _, files = read_verified(path)
    signature, metadata = _json(files, path, SIGNATURE), _json(files, path, METADATA)
    prefix = f"{MODEL_DIR}/"
    model_files = {name[len(prefix):]: data for name, data in files.items() if name.startswith(prefix)}
    model = load_model_files(model_files, path / MODEL_DIR, trusted_types)
    try:
        prep = Preprocessor.from_bytes(model_files[PREPROCESSOR], str(path / MODEL_DIR / PREPROCESSOR))
    except KeyError:
        raise BundleError(str(path), [f"{MODEL_DIR}/{PREPROCESSOR} is missing"]) from None
    except GitmlError as exc:
        raise BundleError(str(path), [str(exc)]) from exc
    reference = files.get(REFERENCE)
    if reference is not None and not (reference[:4] == reference[-4:] == b"PAR1"):
        raise BundleError(str(path), [f"{REFERENCE} is not a Parquet file"])
    return Bundle(path, model, prep, signature, metadata, reference_data=reference)


def _json(files: dict[str, bytes], path: Path, name: str) -> dict[str, Any]:
    try:
        value = json.loads(files[name].decode("utf-8"))
    except KeyError:
        raise BundleError(str(path), [f"{name} is missing"]) from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError both are
        raise BundleError(str(path), [f"{name} is not valid JSON ({exc})"]) from exc
    if not isinstance(value, dict):
        raise BundleError(str(path), [f"{name} is not a JSON object"])
    return value


def assemble(
    out: Path, *, model_dir: Path, signature: dict[str, Any], metadata: dict[str, Any],
    reference: pd.DataFrame, card: str, trusted_types: Iterable[str] = (),
) -> None:
    """Write a complete bundle into the new folder ``out`` (the caller makes it atomic).

    ``trusted_types``: the config's ``model.trusted_types`` (exact skops type names).
    """
    import pandas as pd

    from gitml.models import load_model

    out.mkdir(parents=True)
    shutil.copytree(model_dir, out / MODEL_DIR)
    (out / SIGNATURE).write_text(json.dumps(signature, indent=2) + "\n", encoding="utf-8")
    (out / METADATA).write_text(json.dumps(metadata, indent=2, default=str) + "\n", encoding="utf-8")
    features = [c["name"] for c in signature["inputs"]]
    sample = reference[features].reset_index(drop=True)
    sample.to_parquet(out / REFERENCE, index=False)
    model = load_model(out / MODEL_DIR, trusted_types)
    prep = Preprocessor.load(out / MODEL_DIR / PREPROCESSOR)
    proba = model.predict_proba(prep.transform(sample))
    pd.DataFrame(proba, columns=[f"proba_{c}" for c in signature["outputs"]["classes"]]).to_parquet(
        out / REFERENCE_PREDICTIONS, index=False
    )
    (out / CARD).write_text(card, encoding="utf-8")
    write_manifest(out)
