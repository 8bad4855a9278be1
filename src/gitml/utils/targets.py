"""Instantiate ``_target_`` objects from config, only under an allow-list.

Configs arrive through pull requests: a ``_target_`` of ``os.system`` must never run.
"""

from __future__ import annotations

from typing import Any

from gitml.errors import UnsafeTargetError

ALLOWED_PREFIXES = ("gitml.", "torch.nn.", "torch.optim.", "sklearn.")


def check_targets(node: Any, key: str) -> None:
    """Raise UnsafeTargetError for any ``_target_`` in ``node`` outside the allow-list."""
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None and not str(target).startswith(ALLOWED_PREFIXES):
            raise UnsafeTargetError(key, str(target), ALLOWED_PREFIXES)
        for name, value in node.items():
            check_targets(value, f"{key}.{name}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            check_targets(value, f"{key}.{i}")


def instantiate(node: dict[str, Any], key: str, *args: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` after the allow-list check; errors name ``key``."""
    from hydra.utils import instantiate as hydra_instantiate

    from gitml.errors import ConfigError

    check_targets(node, key)
    try:
        return hydra_instantiate(node, *args, **kwargs)
    except Exception as exc:
        cause = exc.__cause__ or exc
        raise ConfigError("params.yaml", key, f"cannot instantiate {node.get('_target_')!r}: {cause}") from exc
