"""Assemble, load and use a bundle.

Layout of ``models/bundle/``::

    model/                     model.json + weights (safetensors | skops) + preprocessor.json
    signature.json             inputs (columns, dtypes, ranges, categories), outputs (classes)
    metadata.json              name, git commit, params, data hashes, metrics, gate, versions, time
    reference.parquet          drift reference sample: raw feature columns
    reference_predictions.parquet   the model's probabilities (regression: numbers) on held-out rows,
                               and those rows' true labels (``label``: what CBPE calibrates on)
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
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.data.preprocess import Preprocessor
from gitml.errors import BundleError, GitmlError
from gitml.package.logschema import PREDICTION
from gitml.package.manifest import read_verified, write_manifest
from gitml.package.signature import Signature
from gitml.package.validation import validate_input

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MODEL_DIR, SIGNATURE, METADATA = "model", "signature.json", "metadata.json"
REFERENCE, REFERENCE_PREDICTIONS, CARD = "reference.parquet", "reference_predictions.parquet", "MODEL_CARD.md"
REFERENCE_LABEL = "label"  # the held-out rows' true labels, beside the answers (no proba_ prefix: no clash)
PREPROCESSOR = "preprocessor.json"


@dataclass(frozen=True)
class BundleInfo:
    """What ``metadata.json`` says about the bundle, typed (``Bundle.metadata`` keeps all of it)."""

    name: str
    bundle_id: str
    version: str | None  # a version the packager recorded (the registry's tags name versions otherwise)
    family: str
    created_at: str | None
    commit: str | None
    provenance: dict[str, Any] | None

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], manifest: dict[str, Any]) -> BundleInfo:
        model, git = metadata.get("model") or {}, metadata.get("git") or {}
        provenance = metadata.get("provenance")
        return cls(
            name=str(metadata.get("name") or "model"),
            # the model folder's content hash; a bundle without one is named by its manifest
            bundle_id=str(metadata.get("bundle_id") or str(manifest.get("self_sha256", ""))[:16] or "unknown"),
            version=str(metadata["version"]) if metadata.get("version") else None,
            family=str(model.get("family") or "unknown") if isinstance(model, dict) else "unknown",
            created_at=metadata.get("created_at"),
            commit=git.get("commit") if isinstance(git, dict) else None,
            provenance=provenance if isinstance(provenance, dict) else None,
        )


@dataclass
class Bundle:
    """A verified bundle: its signature, metadata and files as the load hashed them.

    The model and preprocessor are built from those bytes on first use (at load, unless
    the loader asked for the metadata only); nothing is read from ``path`` again.
    """

    path: Path
    signature: Signature
    info: BundleInfo
    metadata: dict[str, Any]
    manifest: dict[str, Any]
    files: dict[str, bytes] = field(repr=False)
    trusted_types: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.info.bundle_id

    @property
    def version(self) -> str:
        """The version the bundle records, else its id (a server is told the registry's version)."""
        return self.info.version or self.info.bundle_id

    @property
    def classes(self) -> list[Any]:
        return list(self.signature.classes)

    @property
    def task(self) -> str:
        return self.signature.task

    @property
    def regression(self) -> bool:
        return self.signature.regression

    @property
    def manifest_sha256(self) -> str:
        """The manifest's own checksum: one value that changes with any byte of any file."""
        return str(self.manifest["self_sha256"])

    @property
    def size_bytes(self) -> int:
        """The size of the bundle's files, as its manifest lists them."""
        return sum(int(entry.get("bytes", 0)) for entry in self.manifest["files"].values())

    @property
    def fingerprint(self) -> dict[str, str]:
        """sha256 of the files a drift detector is fitted from (its cache key)."""
        listed = self.manifest["files"]
        return {name: str(listed[name]["sha256"]) for name in (REFERENCE, REFERENCE_PREDICTIONS, SIGNATURE)
                if name in listed}

    @cached_property
    def model(self) -> Any:
        from gitml.models import load_model_files

        return load_model_files(self._model_files(), self.path / MODEL_DIR, self.trusted_types)

    @cached_property
    def preprocessor(self) -> Preprocessor:
        where = self.path / MODEL_DIR / PREPROCESSOR
        try:
            return Preprocessor.from_bytes(self._model_files()[PREPROCESSOR], str(where))
        except KeyError:
            raise BundleError(str(self.path), [f"{MODEL_DIR}/{PREPROCESSOR} is missing"]) from None
        except GitmlError as exc:
            raise BundleError(str(self.path), [str(exc)]) from exc

    @cached_property
    def model_md5(self) -> str:
        """DVC's hash of the bundle's ``model/`` folder: what dvc.lock records for the train stage's output."""
        from gitml.utils.dvc_hash import files_md5

        return files_md5(self._model_files())

    def _model_files(self) -> dict[str, bytes]:
        prefix = f"{MODEL_DIR}/"
        return {name[len(prefix):]: data for name, data in self.files.items() if name.startswith(prefix)}

    def predict_proba(self, frame: pd.DataFrame, max_rows: int | None = None) -> np.ndarray:
        """Validate ``frame`` against the signature, preprocess, return class probabilities."""
        if self.regression:
            raise GitmlError("A regression bundle has no class probabilities: use model_output or predict.")
        return self.model_output(frame, max_rows)

    def model_output(self, frame: pd.DataFrame, max_rows: int | None = None) -> np.ndarray:
        """Validate ``frame`` against the signature, preprocess, return what the model scores:
        class probabilities ``(n, k)``, or for regression the predicted numbers ``(n,)``."""
        clean = validate_input(frame, self.signature.compiled, max_rows=max_rows)
        features = self.preprocessor.transform(clean)
        return self.model.predict(features) if self.regression else self.model.predict_proba(features)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Class and per-class probabilities for each row; for regression, the predicted number."""
        return output_frame(self.signature, self.model_output(frame), frame.index)

    def reference(self) -> pd.DataFrame:
        """The drift reference sample (raw feature columns)."""
        return self._parquet(REFERENCE)

    def reference_predictions(self) -> pd.DataFrame:
        """The model's answers on held-out rows (``package.prediction_reference_splits``):
        ``proba_<class>`` columns, or for regression one ``prediction`` column; and, in bundles
        packaged since labels were kept, the rows' true labels (:data:`REFERENCE_LABEL`)."""
        return self._parquet(REFERENCE_PREDICTIONS)

    def _parquet(self, name: str) -> pd.DataFrame:
        import pandas as pd

        if name not in self.files:
            raise BundleError(str(self.path), [f"{name} is missing"])
        try:
            return pd.read_parquet(io.BytesIO(self.files[name]))
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise BundleError(str(self.path), [f"{name} is not a readable Parquet file ({exc})"]) from exc


def output_frame(signature: Signature, output: np.ndarray, index: Any = None) -> pd.DataFrame:
    """The answer rows of batch predictions: ``prediction`` (a class, or for regression a
    number) and, for classification, each class's probability (``proba_<class>``)."""
    import pandas as pd

    if signature.regression:
        return pd.DataFrame({PREDICTION: output}, index=index)
    out = pd.DataFrame(output, columns=signature.proba_columns, index=index)
    out.insert(0, PREDICTION, [signature.classes[i] for i in output.argmax(axis=1)])
    return out


def load_bundle(path: str | Path, trusted_types: Iterable[str] = (), *, model: bool = True) -> Bundle:
    """Read the bundle's files once, verify those bytes, and build everything from them.

    Safe formats only: JSON, safetensors, skops with gitml's exact trusted types (plus
    ``trusted_types``, the loader's ``model.trusted_types``), Parquet. Raises BundleError or
    ModelLoadError, naming the file, for anything missing, altered or unsafe. With
    ``model=False`` the model is built only if something asks for it (the drift check reads
    the signature and reference samples alone).

    Example:
        >>> bundle = load_bundle("models/bundle")
        >>> bundle.predict(frame)
    """
    path = Path(path)
    manifest, files = read_verified(path)
    metadata = _json(files, path, METADATA)
    signature = Signature.from_dict(_json(files, path, SIGNATURE), f"{path / SIGNATURE}")
    for name in (REFERENCE, REFERENCE_PREDICTIONS):
        data = files.get(name)
        if data is not None and not (data[:4] == data[-4:] == b"PAR1"):
            raise BundleError(str(path), [f"{name} is not a Parquet file"])
    bundle = Bundle(path, signature, BundleInfo.from_metadata(metadata, manifest), metadata, manifest, files,
                    tuple(trusted_types))
    if model:
        _ = bundle.model, bundle.preprocessor, bundle.model_md5
        # built: the weights' bytes need not stay in memory beside the model
        bundle.files = {name: data for name, data in files.items() if not name.startswith(f"{MODEL_DIR}/")}
    return bundle


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
    out: Path, *, model_dir: Path, signature: Signature, metadata: dict[str, Any],
    reference: pd.DataFrame, card: str, trusted_types: Iterable[str] = (), scored: pd.DataFrame | None = None,
) -> None:
    """Write a complete bundle into the new folder ``out`` (the caller makes it atomic).

    ``reference``: the feature-drift reference sample; ``scored``: the rows whose predictions
    are the prediction-drift reference (held-out rows; default ``reference``).
    ``trusted_types``: the config's ``model.trusted_types`` (exact skops type names).
    """
    import pandas as pd

    from gitml.models import load_model

    out.mkdir(parents=True)
    shutil.copytree(model_dir, out / MODEL_DIR)
    (out / SIGNATURE).write_text(json.dumps(signature.to_dict(), indent=2) + "\n", encoding="utf-8")
    (out / METADATA).write_text(json.dumps(metadata, indent=2, default=str) + "\n", encoding="utf-8")
    sample = reference[signature.features].reset_index(drop=True)
    sample.to_parquet(out / REFERENCE, index=False)
    model = load_model(out / MODEL_DIR, trusted_types)
    prep = Preprocessor.load(out / MODEL_DIR / PREPROCESSOR)
    features = prep.transform(sample if scored is None else scored[signature.features].reset_index(drop=True))
    if signature.regression:
        predictions = pd.DataFrame({PREDICTION: model.predict(features)})
    else:
        predictions = pd.DataFrame(model.predict_proba(features), columns=signature.proba_columns)
    rows = reference if scored is None else scored
    if signature.label is not None and signature.label in rows.columns:
        predictions[REFERENCE_LABEL] = rows[signature.label].to_numpy()
    predictions.to_parquet(out / REFERENCE_PREDICTIONS, index=False)
    (out / CARD).write_text(card, encoding="utf-8")
    write_manifest(out)
