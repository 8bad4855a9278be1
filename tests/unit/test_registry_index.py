"""The one-call tag reader (registry/index.py) against GTO itself, on random tag histories.

GTO is the reference: ``gto show``, ``gto which`` and ``gto history`` must keep agreeing
with ``gitml registry show``, ``which`` and ``history`` on any registry, including what
GTO's own edge rules decide (two events in one second, deregistered versions, stage
events at an unregistered commit, deprecated artifacts, lightweight and foreign tags).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
from pathlib import Path

import pytest

from gitml.errors import GitmlError
from gitml.registry import tags
from gitml.registry.index import read_registry

STAGES = ("staging", "prod")
BASE_TIME = 1_760_000_000


def _git(repo: Path, *args: str, when: int | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "Tagger", "GIT_COMMITTER_EMAIL": "tagger@example.com"}
    if when is not None:
        env["GIT_COMMITTER_DATE"] = f"{when} +0100"
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def _repo(tmp_path: Path, commits: int) -> tuple[Path, list[str]]:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    shas = []
    for i in range(commits):
        (repo / "f").write_text(str(i))
        _git(repo, "add", "f")
        _git(repo, "commit", "-qm", f"c{i}", when=BASE_TIME)
        shas.append(_git(repo, "rev-parse", "HEAD"))
    return repo, shas


def _random_history(repo: Path, shas: list[str], rng: random.Random, n_events: int) -> None:
    """GTO-named annotated tags with times drawn from a few seconds, so ties are common."""
    counters: dict[str, int] = {}
    registered: dict[tuple[str, str], str] = {}  # (artifact, version) -> commit
    for _ in range(n_events):
        artifact = rng.choice(["churn", "fraud"])
        when = BASE_TIME + rng.randint(0, 6)
        kind = rng.choices(["register", "deregister", "assign", "unassign", "deprecate"], [5, 1, 5, 2, 1])[0]
        mine = [(v, c) for (a, v), c in registered.items() if a == artifact]
        if kind == "register" or not mine:
            version = f"v{rng.randint(0, 2)}.{rng.randint(0, 3)}.{rng.randint(0, 2)}"
            if (artifact, version) in registered:
                continue
            # mostly one version per commit (gitml promote reuses one), sometimes not (GTO refuses to read it)
            used = {c for (a, _), c in registered.items() if a == artifact}
            free = [c for c in shas if c not in used] or shas
            commit = rng.choice(free if rng.random() < 0.95 else shas)
            registered[(artifact, version)] = commit
            name = f"{artifact}@{version}"
        elif kind == "deregister":
            version, commit = rng.choice(mine)
            name = f"{artifact}@{version}!"
            if _exists(repo, name):
                continue
        elif kind == "deprecate":
            commit, name = rng.choice(shas), f"{artifact}@deprecated"
            if _exists(repo, name):
                continue
        else:
            # stage events mostly at a registered version's commit, sometimes at any commit
            commit = rng.choice(mine)[1] if rng.random() < 0.85 else rng.choice(shas)
            counters[artifact] = counters.get(artifact, 0) + 1
            cancel = "!" if kind == "unassign" else ""
            name = f"{artifact}#{rng.choice(STAGES)}{cancel}#{counters[artifact]}"
        _git(repo, "tag", "-a", name, "-m", f"{kind} {name}", commit, when=when)
    _git(repo, "tag", "lightweight@v9.9.9", shas[0])  # GTO reads annotated tags only
    _git(repo, "tag", "-a", "release-1", "-m", "not GTO's", shas[0], when=BASE_TIME)


def _exists(repo: Path, tag: str) -> bool:
    return bool(_git(repo, "tag", "--list", tag))


def _gto_versions(repo: Path, name: str) -> list[tags.ModelVersion]:
    """gitml's registry reader as it was, through gto.api.show: the oracle."""
    import gto.api
    from gto.exceptions import ArtifactNotFound

    try:
        rows = gto.api.show(str(repo), name)
    except ArtifactNotFound:
        return []
    out = []
    for row in rows:
        if not row.get("registrations") and not row.get("stages"):
            continue
        stages = [s["stage"] for s in row.get("stages", []) if s.get("is_active")]
        out.append(tags.ModelVersion(name, row["version"], row["commit_hexsha"], stages, str(row.get("created_at", ""))))
    return sorted(out, key=lambda v: tags._semver(v.version), reverse=True)


def _gto_which(repo: Path, name: str, stage: str) -> tuple[str, str, str] | None:
    import gto.api
    from gto.exceptions import ArtifactNotFound

    try:
        found = gto.api.find_versions_in_stage(str(repo), name, stage)
    except ArtifactNotFound:
        return None
    if not found:
        return None
    vstage = found[0] if isinstance(found, list) else found
    return vstage.version, vstage.commit_hexsha, str(vstage.get_events()[0].tag)


def _history_key(events: list[dict]) -> list[tuple]:
    return sorted((str(e["timestamp"]), e["event"], e["version"] or "", e["stage"] or "", e["commit"],
                   e["author"], e["author_email"], e["message"]) for e in events)


@pytest.mark.parametrize("seed", range(16))
def test_the_one_call_reader_agrees_with_gto_on_random_histories(tmp_path, seed):
    rng = random.Random(seed)
    repo, shas = _repo(tmp_path, commits=4)
    _random_history(repo, shas, rng, n_events=rng.randint(8, 24))
    import gto.api
    from gto.exceptions import GTOException

    for name in ("churn", "fraud"):
        try:
            expected = _gto_versions(repo, name)
        except GTOException as exc:  # two versions at one commit, then a stage event there
            # GTO reads every artifact for any command, so one broken artifact breaks them all;
            # gitml reads the one asked for, and refuses only the broken one
            broken = re.search(r"artifact '([^']+)'", str(exc))
            assert broken, exc
            if broken[1] == name:
                with pytest.raises(GitmlError, match="at one commit"):
                    tags.list_versions(repo, name)
            continue
        assert tags.list_versions(repo, name) == expected, name
        for stage in STAGES:
            mine = tags.stage_version(repo, name, stage)
            assert ((mine.version, mine.commit, mine.tag) if mine else None) == _gto_which(repo, name, stage), stage
        gto_events = [dict(e) for e in gto.api.history(str(repo), name)]
        assert _history_key(tags.history(repo, name)) == _history_key(gto_events)


def test_a_registry_of_many_models_is_read_with_one_git_call(tmp_path, monkeypatch):
    repo, shas = _repo(tmp_path, commits=3)
    for i in range(40):
        _git(repo, "tag", "-a", f"m{i}@v1.0.0", "-m", "r", shas[i % 3], when=BASE_TIME + i)
        _git(repo, "tag", "-a", f"m{i}#prod#1", "-m", "a", shas[i % 3], when=BASE_TIME + i)
    calls = []
    real = subprocess.run

    def counting(args, *a, **kw):
        calls.append(args)
        return real(args, *a, **kw)

    monkeypatch.setattr(subprocess, "run", counting)
    state = read_registry(repo)
    assert len(calls) == 1 and "for-each-ref" in calls[0]
    assert sorted(state) == sorted(f"m{i}" for i in range(40))
    assert all(s.stage_holders()["prod"].version == "v1.0.0" for s in state.values())


def test_registry_commands_name_a_model_or_list_them_all(tmp_path):
    import yaml

    from gitml import api

    repo, shas = _repo(tmp_path, commits=2)
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["registry"]["model"] = "churn"
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    for name, commit in (("churn", shas[0]), ("fraud", shas[1])):
        _git(repo, "tag", "-a", f"{name}@v1.0.0", "-m", "r", commit, when=BASE_TIME)
        _git(repo, "tag", "-a", f"{name}#prod#1", "-m", "a", commit, when=BASE_TIME + 1)
    _git(repo, "tag", "-a", "fraud@v1.1.0", "-m", "r", shas[0], when=BASE_TIME + 2)

    default = api.registry_show(repo / "params.yaml", repo)
    assert "churn" in default and "fraud" not in default  # registry.model
    fraud = api.registry_show(repo / "params.yaml", repo, model="fraud").splitlines()[2:]
    assert [line.split()[:3] for line in fraud] == [["fraud", "v1.1.0", "-"], ["fraud", "v1.0.0", "prod"]]
    every = [line.split()[:2] for line in api.registry_show(repo / "params.yaml", repo, all_models=True).splitlines()[2:]]
    assert every == [["churn", "v1.0.0"], ["fraud", "v1.1.0"], ["fraud", "v1.0.0"]]
    assert api.registry_which("prod", repo / "params.yaml", repo, model="fraud") == "v1.0.0"
    assert "v1.1.0" in api.registry_history(repo / "params.yaml", repo, model="fraud")
    with pytest.raises(GitmlError, match="--model 'no#such'"):
        api.registry_show(repo / "params.yaml", repo, model="no#such")
