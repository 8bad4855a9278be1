"""Is a commit on the remote's default branch? Real git, a bare origin, no DVC (fast)."""

from __future__ import annotations

import shutil
from pathlib import Path

from gitml.registry.chain import default_branch, unreachable
from tests.conftest import git


def world(tmp_path: Path) -> tuple[Path, Path]:
    origin, clone = tmp_path / "origin.git", tmp_path / "clone"
    git("init", "-q", "--bare", "-b", "trunk", str(origin), cwd=tmp_path)
    git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    git("commit", "-q", "--allow-empty", "-m", "reviewed", cwd=clone)
    git("push", "-q", "origin", "HEAD:trunk", cwd=clone)
    return origin, clone


def head(repo: Path) -> str:
    return git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def test_a_commit_is_judged_against_the_remotes_own_default_branch(tmp_path):
    origin, clone = world(tmp_path)
    assert default_branch(clone, "origin") == "trunk"  # asked of the remote, not assumed to be main
    reviewed = head(clone)
    assert unreachable(clone, reviewed, "origin") is None

    git("checkout", "-q", "-b", "feature", cwd=clone)
    git("commit", "-q", "--allow-empty", "-m", "pushed to a side branch only", cwd=clone)
    git("push", "-q", "origin", "feature", cwd=clone)
    side = head(clone)
    assert unreachable(clone, side, "origin") == (
        f"commit {side[:10]} is not on 'origin/trunk' (the remote's default branch): "
        "push it through a reviewed pull request first")

    # Merged elsewhere: the check fetches the branch, so it sees the merge.
    other = tmp_path / "other"
    git("clone", "-q", str(origin), str(other), cwd=tmp_path)
    git("merge", "-q", "--ff-only", "origin/feature", cwd=other)
    git("push", "-q", "origin", "HEAD:trunk", cwd=other)
    assert unreachable(clone, side, "origin") is None


def test_an_unreachable_remote_is_judged_by_the_branch_as_last_fetched(tmp_path):
    origin, clone = world(tmp_path)
    reviewed = head(clone)
    assert unreachable(clone, reviewed, "origin") is None  # fetched once: origin/trunk known here
    git("commit", "-q", "--allow-empty", "-m", "local only", cwd=clone)
    local = head(clone)
    shutil.move(origin, tmp_path / "gone.git")
    assert unreachable(clone, reviewed, "origin") is None
    assert f"commit {local[:10]} is not on 'origin/trunk'" in (unreachable(clone, local, "origin") or "")

    fresh = tmp_path / "fresh"
    git("init", "-q", str(fresh), cwd=tmp_path)
    git("remote", "add", "origin", str(tmp_path / "gone.git-missing"), cwd=fresh)
    assert "cannot tell the default branch of 'origin'" in (unreachable(fresh, reviewed, "origin") or "")
