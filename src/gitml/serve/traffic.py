"""Traffic splits: weights per version and a shadow, from a committed file to the server's routing table.

The committed file, ``deploy/<model>.yaml`` (docs/delivery.md)::

    versions:          # integer percents, summing to 100, in the order their buckets are laid out
      v1.1.0: 90
      v1.2.0: 10
    shadow: v1.3.0     # optional: answers every request too; logged (shadow log), never returned
    key: x-gitml-key   # optional: the request header whose value picks the version

``gitml deploy --traffic FILE`` publishes it into a deployment target as ``traffic.json``
(:func:`gitml.serve.deployment.publish_split`); a server following that target loads every
version it names and routes each request by a stable hash of its key into 100 buckets: the
first version's percent of buckets, then the next's. The same key lands on the same version
while the weights stay; raising the last version's share only moves keys towards it.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.errors import DeploymentError

if TYPE_CHECKING:
    from gitml.serve.model import ServedModel

TRAFFIC = "traffic.json"  # beside current.json in a deployment target
SHADOW = "shadow"  # the shadow's predictions: a log beside requests/ and feedback/ (same columns as requests/)
KEY_HEADER = "x-gitml-key"  # the default routing key; else X-Request-Id; else a random bucket (counted)
FALLBACK_HEADER = "x-request-id"
BUCKETS = 100
FILE_KEYS = ("versions", "shadow", "key")
HEADER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")


@dataclass(frozen=True)
class Split:
    """Weights per version (percents summing to 100, in bucket order), an optional shadow, the key header."""

    weights: tuple[tuple[str, int], ...]
    shadow: str | None = None
    key: str = KEY_HEADER
    table: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = [index for index, (_, percent) in enumerate(self.weights) for _ in range(percent)]
        object.__setattr__(self, "table", tuple(table))

    @property
    def stable(self) -> str:
        """The version with the largest share (the first of equals): what current.json names."""
        return max(self.weights, key=lambda weight: weight[1])[0]

    @property
    def served(self) -> list[str]:
        """Versions that answer some requests (a share above 0)."""
        return [version for version, percent in self.weights if percent > 0]

    @property
    def loaded(self) -> list[str]:
        """Versions a server loads: the served ones, then the shadow."""
        return self.served + ([self.shadow] if self.shadow else [])

    def version_for(self, key: str) -> str:
        """The version answering a request with routing key ``key`` (stable while the weights stay)."""
        return self.weights[self.table[bucket(key)]][0]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"versions": dict(self.weights)}
        if self.shadow:
            data["shadow"] = self.shadow
        if self.key != KEY_HEADER:
            data["key"] = self.key
        return data


def bucket(key: str) -> int:
    """The bucket in [0, 100) of a routing key: BLAKE2b of its UTF-8 bytes (the same in every process
    and release, unlike ``hash()``), 64 bits reduced modulo 100 (bias below 1e-17)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def parse_split(raw: Any, where: str) -> Split:
    """Check a split (the committed file's mapping, or traffic.json); every problem named with its key."""
    from gitml.serve.deployment import VERSION

    if not isinstance(raw, dict):
        raise DeploymentError(f"{where}: expected a mapping with 'versions: {{VERSION: PERCENT, ...}}' "
                              f"(and optionally shadow, key), got {type(raw).__name__}.")
    problems = [f"unknown key '{str(key)[:40]}' (allowed: {', '.join(FILE_KEYS)})" for key in raw
                if key not in FILE_KEYS]
    versions = raw.get("versions")
    weights: list[tuple[str, int]] = []
    if not isinstance(versions, dict) or not versions:
        problems.append("versions: expected a mapping of version to an integer percent, e.g. {v1.1.0: 90, v1.2.0: 10}")
    else:
        for version, percent in versions.items():
            if not isinstance(version, str) or not VERSION.fullmatch(version):
                problems.append(f"versions: '{str(version)[:40]}' is not a version (letters, digits and . _ + -, "
                                "starting with a letter or digit; quote it if YAML reads it as a number)")
            elif isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= BUCKETS:
                problems.append(f"versions.{version}: {repr(percent)[:40]} is not an integer percent from 0 to 100")
            else:
                weights.append((version, percent))
        total = sum(percent for _, percent in weights)
        if len(weights) == len(versions) and total != BUCKETS:
            problems.append(f"versions: the percents add up to {total}, not 100")
    shadow = raw.get("shadow")
    if shadow is not None and (not isinstance(shadow, str) or not VERSION.fullmatch(shadow)):
        problems.append(f"shadow: {str(shadow)[:40]!r} is not a version")
    elif shadow is not None and any(version == shadow and percent for version, percent in weights):
        problems.append(f"shadow: '{shadow}' already answers a share of the requests; a shadow answers none")
    key = raw.get("key", KEY_HEADER)
    if not isinstance(key, str) or not HEADER.fullmatch(key):
        problems.append(f"key: {str(key)[:40]!r} is not a header name (letters, digits and -)")
    if problems:
        raise DeploymentError(f"{where}: " + "; ".join(problems) + ".")
    return Split(tuple(weights), shadow, key.lower())


def read_traffic_file(path: str | Path) -> Split:
    """The split a committed ``deploy/<model>.yaml`` declares (checked)."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeploymentError(f"No traffic file '{path}'. Write one with `gitml deploy --canary PERCENT "
                              "--version VERSION --target TARGET`.") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DeploymentError(f"{path}: not readable YAML ({str(exc)[:200]}).") from exc
    return parse_split(raw, str(path))


def write_traffic_file(path: str | Path, split: Split, model: str) -> Path:
    """Write ``split`` as the committed file (atomically), with a comment saying how it is applied."""
    import yaml

    from gitml.utils.atomic import write_text

    head = (f"# Traffic of model '{model}' (docs/delivery.md): percents per version, summing to 100, and an\n"
            "# optional shadow whose answers are logged, never returned. Change it in a pull request; on main,\n"
            "# `gitml deploy --traffic THIS_FILE --target TARGET` applies it (the deploy workflow runs that).\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, head + yaml.safe_dump(split.to_dict(), sort_keys=False))


def split_json(split: Split, written_at: str) -> bytes:
    """traffic.json: the split with the versions as an ordered list (bucket order)."""
    data = {"versions": [[version, percent] for version, percent in split.weights], "shadow": split.shadow,
            "key": split.key, "written_at": written_at}
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def parse_split_json(raw: bytes, where: str) -> Split:
    try:
        data = json.loads(raw.decode("utf-8"))
        versions = {str(version): percent for version, percent in data["versions"]}
        shadow, key = data.get("shadow"), data.get("key", KEY_HEADER)
    except (ValueError, KeyError, TypeError) as exc:
        raise DeploymentError(f"'{where}' is not a traffic split ({exc}); expected "
                              '{"versions": [[VERSION, PERCENT], ...], "shadow", "key"}.') from exc
    return parse_split({"versions": versions, "shadow": shadow, "key": key}, where)


@dataclass(frozen=True)
class Routes:
    """What a server answers a model's requests with under a split: one loaded model per version.

    Built whole by the follower and swapped in with one assignment, so a request sees the old
    routing table or the new one, and every version either names is loaded.
    """

    split: Split
    models: dict[str, ServedModel]  # by version: every served version and the shadow

    @property
    def primary(self) -> ServedModel:
        return self.models[self.split.stable]

    @property
    def shadow(self) -> ServedModel | None:
        return self.models[self.split.shadow] if self.split.shadow else None

    def role(self, version: str) -> str:
        """stable, canary or shadow: the metrics label of a version under this split."""
        if version == self.split.shadow:
            return SHADOW
        return "stable" if version == self.split.stable else "canary"

    def pick(self, headers: Any) -> tuple[ServedModel, bool]:
        """The model answering a request with ``headers`` (a mapping, lower-case names), and whether it
        had a routing key (its split's key header, else X-Request-Id); without one, a random bucket."""
        key = headers.get(self.split.key) or headers.get(FALLBACK_HEADER)
        if key:
            return self.models[self.split.version_for(key)], True
        index = self.split.table[random.randrange(BUCKETS)]  # a share of traffic, not a secret
        return self.models[self.split.weights[index][0]], False
