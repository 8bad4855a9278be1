"""``make loop``, continued: a canary rollout and a canary rollback, through the workflows' commands.

After the retrained version serves all traffic:

    a developer trains a new version -> promote (staging) -> a pull request writes
    deploy/<model>.yaml (`gitml deploy --canary 20`) -> merge -> traffic.yml applies it -> the
    server splits -> labelled traffic -> canary.yml (`gitml canary check`) opens a promote pull
    request -> merge -> traffic.yml -> the new version at 100%;

    then an older version, trained before the covariate shift, as canary -> canary check
    exit 1 -> rollback pull request -> merge -> traffic.yml -> back to the stable version at 100%.

The rollback goes through its pull request (canary=default); canary=auto_rollback would also
write it to the target at once (docs/delivery.md). Every weight change happens under load and
no request may fail.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitml.ci.loop import Loop

PERCENT = 20
BATCHES, BATCH_ROWS = 80, 25  # 2,000 labelled rows per check in 80 requests, ~16 of them the canary's
# (the split is per request: 20 requests of 100 rows once gave the canary 1, too few to judge)


def new_version(loop: Loop, params: list[str]) -> str:
    """A developer retrains with more epochs; merged and promoted to staging as a new version."""
    # Its pull request's CI job is the one shown for the first two pull requests: left out here to keep
    # the loop short; the promote workflow still verifies the gate before registering the version.
    loop.step("a developer trains a new version (trainer.epochs=12) on a branch and merges it "
              "(its CI job, as shown above, left out to keep the loop short)")
    loop.sh("git", "checkout", "-q", "-b", "more-epochs", "origin/main", cwd=loop.dev)
    loop.sh("gitml", "config", "compose", *params, cwd=loop.dev)
    loop.sh("dvc", "pull", "-q", "--run-cache", "--allow-missing", cwd=loop.dev)
    loop.sh("dvc", "repro", cwd=loop.dev, quiet=True)
    loop.sh("dvc", "push", "-q", "--run-cache", cwd=loop.dev)
    loop.sh("git", "add", "-A", cwd=loop.dev)
    loop.sh("git", "commit", "-q", "-m", "model: 12 epochs", cwd=loop.dev)
    loop.sh("git", "push", "-q", "origin", "more-epochs", cwd=loop.dev)
    number = loop.open_pull("more-epochs", "More epochs")
    loop.merge("more-epochs", number)
    return loop.ci_promote()


def start_canary(loop: Loop, version: str) -> None:
    """`gitml deploy --canary` on a branch, reviewed and merged, applied by traffic.yml."""
    loop.step(f"a developer proposes {version} as a {PERCENT}% canary: deploy/{loop.model}.yaml in a pull request")
    branch = f"canary-{version}"
    loop.sh("git", "fetch", "-q", "--tags", "origin", cwd=loop.dev)
    loop.sh("git", "checkout", "-q", "-B", branch, "origin/main", cwd=loop.dev)
    loop.sh("gitml", "deploy", "--target", loop.target, "--canary", str(PERCENT), "--version", version, cwd=loop.dev)
    loop.sh("git", "add", f"deploy/{loop.model}.yaml", cwd=loop.dev)
    loop.sh("git", "commit", "-q", "-m", f"{loop.model}: canary {version} at {PERCENT}%", cwd=loop.dev)
    loop.sh("git", "push", "-q", "origin", branch, cwd=loop.dev)
    number = loop.open_pull(branch, f"Canary {version} at {PERCENT}%")
    loop.merge(branch, number)


def apply_traffic(loop: Loop, expect: set[str]) -> Counter[str]:
    """traffic.yml, under load: returns the share of answers per version once ``expect`` is served."""
    loop.step(f"merged deploy/{loop.model}.yaml -> traffic workflow applies it; the server follows, under load")
    seen: Counter[str] = Counter()

    def apply() -> None:
        path = loop.job("traffic", "main")
        loop.sh("gitml", "deploy", "--target", loop.target, "--traffic", f"deploy/{loop.model}.yaml",
                "--stage", "prod", "--push", cwd=path)
        seen.update(loop.wait_split(expect))

    answered, _, failures = loop.under_load(apply)
    shares = ", ".join(f"{v} {n * 100 // max(sum(seen.values()), 1)}%" for v, n in sorted(seen.items()))
    print(f"    answers per version (x-model-version of 100 unkeyed requests): {shares}; "
          f"{answered} requests answered during the change, {len(failures)} failed")
    assert not failures, failures[:5]
    return seen


def prod_is(loop: Loop, version: str, when: str) -> None:
    """The registry's prod stage, read in a fresh clone as any job would, names ``version``."""
    prod = loop.sh("gitml", "registry", "which", "prod", cwd=loop.job("registry", "main")).stdout.strip()
    assert prod == version, f"prod is {prod}, not {version}, {when}"


def canary_check(loop: Loop, expect_exit: int) -> tuple[str, int]:
    """canary.yml: collect the logs, judge the canary, open its promote or rollback pull request."""
    loop.step("scheduled canary workflow: collect logs, `gitml canary check`, promote or rollback pull request")
    path = loop.job("canary", "main")
    loop.env["GITML_LOG_SOURCE"] = str(loop.server_logs)
    loop.sh("bash", ".github/scripts/collect-logs.sh", "logs", cwd=path)
    check = loop.sh("gitml", "canary", "check", "--log-dir", "logs", "--target", loop.target, cwd=path, check=False)
    assert check.returncode == expect_exit, f"canary check exited {check.returncode}, not {expect_exit}"
    pulls = [p for p in loop.forge.open_pulls() if p["head"]["ref"] == f"gitml/canary/{loop.model}"]
    assert len(pulls) == 1, f"expected one canary pull request, found {len(pulls)}"
    print(f"    canary pull request #{pulls[0]['number']}: {pulls[0]['title']}")
    return pulls[0]["head"]["ref"], int(pulls[0]["number"])


def play(loop: Loop, params: list[str], stable: str, older: str) -> None:
    """The rollout of a new version, then the rollback of ``older`` as canary (see the module)."""
    new = new_version(loop, params)
    start_canary(loop, new)
    split = apply_traffic(loop, {stable, new})
    loop.traffic(shift=1.5, seed=400, batches=BATCHES, batch_rows=BATCH_ROWS)
    promote = canary_check(loop, expect_exit=0)
    loop.merge(*promote)
    apply_traffic(loop, {new})
    prod_is(loop, new, "after the canary reached 100%")
    print(f"    canary {new} at {PERCENT}% ({split[new] * 100 // sum(split.values())}% of answers): "
          f"promoted to 100%, and to prod in the registry")

    start_canary(loop, older)
    apply_traffic(loop, {new, older})
    loop.traffic(shift=1.5, seed=500, batches=BATCHES, batch_rows=BATCH_ROWS)
    rollback = canary_check(loop, expect_exit=1)
    loop.merge(*rollback)
    apply_traffic(loop, {new})
    prod_is(loop, new, "after the rollback")
    print(f"    canary {older} rolled back through its pull request: {new} at 100%, still prod")
