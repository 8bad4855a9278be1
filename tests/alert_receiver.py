"""A webhook receiver on 127.0.0.1 for the alert tests: checks the bearer token, records what it got."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out before the answer: what the timeout tests make happen


@dataclass
class Received:
    path: str
    authorization: str
    content_type: str
    body: dict[str, Any]


@dataclass
class Receiver:
    """``with Receiver(token) as hook``: answers 401 without ``Bearer <token>`` (when a token is
    set), else the next of ``statuses`` (then 200); ``delay`` seconds before each answer."""

    token: str = ""
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)

    def __enter__(self) -> Receiver:
        receiver, pending = self, deque(self.statuses)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                got = self.headers.get("Authorization", "")
                receiver.received.append(Received(self.path, got, self.headers.get("Content-Type", ""), body))
                time.sleep(receiver.delay)
                status = 401 if receiver.token and got != f"Bearer {receiver.token}" else (
                    pending.popleft() if pending else 200)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def events(self) -> list[str]:
        return [r.body.get("event", "slack") for r in self.received]
