# Over 300 lines: one REST client (pagination, retries, token redaction) and the protocol the rest of gitml sees.
"""The forge: pull requests and comments on GitHub (or GitHub Enterprise) over REST.

The rest of gitml talks to :class:`Forge` and sees only :class:`PullRequest` and
:class:`Comment`; GitHub's JSON stays in this module. The token never leaves it: it is
not in ``repr``, error messages or log lines (:mod:`gitml.gitops.tokens` guards the last).

Example:
    >>> forge = GitHubForge("acme/churn")           # token from GITML_TOKEN / GITHUB_TOKEN
    >>> pull = forge.find_open_pull("gitml/retrain/model", "main")
    >>> forge.upsert_sticky_comment(pull.number, "ci-report", "metrics table")
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import httpx

from gitml.errors import ForgeError
from gitml.gitops.tokens import register_secret

log = logging.getLogger(__name__)

DEFAULT_URL = "https://api.github.com"
TOKEN_VARS = ("GITML_TOKEN", "GITHUB_TOKEN")  # first one set wins
URL_VARS = ("GITML_FORGE_URL", "GITHUB_API_URL")  # GITHUB_API_URL: set by GitHub Actions (GHE too)
MAX_BODY = 65_000  # GitHub refuses bodies over 65,536 characters
_IDEMPOTENT = frozenset({"GET", "PATCH", "PUT", "DELETE"})
_MARKER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HINTS = {
    401: "the token was rejected: set GITML_TOKEN (or GITHUB_TOKEN) to a valid, unexpired token",
    403: "the token may not do this (it needs read/write on pull requests, issues and contents of "
         "{repo}), or a rate limit was hit",
    404: "not found: check the repository '{repo}' and the API URL {url} (GitHub Enterprise: "
         "https://HOST/api/v3); GitHub also answers 404 when the token cannot see a private repository",
    422: "GitHub refused the request as invalid (a pull request needs a head branch that exists on "
         "GitHub, differs from the base and has no open pull request yet)",
}


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str
    head: str
    base: str
    state: str
    title: str


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    url: str


@runtime_checkable
class Forge(Protocol):
    """What gitml needs from a code forge. :class:`GitHubForge` is the real one."""

    def find_open_pull(self, head_branch: str, base: str) -> PullRequest | None: ...

    def open_pull(
        self, head: str, base: str, title: str, body: str, labels: Iterable[str] = ()
    ) -> PullRequest: ...

    def update_pull(self, number: int, title: str | None = None, body: str | None = None) -> PullRequest: ...

    def comment(self, number: int, body: str) -> Comment: ...

    def list_comments(self, number: int) -> list[Comment]: ...

    def edit_comment(self, comment_id: int, body: str) -> Comment: ...

    def upsert_sticky_comment(self, number: int, marker: str, body: str) -> Comment: ...


def resolve_token(token: str | None = None) -> str:
    for candidate in (token, *(os.environ.get(name) for name in TOKEN_VARS)):
        if candidate and candidate.strip():
            return candidate.strip()
    raise ForgeError(f"No forge token: set {' or '.join(TOKEN_VARS)} (a GitHub token that may write "
                     "pull requests, issues and contents).")


def resolve_url(base_url: str | None = None) -> str:
    for candidate in (base_url, *(os.environ.get(name) for name in URL_VARS)):
        if candidate and candidate.strip():
            url = candidate.strip().rstrip("/")
            if not url.startswith(("https://", "http://")):
                raise ForgeError(f"Forge URL '{url}' must start with https:// (GitHub: {DEFAULT_URL}, "
                                 "GitHub Enterprise: https://HOST/api/v3).")
            return url
    return DEFAULT_URL


# ------------------------------------------------------------------ GitHub


class GitHubForge:
    """:class:`Forge` over GitHub's REST API (github.com or GitHub Enterprise Server).

    Args:
        repo: ``owner/name``.
        token: defaults to ``GITML_TOKEN``, then ``GITHUB_TOKEN``.
        base_url: defaults to ``GITML_FORGE_URL``, then ``GITHUB_API_URL``, then api.github.com.
        max_retries: retries of one request on 5xx (idempotent methods only), network errors
            and rate limits; waits grow exponentially from ``backoff`` seconds.
    """

    def __init__(
        self, repo: str, token: str | None = None, base_url: str | None = None, *,
        timeout: float = 30.0, max_retries: int = 3, backoff: float = 1.0,
        rate_limit_wait: float = 60.0, max_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo or ""):
            raise ForgeError(f"Repository '{repo}' is not of the form owner/name.")
        self.repo, self.owner = repo, repo.split("/")[0]
        self.base_url = resolve_url(base_url)
        secret = resolve_token(token)
        register_secret(secret)
        self.max_retries, self.backoff = max_retries, backoff
        self.rate_limit_wait, self.max_wait, self._sleep = rate_limit_wait, max_wait, sleep
        self._client = httpx.Client(
            base_url=self.base_url, timeout=timeout, follow_redirects=False,
            headers={"Authorization": f"Bearer {secret}", "Accept": "application/vnd.github+json",
                     "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "gitml"},
        )

    def __repr__(self) -> str:
        return f"GitHubForge(repo={self.repo!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> GitHubForge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------- pull requests

    def find_open_pull(self, head_branch: str, base: str) -> PullRequest | None:
        """The open pull request from ``head_branch`` (of this repository) into ``base``."""
        owner, _, branch = head_branch.rpartition(":")
        head = f"{owner or self.owner}:{branch}"
        params = {"state": "open", "head": head, "base": base, "per_page": 100}
        for item in self._paginate(f"/repos/{self.repo}/pulls", params):
            pull = _pull(item)
            if pull.head == branch and pull.base == base and pull.state == "open":
                return pull
        return None

    def open_pull(
        self, head: str, base: str, title: str, body: str, labels: Iterable[str] = ()
    ) -> PullRequest:
        data = {"title": title, "head": head, "base": base, "body": _clip(body)}
        pull = _pull(self._request("POST", f"/repos/{self.repo}/pulls", json=data).json())
        labels = [label for label in labels if label]
        if labels:
            self._request("POST", f"/repos/{self.repo}/issues/{pull.number}/labels", json={"labels": labels})
        log.info("opened pull request #%d (%s -> %s): %s", pull.number, head, base, pull.url)
        return pull

    def update_pull(self, number: int, title: str | None = None, body: str | None = None) -> PullRequest:
        data: dict[str, str] = {}
        if title is not None:
            data["title"] = title
        if body is not None:
            data["body"] = _clip(body)
        return _pull(self._request("PATCH", f"/repos/{self.repo}/pulls/{number}", json=data).json())

    # ------------------------------------------------------------- comments

    def comment(self, number: int, body: str) -> Comment:
        answer = self._request("POST", f"/repos/{self.repo}/issues/{number}/comments", json={"body": _clip(body)})
        return _comment(answer.json())

    def list_comments(self, number: int) -> list[Comment]:
        items = self._paginate(f"/repos/{self.repo}/issues/{number}/comments", {"per_page": 100})
        return [_comment(item) for item in items]

    def edit_comment(self, comment_id: int, body: str) -> Comment:
        path = f"/repos/{self.repo}/issues/comments/{comment_id}"
        return _comment(self._request("PATCH", path, json={"body": _clip(body)}).json())

    def upsert_sticky_comment(self, number: int, marker: str, body: str) -> Comment:
        """Edit the comment carrying ``<!-- gitml:{marker} -->``, or create it: never two."""
        tag = sticky_tag(marker)
        text = body if tag in body else f"{tag}\n{body}"
        for existing in self.list_comments(number):
            if tag in existing.body:
                if existing.body == _clip(text):
                    return existing
                return self.edit_comment(existing.id, text)
        return self.comment(number, text)

    # ------------------------------------------------------------- transport

    def _paginate(self, path: str, params: dict[str, Any]) -> list[Any]:
        items: list[Any] = []
        url: str | None = path
        query: dict[str, Any] | None = params
        while url:
            answer = self._request("GET", url, params=query)
            page = answer.json()
            if not isinstance(page, list):
                raise ForgeError(f"GitHub GET {answer.request.url.path} answered {type(page).__name__}, not a list.")
            items += page
            url, query = answer.links.get("next", {}).get("url"), None  # the next link carries the query
            if url and not self._same_origin(url):
                raise ForgeError(f"GitHub GET {path}: refusing to follow a pagination link off {self.base_url}.")
        return items

    def _same_origin(self, url: str) -> bool:
        theirs, ours = httpx.URL(url), httpx.URL(self.base_url)
        return (theirs.scheme, theirs.host, theirs.port) == (ours.scheme, ours.host, ours.port)

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                answer = self._client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if method in _IDEMPOTENT and attempt < self.max_retries:
                    self._wait(self.backoff * 2**attempt, f"{method} {_path(url)}: {type(exc).__name__}")
                    attempt += 1
                    continue
                raise ForgeError(f"GitHub {method} {_path(url)} failed: cannot reach {self.base_url} "
                                 f"({type(exc).__name__}: {exc}).") from None
            wait = self._retry_wait(method, answer, attempt)
            if wait is None:
                break
            self._wait(wait, f"{method} {answer.request.url.path} answered {answer.status_code}")
            attempt += 1
        if answer.status_code >= 400:
            raise self._error(method, answer)
        return answer

    def _wait(self, seconds: float, why: str) -> None:
        log.warning("forge: %s; retrying in %.1fs", why, seconds)
        self._sleep(seconds)

    def _retry_wait(self, method: str, answer: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying ``answer``, or None to stop (bounded by max_retries)."""
        status, headers = answer.status_code, answer.headers
        if attempt >= self.max_retries or status < 403:
            return None
        if status in (403, 429) and _rate_limited(answer):
            if "retry-after" in headers:
                wait = _number(headers["retry-after"])
            elif headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
                wait = _number(headers["x-ratelimit-reset"]) - time.time() + 1
            else:  # GitHub: wait at least a minute, longer each time
                wait = self.rate_limit_wait * 2**attempt
            wait = max(wait, 0.0)
            return wait if wait <= self.max_wait else None
        if status >= 500 and method in _IDEMPOTENT:
            return self.backoff * 2**attempt
        return None

    def _error(self, method: str, answer: httpx.Response) -> ForgeError:
        status, path = answer.status_code, answer.request.url.path
        reason = _github_message(answer)
        hint = _HINTS.get(status, "")
        if status in (403, 429) and _rate_limited(answer):
            hint = "rate limited by GitHub: try again later"
        hint = hint.format(repo=self.repo, url=self.base_url)
        text = f"GitHub {method} {path} failed with {status}" + (f": {reason}" if reason else "")
        return ForgeError(text + (f" ({hint})." if hint else "."), status=status)


# ------------------------------------------------------------------ helpers


def sticky_tag(marker: str) -> str:
    """The hidden HTML comment that identifies a sticky comment."""
    if not _MARKER.match(marker or ""):
        raise ForgeError(f"Sticky comment marker '{marker}' must be letters, digits, '.', '_' or '-'.")
    return f"<!-- gitml:{marker} -->"


def _pull(data: Any) -> PullRequest:
    try:
        return PullRequest(
            number=int(data["number"]), url=str(data.get("html_url") or data.get("url") or ""),
            head=str(data["head"]["ref"]), base=str(data["base"]["ref"]),
            state=str(data.get("state", "open")), title=str(data.get("title") or ""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ForgeError(f"GitHub answered a pull request without {exc}.") from None


def _comment(data: Any) -> Comment:
    try:
        return Comment(id=int(data["id"]), body=str(data.get("body") or ""),
                       url=str(data.get("html_url") or data.get("url") or ""))
    except (KeyError, TypeError, ValueError) as exc:
        raise ForgeError(f"GitHub answered a comment without {exc}.") from None


def _github_message(answer: httpx.Response) -> str:
    try:
        data = answer.json()
    except ValueError:
        return answer.text.strip()[:200]
    if not isinstance(data, dict):
        return ""
    details = [e.get("message") or " ".join(str(e.get(k, "")) for k in ("resource", "field", "code")).strip()
               for e in data.get("errors") or [] if isinstance(e, dict)]
    return "; ".join(str(part) for part in [data.get("message"), *details] if part)


def _rate_limited(answer: httpx.Response) -> bool:
    headers = answer.headers
    return ("retry-after" in headers or headers.get("x-ratelimit-remaining") == "0"
            or "rate limit" in _github_message(answer).lower())


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 60.0


def _path(url: str) -> str:
    return httpx.URL(url).path


def _clip(body: str) -> str:
    if len(body) <= MAX_BODY:
        return body
    return body[: MAX_BODY - 40] + "\n\n…(truncated by gitml)"
