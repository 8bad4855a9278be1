"""Compose the Hydra tree in ``conf/`` into ``params.yaml``, and check the two agree."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml.config.errors import config_error_from
from gitml.config.params import validate_config
from gitml.errors import ConfigError, ParamsOutOfSync
from gitml.utils.atomic import write_text

PARAMS_HEADER = (
    "# Composed from conf/ by `gitml config compose`: edit conf/ and recompose, do not edit\n"
    "# this file by hand (CI runs `gitml config check`, which recomposes with the overrides below).\n"
)
OVERRIDES_LINE = "# overrides: "
log = logging.getLogger(__name__)


def compose(conf_dir: str | Path = "conf", overrides: Sequence[str] = (), config_name: str = "config"):
    """Compose ``conf_dir/config_name.yaml`` with Hydra overrides into a validated DictConfig.

    Example:
        >>> cfg = compose("conf", ["model=logreg", "trainer.epochs=3"])
        >>> cfg.trainer.epochs
        3
    """
    with composer(conf_dir, config_name) as one:
        return one(overrides)


@contextmanager
def composer(conf_dir: str | Path = "conf", config_name: str = "config") -> Iterator[Callable[[Sequence[str]], Any]]:
    """Hydra initialised on ``conf_dir`` once, for many compositions: yields ``one(overrides)``, which
    does what :func:`compose` does (a model per call: each costs its composition, not a new start)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from gitml.config.schema import register_configs

    conf_path = Path(conf_dir).resolve()
    if not (conf_path / f"{config_name}.yaml").is_file():
        raise ConfigError(str(Path(conf_dir) / f"{config_name}.yaml"), None, "file not found.")
    register_configs()
    GlobalHydra.instance().clear()

    def one(overrides: Sequence[str]) -> Any:
        try:
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
            OmegaConf.resolve(cfg)
        except Exception as exc:  # Hydra and OmegaConf raise many types; map them all
            raise config_error_from(exc, conf_dir=Path(conf_dir), overrides=overrides) from exc
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            also = f" Also missing: {', '.join(missing[1:])}." if missing[1:] else ""
            raise ConfigError(
                str(Path(conf_dir)), missing[0], "required value is missing (???)." + also,
                hint=f"Set it in conf/ or override it: `gitml config compose {missing[0]}=...`.",
            )
        # Hydra lets `+key=value` into a structured node; the schema check that stages apply
        # to params.yaml catches that (and cross-field rules) here already.
        validate_config(to_plain(cfg), source=str(Path(conf_dir) / f"{config_name}.yaml"), overrides=overrides)
        return cfg

    try:
        with initialize_config_dir(config_dir=str(conf_path), version_base="1.3"):
            yield one
    finally:
        GlobalHydra.instance().clear()


def compose_project(conf_dir: str | Path = "conf", overrides: Sequence[str] = ()) -> dict[str, Any]:
    """What params.yaml holds: the root composed with ``overrides`` and, when ``conf_dir/models/``
    declares models, each of them under ``models.<name>`` (gitml.config.models)."""
    from gitml.config.models import compose_models

    project = to_plain(compose(conf_dir, overrides))
    models = compose_models(conf_dir, overrides)
    if models:
        project["models"] = models
    return project


def to_plain(cfg: Any) -> dict[str, Any]:
    """A composed config as plain YAML-ready data (enums by name, interpolations resolved)."""
    from omegaconf import OmegaConf

    if isinstance(cfg, dict):
        return cfg
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[return-value]


def render_params(cfg: Any, overrides: Sequence[str] = ()) -> str:
    """params.yaml text: a header recording the overrides, then the composed values (a DictConfig, or
    plain data such as :func:`compose_project` returns)."""
    import json

    import yaml

    body = yaml.safe_dump(to_plain(cfg), sort_keys=False, default_flow_style=False, width=100)
    return PARAMS_HEADER + OVERRIDES_LINE + json.dumps(list(overrides)) + "\n" + body


def write_params(cfg: Any, params_file: str | Path = "params.yaml", overrides: Sequence[str] = ()) -> Path:
    """Write the composed config to ``params_file`` atomically."""
    return write_text(params_file, render_params(cfg, overrides))


def recorded_overrides(text: str) -> list[str]:
    """The overrides a params.yaml was composed with (none when it has no header line)."""
    import json

    for line in text.splitlines():
        if line.startswith(OVERRIDES_LINE):
            return [str(o) for o in json.loads(line[len(OVERRIDES_LINE):])]
        if not line.startswith("#"):
            break
    return []


@dataclass(frozen=True)
class InSync:
    """How params.yaml agrees with conf/: with the ``overrides`` its header records, or (``recorded``
    False) with overrides recovered from its values, as ``dvc exp run -S`` writes it."""

    overrides: list[str]
    recorded: bool = True

    @property
    def command(self) -> str:
        import shlex

        return " ".join(["gitml config compose", *(shlex.quote(o) for o in self.overrides)])


def check_params(conf_dir: str | Path = "conf", params_file: str | Path = "params.yaml") -> InSync:
    """Raise :class:`ParamsOutOfSync` when ``params_file`` differs from what ``conf_dir`` composes to
    with the overrides recorded in its header.

    Compares values, not text, so comments and key order do not matter. A params.yaml
    without our header (``dvc exp run -S`` recomposes it and records no override) is in
    sync when some overrides of conf/ give exactly its values (config/explain.py); the
    result names them, and ``InSync.command`` records them.
    """
    import yaml

    path = Path(params_file)
    if not path.is_file():
        raise ParamsOutOfSync(str(path), [f"{path} does not exist"], "gitml config compose")
    text = path.read_text(encoding="utf-8")
    found = InSync(recorded_overrides(text), recorded=_has_header(text))
    expected = compose_project(conf_dir, found.overrides)
    actual = yaml.safe_load(text) or {}
    diff = diff_trees(expected, actual)
    if diff and not found.recorded and isinstance(actual, dict) and "models" not in expected:
        from gitml.config.explain import explain_overrides

        derived = explain_overrides(conf_dir, actual, expected)
        if derived is not None:
            found = InSync(derived, recorded=False)
            log.info("%s records no overrides (as `dvc exp run -S` writes it): it is %s/ composed with %s; "
                     "`%s` records them", path, Path(conf_dir).name, " ".join(derived), found.command)
            return found
    if diff:
        raise ParamsOutOfSync(str(path), diff, found.command)
    return found


def _has_header(text: str) -> bool:
    return any(line.startswith(OVERRIDES_LINE) for line in text.splitlines()[:5])


def diff_trees(expected: Any, actual: Any, prefix: str = "") -> list[str]:
    """Human-readable differences between two nested dicts, one line per dotted key."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        lines: list[str] = []
        for key in list(expected) + [k for k in actual if k not in expected]:
            dotted = f"{prefix}{key}"
            if key not in actual:
                lines.append(f"{dotted}: composes to {expected[key]!r}, missing in params")
            elif key not in expected:
                lines.append(f"{dotted}: {actual[key]!r} in params, not in conf/")
            else:
                lines.extend(diff_trees(expected[key], actual[key], dotted + "."))
        return lines
    if expected != actual:
        return [f"{prefix.rstrip('.')}: conf/ composes to {expected!r}, params has {actual!r}"]
    return []
