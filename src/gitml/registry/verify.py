"""``gitml gate verify``: make a failed (or stale) gate verdict fail the CI job."""

from __future__ import annotations

import json
from pathlib import Path

from gitml.config.schema import Config
from gitml.errors import GateFailed, GitmlError


def verify_gate(report: Path, cfg: Config, repo: Path = Path(".")) -> str:
    if not report.is_file():
        raise GateFailed(f"No gate report at '{report}': run `dvc repro` first.")
    result = json.loads(report.read_text())
    failed = [r for r in result.get("rules", []) if r.get("verdict") == "fail"]
    if result.get("verdict") != "pass":
        lines = "\n".join(f"  - {r['rule']}: {r['reason']}" for r in failed)
        raise GateFailed(f"Gate FAILED: {len(failed)} of {len(result.get('rules', []))} rule(s) failed:\n{lines}")
    if cfg.gate.champion.enabled:
        stale = _stale_champion(cfg, repo, result.get("champion_version"))
        if stale:
            raise GateFailed(stale)
    return f"Gate PASSED: {len(result.get('rules', []))} rule(s) checked ({report})"


def _stale_champion(cfg: Config, repo: Path, recorded: str | None) -> str | None:
    from gitml.gitops.git import repo_root
    from gitml.registry.tags import stage_version

    try:
        root = repo_root(repo)
    except GitmlError:
        return None
    current = stage_version(root, cfg.registry.model, cfg.gate.champion_stage)
    now = current.version if current else None
    if now != recorded:
        return (f"Gate result is stale: it compared against {recorded or 'no champion'}, but "
                f"'{cfg.gate.champion_stage}' now holds {now}. Rerun it: `dvc repro -f gate`.")
    return None
