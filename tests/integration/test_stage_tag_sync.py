"""Taking a remote's stage-tag deletions for many models at once, on real git repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import git


@pytest.fixture
def origin_and_clone(tmp_path: Path) -> tuple[Path, Path]:
    """A bare origin holding stage tags of three models (one named like another's prefix), and a clone."""
    work, origin, clone = tmp_path / "work", tmp_path / "origin.git", tmp_path / "clone"
    git("init", "-q", "-b", "main", str(work), cwd=tmp_path)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "x", cwd=work)
    for tag in ("churn@v1.0.0", "churn#prod#1", "churn-eu#prod#1", "price#prod#1", "price#staging#2"):
        git("tag", tag, cwd=work)
    git("clone", "-q", "--bare", str(work), str(origin), cwd=tmp_path)
    git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    return origin, clone


def test_one_sync_for_many_models_deletes_only_what_the_remote_deleted(origin_and_clone, monkeypatch):
    from gitml.registry import tags

    origin, clone = origin_and_clone
    for tag in ("churn#prod#1", "churn-eu#prod#1", "price#staging#2"):
        git("tag", "-d", tag, cwd=origin)
    calls: list[str] = []
    real = tags.git
    monkeypatch.setattr(tags, "git", lambda repo, *args, **kw: calls.append(args[0]) or real(repo, *args, **kw))

    gone = tags.sync_stage_tags_of(clone, "origin", ["churn", "price"])

    assert sorted(gone) == ["churn#prod#1", "price#staging#2"]  # churn-eu is not churn, and was not asked
    left = set(git("tag", cwd=clone).stdout.split())
    assert left == {"churn@v1.0.0", "churn-eu#prod#1", "price#prod#1"}
    assert calls.count("fetch") == 1 and calls.count("ls-remote") == 1  # not one of each per model
    # The record now holds what the remote has: a later sync deletes nothing more, a new deletion is seen.
    assert tags.sync_stage_tags_of(clone, "origin", ["churn", "price"]) == []
    git("tag", "-d", "price#prod#1", cwd=origin)
    assert tags.sync_stage_tags(clone, "origin", "price") == ["price#prod#1"]
    assert tags.sync_stage_tags(clone, "origin", "churn-eu") == ["churn-eu#prod#1"]
