"""uvicorn's HTTP protocol (httptools) with a deadline on the part of a request the app never sees.

uvicorn times out a connection only while it idles between requests (``timeout_keep_alive``):
once a byte arrives, nothing does, so a client that opens a connection and sends nothing,
or a header a byte at a time, holds a socket and memory for ever (3,000 such clients were
held 40 s, then as long as they liked). Here a request's line and headers must arrive
within ``serve.header_timeout_seconds`` of the connection opening or of the request's first
byte; otherwise the server answers 408 and closes. The body has its own deadline in the
app (``serve.body_timeout_seconds``, :func:`gitml.serve.app.read_body`), which can answer
it properly; and a body the app never read (it answered first) must still arrive within
the header deadline after the answer, or the connection closes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)
HEADER_TIMEOUT_ATTR = "gitml_header_timeout"  # set on the uvicorn Config, so worker processes get it too
TIMEOUT_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
               b"content-length: 23\r\nconnection: close\r\n\r\nRequest header timeout\n")


class DeadlineHttpProtocol(HttpToolsProtocol):
    """httptools' protocol, closing a connection whose request headers are late."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any):
        super().__init__(config, *args, **kwargs)
        self.header_timeout: float = getattr(config, HEADER_TIMEOUT_ATTR, 10.0)
        self.deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self.deadline is None:
            self.deadline = self.loop.call_later(self.header_timeout, self._late)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _late(self) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or (self.cycle.response_complete and not self.cycle.more_body):
            # the late request never reached the app (a late body of an answered one gets no second answer)
            self.transport.write(TIMEOUT_408)
        log.debug("closing a connection from %s: request not received within %s s <serve.header_timeout_seconds>",
                  self.client, self.header_timeout)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()  # from here the app's body deadline holds
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.cycle is not None and self.cycle.more_body and not self.transport.is_closing():
            self._arm()  # answered before its body was read: the rest of it must not trickle for ever
