"""A local HTTP server speaking the subset of GitHub's REST API that gitml uses.

Real sockets on 127.0.0.1, in-memory state, token checking (401 otherwise), ``head=owner:branch``
filtering, Link-header pagination with a small page size, optional check that a pull
request's head branch exists in a bare git repository, injectable failures, and a record of
every request and response (without the Authorization header, so tests can grep the rest of
the traffic for the token).
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import parse_qs, urlencode, urlsplit

HOST = "127.0.0.1"
Reply: TypeAlias = tuple[int, Any, dict[str, str]]  # status, JSON payload, response headers


@dataclass
class Exchange:
    method: str
    path: str  # with the query
    headers: dict[str, str]  # without Authorization
    body: str
    authorized: bool
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response: str = ""

    def text(self) -> str:
        return "\n".join([f"{self.method} {self.path}", json.dumps(self.headers), self.body,
                          str(self.status), json.dumps(self.response_headers), self.response])


class ForgeStub:
    """``with ForgeStub(token="t") as stub: GitHubForge("acme/app", "t", stub.url)``."""

    def __init__(self, token: str, repo: str = "acme/app", prefix: str = "", page_size: int = 2,
                 git_dir: Path | None = None):
        self.token, self.repo, self.prefix, self.page_size = token, repo, prefix.rstrip("/"), page_size
        self.owner = repo.split("/")[0]
        self.git_dir = git_dir
        self.filter_head = True  # False: ignore `head=` like a server that does not filter
        self.pulls: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, dict[str, Any]] = {}  # id -> comment (with "issue")
        self.exchanges: list[Exchange] = []
        self.failures: list[tuple[int, dict[str, str], str]] = []
        self.lock = threading.Lock()
        self._next_issue, self._next_comment = 1, 1001
        self.server = ThreadingHTTPServer((HOST, 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def root(self) -> str:
        # server_address's host is typed str | bytes; HTTPServer keeps the bound port as an int
        return f"http://{HOST}:{self.server.server_port}"

    @property
    def url(self) -> str:
        return self.root + self.prefix

    def start(self) -> ForgeStub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self) -> ForgeStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- test helpers

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None,
                  message: str = "Server Error") -> None:
        """Answer the next ``times`` requests with ``status`` (before any other check)."""
        self.failures += [(status, headers or {}, message)] * times

    def calls(self, method: str | None = None, contains: str = "") -> list[Exchange]:
        return [e for e in self.exchanges if (method is None or e.method == method) and contains in e.path]

    def traffic(self) -> str:
        """Every recorded request and response as text (Authorization header left out)."""
        return "\n".join(e.text() for e in self.exchanges)

    def open_pulls(self) -> list[dict[str, Any]]:
        return [p for p in self.pulls.values() if p["state"] == "open"]

    def comments_on(self, number: int) -> list[dict[str, Any]]:
        return [c for c in self.comments.values() if c["issue"] == number]

    # ---------------------------------------------------------------- API

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        base = f"{self.prefix}/repos/{self.repo}"
        if not path.startswith(f"{self.prefix}/repos/"):
            return 404, {"message": "Not Found"}, {}
        if not path.startswith(base + "/"):
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}
        rest = path[len(base):]
        routes: list[tuple[str, str, Callable[..., Reply]]] = [  # route(*groups, query=, body=, path=)
            ("GET", r"/pulls", self._list_pulls),
            ("POST", r"/pulls", self._create_pull),
            ("GET", r"/pulls/(\d+)", self._get_pull),
            ("PATCH", r"/pulls/(\d+)", self._update_pull),
            ("POST", r"/issues/(\d+)/labels", self._add_labels),
            ("GET", r"/issues/(\d+)/comments", self._list_comments),
            ("POST", r"/issues/(\d+)/comments", self._create_comment),
            ("PATCH", r"/issues/comments/(\d+)", self._edit_comment),
        ]
        for verb, pattern, route in routes:
            match = re.fullmatch(pattern, rest)
            if match and verb == method:
                return route(*match.groups(), query=query, body=body, path=path)
        return 404, {"message": "Not Found"}, {}

    def _page(self, items: list[Any], query: dict[str, str], path: str) -> Reply:
        size = min(int(query.get("per_page", 30)), self.page_size)
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * size: page * size]
        links = []
        last = max(1, -(-len(items) // size))
        if page < last:
            links.append(f'<{self.root}{path}?{urlencode({**query, "page": page + 1})}>; rel="next"')
            links.append(f'<{self.root}{path}?{urlencode({**query, "page": last})}>; rel="last"')
        return 200, chunk, ({"Link": ", ".join(links)} if links else {})

    def _list_pulls(self, *, query: dict[str, str], body: Any, path: str) -> Reply:
        pulls = list(self.pulls.values())
        state = query.get("state", "open")
        if state != "all":
            pulls = [p for p in pulls if p["state"] == state]
        if "head" in query and self.filter_head:  # GitHub: user:ref-name
            pulls = [p for p in pulls if p["head"]["label"] == query["head"]]
        if "base" in query:
            pulls = [p for p in pulls if p["base"]["ref"] == query["base"]]
        return self._page(pulls, query, path)

    def _create_pull(self, *, query: dict[str, str], body: Any, path: str) -> Reply:
        missing = [k for k in ("title", "head", "base") if not (body or {}).get(k)]
        if missing:
            return 422, _invalid([{"resource": "PullRequest", "field": k, "code": "missing_field"} for k in missing]), {}
        head = body["head"].split(":")[-1]
        if self.git_dir is not None and not self._branch_exists(head):
            return 422, _invalid([{"resource": "PullRequest", "field": "head", "code": "invalid"}]), {}
        label = f"{self.owner}:{head}"
        if any(p["head"]["label"] == label and p["base"]["ref"] == body["base"] for p in self.open_pulls()):
            return 422, _invalid([{"message": f"A pull request already exists for {label}."}]), {}
        number = self._issue_number()
        self.pulls[number] = {
            "number": number, "state": "open", "title": body["title"], "body": body.get("body") or "",
            "html_url": f"https://github.test/{self.repo}/pull/{number}",
            "url": f"{self.root}{self.prefix}/repos/{self.repo}/pulls/{number}",
            "head": {"ref": head, "label": label}, "base": {"ref": body["base"]}, "labels": [],
        }
        return 201, self.pulls[number], {}

    def _get_pull(self, number: str, *, query: dict[str, str], body: Any, path: str) -> Reply:
        pull = self.pulls.get(int(number))
        return (200, pull, {}) if pull else (404, {"message": "Not Found"}, {})

    def _update_pull(self, number: str, *, query: dict[str, str], body: Any, path: str) -> Reply:
        pull = self.pulls.get(int(number))
        if not pull:
            return 404, {"message": "Not Found"}, {}
        pull.update({k: v for k, v in (body or {}).items() if k in ("title", "body", "state")})
        return 200, pull, {}

    def _add_labels(self, number: str, *, query: dict[str, str], body: Any, path: str) -> Reply:
        pull = self.pulls.get(int(number))
        if not pull:
            return 404, {"message": "Not Found"}, {}
        for name in (body or {}).get("labels", []):
            if name not in [label["name"] for label in pull["labels"]]:
                pull["labels"].append({"name": name})
        return 200, pull["labels"], {}

    def _list_comments(self, number: str, *, query: dict[str, str], body: Any, path: str) -> Reply:
        if int(number) not in self.pulls:
            return 404, {"message": "Not Found"}, {}
        return self._page(self.comments_on(int(number)), query, path)

    def _create_comment(self, number: str, *, query: dict[str, str], body: Any, path: str) -> Reply:
        if int(number) not in self.pulls:
            return 404, {"message": "Not Found"}, {}
        if not (body or {}).get("body"):
            return 422, _invalid([{"resource": "IssueComment", "field": "body", "code": "missing_field"}]), {}
        cid, self._next_comment = self._next_comment, self._next_comment + 1
        self.comments[cid] = {"id": cid, "issue": int(number), "body": body["body"],
                              "html_url": f"https://github.test/{self.repo}/pull/{number}#issuecomment-{cid}"}
        return 201, self.comments[cid], {}

    def _edit_comment(self, cid: str, *, query: dict[str, str], body: Any, path: str) -> Reply:
        comment = self.comments.get(int(cid))
        if not comment:
            return 404, {"message": "Not Found"}, {}
        comment["body"] = (body or {}).get("body", comment["body"])
        return 200, comment, {}

    def _issue_number(self) -> int:
        number, self._next_issue = self._next_issue, self._next_issue + 1
        return number

    def _branch_exists(self, branch: str) -> bool:
        out = subprocess.run(["git", "-C", str(self.git_dir), "rev-parse", "--verify", "--quiet",
                              f"refs/heads/{branch}"], capture_output=True)
        return out.returncode == 0


def _invalid(errors: list[dict[str, str]]) -> dict[str, Any]:
    return {"message": "Validation Failed", "errors": errors,
            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"}


def _handler(stub: ForgeStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body in one write: no delayed-ACK stalls on keep-alive
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            auth = self.headers.get("Authorization", "")
            exchange = Exchange(
                method=self.command, path=self.path, body=raw,
                headers={k: v for k, v in self.headers.items() if k.lower() != "authorization"},
                authorized=auth in (f"Bearer {stub.token}", f"token {stub.token}"),
            )
            with stub.lock:
                stub.exchanges.append(exchange)
                if stub.failures:
                    status, headers, message = stub.failures.pop(0)
                    payload: Any = {"message": message}
                elif not exchange.authorized:
                    status, payload, headers = 401, {"message": "Bad credentials",
                                                     "documentation_url": "https://docs.github.com/rest"}, {}
                else:
                    try:
                        body = json.loads(raw) if raw else None
                    except ValueError:
                        status, payload, headers = 400, {"message": "Problems parsing JSON"}, {}
                    else:
                        status, payload, headers = stub.handle(self.command, parts.path, query, body)
                data = json.dumps(payload)
                exchange.status, exchange.response_headers, exchange.response = status, headers, data
            encoded = data.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(encoded)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(encoded)

        do_GET = do_POST = do_PATCH = _serve  # http.server dispatches on do_<METHOD>

        def log_message(self, format: str, *args: Any) -> None:  # the exchanges are the log
            pass

    return Handler
