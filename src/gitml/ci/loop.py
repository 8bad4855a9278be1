# Over 300 lines: the `make loop` story, one step per CI job, read top to bottom.
"""``make loop``: the whole GitOps story, played on this machine with real parts.

A bare git repository is ``origin``, a local folder is the DVC remote, a small local HTTP
server stands in for GitHub's REST API, and a real ``gitml serve`` answers traffic. Each
workflow job runs in a fresh clone with exactly the commands its ``.github/workflows``
file runs, so this exercises the code CI runs:

    pull request -> CI (report, sticky comment, gate) -> merge -> promote v1 to staging
    -> assign prod -> deploy -> the following server serves v1 -> shifted traffic with labels
    -> drift job opens a retraining PR -> CI on it -> merge -> promote v2 -> prod -> deploy
    -> the server swaps to v2 with no failed request -> registry history -> a canary rollout and a
    canary rollback (gitml.ci.loop_canary).

Run: ``python -m gitml.ci.loop --workdir .loop`` (``make loop``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gitml.config.params import load_params_or_defaults

if TYPE_CHECKING:
    from gitml.testing.forge_stub import ForgeStub

# What the project takes from the reference instance, besides its paths.external sources and
# the README of its paths.production folder (Loop.setup).
REFERENCE = ("conf", "dvc.yaml", "artifacts.yaml", ".dvcignore", ".gitignore", ".github")
PARAMS = ["data=synthetic", "data.source.synthetic.n_rows=4000", "trainer=cpu", "trainer.epochs=8",
          "serve.log_flush_seconds=0.5", "drift.window_rows=1500", "gate.thresholds=[]",
          "canary.window_rows=2000", "canary.min_rows=50", "canary.min_labels=25"]
# loop_canary: each check judges the last simulate's 2,000 rows; a request (25 rows) goes to the canary
# with probability 0.2, so of 80 requests fewer than 2 reach it with probability 3e-7
SLUG, TOKEN = "acme/model", "loop-token-not-a-secret"


class Loop:
    def __init__(self, workdir: Path, source: Path):
        self.work, self.source = workdir.resolve(), source.resolve()
        self.origin, self.remote = self.work / "origin.git", self.work / "dvc-remote"
        self.dev, self.target, self.server_logs = self.work / "dev", self.work / "deploy", self.work / "server-logs"
        self.count, self.jobs = 0, 0
        self.env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                    "DVC_NO_ANALYTICS": "1", "GITHUB_REPOSITORY": SLUG, "GITML_TOKEN": TOKEN,
                    "GIT_AUTHOR_NAME": "gitml loop", "GIT_AUTHOR_EMAIL": "loop@gitml.invalid",
                    "GIT_COMMITTER_NAME": "gitml loop", "GIT_COMMITTER_EMAIL": "loop@gitml.invalid"}
        self._forge: ForgeStub | None = None
        self.server: subprocess.Popen[str] | None = None
        self.port = 0
        self._sample: dict[str, object] | None = None
        # The loop composes conf/ without paths overrides: the reference instance's layout.
        reference = load_params_or_defaults(self.source / "params.yaml")
        self.paths, self.model = reference.paths, reference.registry.model

    # -------------------------------------------------------------- helpers
    @property
    def forge(self) -> ForgeStub:
        """The GitHub stand-in, started by :meth:`setup`."""
        if self._forge is None:
            raise RuntimeError("loop: the GitHub stand-in is not running; setup() starts it")
        return self._forge

    def step(self, title: str) -> None:
        self.count += 1
        print(f"\n==> [{self.count}] {title}", flush=True)

    def sh(self, *args: str | Path, cwd: Path, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess[str]:
        shown = " ".join(str(a) for a in args)
        print(f"    $ {shown}", flush=True)
        result = subprocess.run([str(a) for a in args], cwd=cwd, env=self.env, capture_output=True, text=True)
        if not quiet:
            for line in (result.stdout + result.stderr).strip().splitlines()[-6:]:
                print(f"      {line}")
        if check and result.returncode != 0:
            raise SystemExit(f"loop: `{shown}` failed with exit {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def job(self, name: str, ref: str) -> Path:
        """A fresh checkout, as every workflow job starts from."""
        self.jobs += 1
        path = self.work / f"job-{self.jobs:02d}-{name}"
        self.sh("git", "clone", "-q", "--branch", ref, str(self.origin), str(path), cwd=self.work)
        self.sh("git", "fetch", "-q", "--tags", "origin", cwd=path)
        return path

    # ---------------------------------------------------------------- story
    def setup(self) -> None:
        from gitml.testing.forge_stub import ForgeStub

        self.step("set up: bare origin, DVC remote, GitHub stand-in, project from the reference instance")
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.sh("git", "init", "-q", "--bare", "-b", "main", str(self.origin), cwd=self.work)
        self._forge = ForgeStub(token=TOKEN, repo=SLUG, git_dir=self.origin).start()
        self.env["GITML_FORGE_URL"] = self.forge.url
        print(f"    GitHub stand-in at {self.forge.url}, repository {SLUG}")
        self.dev.mkdir()
        self.sh("git", "init", "-q", "-b", "main", cwd=self.dev)
        self.sh("dvc", "init", "-q", cwd=self.dev)
        for name in (*REFERENCE, self.paths.external, f"{self.paths.production}/README.md"):
            src, dst = self.source / name, self.dev / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
        self.sh("dvc", "config", "core.autostage", "true", cwd=self.dev)
        self.sh("dvc", "config", "hydra.enabled", "true", cwd=self.dev)
        self.sh("dvc", "remote", "add", "-d", "storage", str(self.remote), cwd=self.dev)
        self.sh("gitml", "config", "compose", *PARAMS, cwd=self.dev)
        self.sh("git", "remote", "add", "origin", str(self.origin), cwd=self.dev)
        self.sh("git", "add", "-A", cwd=self.dev)
        self.sh("git", "commit", "-q", "-m", "project: gitml reference instance", cwd=self.dev)
        self.sh("git", "push", "-q", "origin", "main", cwd=self.dev)

    def open_pull(self, branch: str, title: str) -> int:
        from gitml.gitops.forge import GitHubForge

        with GitHubForge(SLUG, token=TOKEN, base_url=self.forge.url) as forge:
            pull = forge.open_pull(branch, "main", title, "Opened by the loop's developer.", labels=[])
        print(f"    opened pull request #{pull.number} ({branch} -> main)")
        return pull.number

    def ci_pull_request(self, branch: str, number: int) -> None:
        """ci.yml, job `pipeline`."""
        self.step(f"CI on pull request #{number} ({branch}): repro, report, sticky comment, gate")
        path = self.job("ci", branch)
        self.sh("gitml", "config", "check", cwd=path)
        self.sh("dvc", "pull", "-q", "--run-cache", "--allow-missing", cwd=path)
        self.sh("dvc", "repro", cwd=path, quiet=True)
        self.sh("dvc", "push", "-q", "--run-cache", cwd=path)
        if self.sh("git", "status", "--porcelain", "--untracked-files=no", cwd=path, quiet=True).stdout.strip():
            self.sh("git", "commit", "-q", "-am", "ci: reproduce the pipeline", cwd=path)
            self.sh("git", "push", "-q", "origin", f"HEAD:{branch}", cwd=path)
        changed = self.changed(path, "--base", "origin/main", "--merge-base")
        assert changed, "the pull request changed no model"
        # ci.yml: one comment, one section per changed model; then each one's gate.
        comment = path / "reports" / "pr-comment.md"
        sections = ["## gitml: the models this pull request changed", ""]
        for model in changed:
            report = f"reports/pr/{model}.md"
            self.sh("gitml", "report", "--base", "origin/main", "--model", model, "-o", report,
                    "--plots", f"reports/pr-plots/{model}", cwd=path)
            sections += [f"<details open><summary>model <b>{model}</b></summary>", "",
                         (path / report).read_text(), "</details>"]
        comment.write_text("\n".join(sections) + "\n")
        for _ in range(2):  # CI runs again on the next push: the comment is edited, not duplicated
            self.sh("gitml", "comment", "--pr", str(number), "--body-file", comment, "--marker", "ci-report", cwd=path)
        comments = [c for c in self.forge.comments_on(number) if "gitml:ci-report" in c["body"]]
        assert len(comments) == 1, f"expected one sticky comment on #{number}, found {len(comments)}"
        print(f"    one sticky report comment on #{number} (edited on the second run)")
        for model in changed:
            self.sh("gitml", "gate", "verify", "--model", model, cwd=path)

    def changed(self, path: Path, *args: str) -> list[str]:
        """`gitml models changed`: the models the workflows report, gate and promote."""
        return self.sh("gitml", "models", "changed", *args, cwd=path).stdout.split()

    def merge(self, branch: str, number: int) -> None:
        self.step(f"merge pull request #{number}")
        self.sh("git", "fetch", "-q", "origin", cwd=self.dev)
        self.sh("git", "checkout", "-q", "main", cwd=self.dev)
        self.sh("git", "reset", "-q", "--hard", "origin/main", cwd=self.dev)
        self.sh("git", "merge", "-q", "--no-ff", "-m", f"Merge pull request #{number} from {branch}",
                f"origin/{branch}", cwd=self.dev)
        self.sh("git", "push", "-q", "origin", "main", cwd=self.dev)
        self.forge.pulls[number]["state"] = "closed"

    def ci_promote(self) -> str:
        """promote.yml."""
        self.step("merge to main -> promote workflow: repro (run-cache), dvc push, promote to staging")
        path = self.job("promote", "main")
        self.sh("dvc", "pull", "-q", "--run-cache", "--allow-missing", cwd=path)
        self.sh("dvc", "repro", cwd=path, quiet=True)
        self.sh("git", "diff", "--exit-code", "HEAD", "--", "dvc.lock", cwd=path)
        self.sh("dvc", "push", "-q", "--run-cache", cwd=path)
        changed = self.changed(path, "--base", "HEAD^1")  # promote.yml: github.event.before is HEAD^1 here
        assert changed == [self.model], f"the merge changed {changed}, not [{self.model!r}]"
        self.sh("gitml", "gate", "verify", "--model", self.model, cwd=path)
        out = self.sh("gitml", "promote", "--model", self.model, "--stage", "staging", "--push", cwd=path).stdout
        return out.split()[1]  # "model v1.0.0 registered and assigned ..."

    def assign_prod(self, version: str) -> None:
        self.step(f"a person approves: assign prod to {version}")
        self.sh("git", "fetch", "-q", "--tags", "origin", cwd=self.dev)
        self.sh("gitml", "promote", "--stage", "prod", "--version", version, "--push", cwd=self.dev)

    def ci_deploy(self) -> str:
        """deploy.yml."""
        self.step("prod tag -> deploy workflow: fetch and verify the bundle, publish it")
        path = self.job("deploy", "main")
        tag = self.sh("git", "for-each-ref", "--sort=-creatordate", "--count=1", "--format=%(refname:short)",
                      "refs/tags/*#prod#*", cwd=path).stdout.strip()
        model = tag.split("#")[0]  # deploy.yml: the tag NAME#prod#N names the model
        version = self.sh("gitml", "registry", "which", "prod", "--model", model, cwd=path).stdout.strip()
        self.sh("gitml", "fetch", "--model", model, "--version", version, "-o", "bundle", cwd=path)
        self.sh("gitml", "deploy", "--model", model, "--bundle", "bundle", "--target", str(self.target),
                "--version", version, cwd=path)
        return version

    def start_server(self) -> None:
        self.step("start `gitml serve --deployment DIR --follow` on loopback")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        log = (self.work / "server.log").open("w")
        self.server = subprocess.Popen(
            ["gitml", "serve", "--deployment", str(self.target), "--follow", "--port", str(self.port),
             "--log-dir", str(self.server_logs)],
            cwd=self.dev, env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True,
        )
        self.wait_version(None, timeout=120)
        print(f"    serving on http://127.0.0.1:{self.port}")

    def version(self) -> str | None:
        import httpx

        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/version", timeout=2).json().get("model_version")
        except (httpx.HTTPError, ValueError):
            return None

    def wait_version(self, wanted: str | None, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server is not None and self.server.poll() is not None:
                raise SystemExit(f"loop: the server exited; see {self.work / 'server.log'}")
            current = self.version()
            if current and (wanted is None or current == wanted):
                return current
            time.sleep(0.25)
        raise SystemExit(f"loop: the server did not serve {wanted or 'a model'} within {timeout}s")

    def traffic(self, shift: float, seed: int, batches: int = 12, batch_rows: int = 100) -> None:
        kind = f"shifted by {shift} std" if shift else "unshifted"
        self.step(f"production traffic ({kind}), then its true labels as feedback")
        self.sh("gitml", "simulate", "--url", f"http://127.0.0.1:{self.port}", "--source", "synthetic",
                "--shift", str(shift), "--batches", str(batches), "--batch-rows", str(batch_rows), "--seed", str(seed),
                "--params", "params.yaml", cwd=self.dev)
        time.sleep(1.5)  # serve.log_flush_seconds=0.5: the log reaches disk

    def ci_drift(self, expect_drift: bool) -> tuple[str, int] | None:
        """drift.yml."""
        self.step("scheduled drift workflow: collect logs, drift check, retraining pull request")
        path = self.job("drift", "main")
        self.env["GITML_LOG_SOURCE"] = str(self.server_logs)
        self.sh("bash", ".github/scripts/collect-logs.sh", "logs", cwd=path)
        self.sh("gitml", "fetch", "--stage", "prod", "-o", "bundle", cwd=path)
        check = self.sh("gitml", "drift", "check", "--bundle", "bundle", "--log-dir", "logs", "--out",
                        self.paths.drift, "--plots", cwd=path, check=False)
        assert check.returncode == (1 if expect_drift else 0), f"drift check exited {check.returncode}"
        if not expect_drift:
            assert not self.forge.open_pulls(), "no drift, yet a pull request is open"
            print("    no drift: no retraining pull request")
            return None
        self.sh("gitml", "retrain-pr", "--bundle", "bundle", "--log-dir", "logs", "--report-dir",
                self.paths.drift, cwd=path)
        pulls = self.forge.open_pulls()
        assert len(pulls) == 1, f"expected exactly one open retraining pull request, found {len(pulls)}"
        number = int(pulls[0]["number"])
        comments = len(self.forge.comments_on(number))
        print(f"    one retraining pull request: #{number} ({pulls[0]['head']['ref']}), {comments} comment(s)")
        return pulls[0]["head"]["ref"], number

    def swap_under_load(self, version: str) -> None:
        self.step(f"the following server swaps to {version} under load")

        def swap() -> None:
            self.ci_deploy()
            self.wait_version(version, timeout=120)

        answered, seen, failures = self.under_load(swap)
        print(f"    {answered} requests answered during the swap, versions seen {sorted(seen)}, {len(failures)} failed")
        assert not failures, failures[:5]

    def under_load(self, action: Callable[[], None]) -> tuple[int, set[str], list[int | str]]:
        """Run ``action`` while 4 clients keep predicting; the answered count, versions seen, failures."""
        import httpx

        failures: list[int | str] = []  # status codes and transport errors
        answered, seen = 0, set()
        stop = threading.Event()

        def client() -> None:
            nonlocal answered
            sample = self.sample_row()
            with httpx.Client(timeout=10) as http:
                while not stop.is_set():
                    try:
                        r = http.post(f"http://127.0.0.1:{self.port}/invocations", json={"dataframe_records": [sample]})
                        if r.status_code != 200:
                            failures.append(r.status_code)
                        else:
                            answered += 1
                            seen.add(r.headers.get("x-model-version", ""))
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            action()
            time.sleep(1.0)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        return answered, seen - {""}, failures

    def wait_split(self, versions: set[str], timeout: float = 60) -> Counter[str]:
        """Probe with 100 unkeyed requests until exactly ``versions`` answer in two probes running; the
        second one's counts (the first that matches may have straddled the swap: its shares are not the split's)."""
        import httpx

        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=10) as http:
            row = self.sample_row()
            matched = False
            while time.monotonic() < deadline:
                seen = Counter(http.post(f"http://127.0.0.1:{self.port}/invocations",
                                         json={"dataframe_records": [row]}).headers.get("x-model-version", "")
                               for _ in range(100))
                if set(seen) == versions and matched:
                    return seen
                matched = set(seen) == versions
                if not matched:
                    time.sleep(0.5)
        raise SystemExit(f"loop: the server did not answer with exactly {sorted(versions)} within {timeout}s")

    def sample_row(self) -> dict[str, object]:
        from gitml.package.bundle import load_bundle
        from gitml.serve.deployment import read_pointer

        if self._sample is None:
            frame = load_bundle(read_pointer(self.target).path, model=False).reference()
            self._sample = {k: (v.item() if hasattr(v, "item") else v) for k, v in frame.iloc[0].items()}
        return self._sample

    def run(self) -> None:
        from gitml.ci import loop_canary

        started = time.monotonic()
        self.setup()
        try:
            self.step("a developer trains a first model on a branch and opens a pull request")
            self.sh("git", "checkout", "-q", "-b", "first-model", cwd=self.dev)
            self.sh("dvc", "repro", cwd=self.dev, quiet=True)
            self.sh("dvc", "push", "-q", "--run-cache", cwd=self.dev)
            self.sh("git", "add", "-A", cwd=self.dev)
            self.sh("git", "commit", "-q", "-m", "model: first version", cwd=self.dev)
            self.sh("git", "push", "-q", "origin", "first-model", cwd=self.dev)
            first = self.open_pull("first-model", "First model")
            self.ci_pull_request("first-model", first)
            self.merge("first-model", first)
            v1 = self.ci_promote()
            self.assign_prod(v1)
            self.ci_deploy()
            self.start_server()
            print(f"    the server answers with {self.wait_version(v1)}")
            self.traffic(shift=0.0, seed=1)
            self.ci_drift(expect_drift=False)
            self.traffic(shift=1.5, seed=100)
            opened = self.ci_drift(expect_drift=True)
            assert opened is not None
            for seed in (200, 300):  # the job runs again on its schedule: same PR, updated
                self.traffic(shift=1.5, seed=seed)
                again = self.ci_drift(expect_drift=True)
                assert again == opened, f"a second retraining pull request was opened: {again}"
            branch, retrain = opened
            updates = [c for c in self.forge.comments_on(retrain) if "gitml:ci-report" not in c["body"]]
            assert len(updates) == 2, f"expected 2 update comments on #{retrain}, found {len(updates)}"
            print(f"    still one retraining pull request (#{retrain}), updated twice with a comment each time")
            self.ci_pull_request(branch, retrain)
            self.merge(branch, retrain)
            v2 = self.ci_promote()
            self.assign_prod(v2)
            self.swap_under_load(v2)
            self.step("registry history")
            print(self.sh("gitml", "registry", "history", cwd=self.dev, quiet=True).stdout)
            print(f"    {v2} in prod, the server answers with {self.wait_version(v2)}")
            loop_canary.play(self, [p.replace("epochs=8", "epochs=12") for p in PARAMS], stable=v2, older=v1)
            print(f"loop complete in {time.monotonic() - started:.0f}s")
        finally:
            if self.server is not None:
                self.server.terminate()
                self.server.wait(timeout=30)
            if self._forge is not None:
                self._forge.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Play the whole gitml loop locally.")
    parser.add_argument("--workdir", type=Path, default=Path(".loop"), help="scratch folder (recreated)")
    parser.add_argument("--source", type=Path, default=Path("."), help="the reference instance to copy")
    args = parser.parse_args(argv)
    Loop(args.workdir, args.source).run()


if __name__ == "__main__":
    main()
