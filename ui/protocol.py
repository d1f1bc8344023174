"""The HTTP/1.1 protocol paperchat serves with: uvicorn's own, with a request-header size limit and a
header read timeout, both applied before any routing or authentication.

- a request head (request line and headers) over ``max_header_bytes`` gets ``431`` and the connection closes;
- a connection that has not sent a whole request head within ``header_timeout_s`` (slowloris, or an idle
  socket) is closed; body read timeouts are the gate's (:func:`paperchat.ui.bodies.read_body`).
"""

from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def _answer(status: int, reason: bytes, code: str, message: str) -> bytes:
    body = json.dumps({"error": code, "message": message}).encode()
    head = (f"HTTP/1.1 {status} ").encode() + reason + (
        f"\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()
    return head + body


class GuardedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a request-head size limit and a head read timeout (set by :func:`guarded_protocol`)."""

    max_header_bytes = 32_768
    header_timeout_s = 10.0
    _head_bytes = 0
    _head_tail = b""
    _head_timer = None

    def connection_made(self, transport):  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._head_bytes = 0
        self._head_tail = b""
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _waiting_for_head(self) -> bool:
        return self.conn.their_state is h11.IDLE

    def _too_slow(self) -> None:
        self._head_timer = None
        if self._waiting_for_head() and not self.transport.is_closing():
            if self._head_bytes:
                self.transport.write(_answer(408, b"Request Timeout", "header_timeout",
                                             f"The request headers did not arrive within {self.header_timeout_s:g} s."))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_head():
            if self._head_timer is None:
                self._arm()  # the next request on a kept-alive connection
            end = (self._head_tail + data).find(b"\r\n\r\n")  # bytes after the head are the body's
            self._head_bytes += len(data) if end < 0 else max(end + 4 - len(self._head_tail), 0)
            self._head_tail = data[-3:]
            if self._head_bytes > self.max_header_bytes:
                self._disarm()
                self.transport.write(_answer(
                    431, b"Request Header Fields Too Large", "headers_too_large",
                    f"The request headers are larger than {self.max_header_bytes:,} bytes. Send fewer or shorter headers "
                    "(clear this site's cookies if a browser sent them)."))
                self.transport.close()
                return
        super().data_received(data)
        if not self._waiting_for_head():
            self._disarm()

    def send_400_response(self, msg: str) -> None:
        """The HTTP/1.1 parser could not read the request (bad syntax, two Host headers...): say so in the error shape."""
        self._disarm()
        self.transport.write(_answer(
            400, b"Bad Request", "bad_request",
            "The request cannot be read as HTTP/1.1 (a malformed request line or header, or two Host headers). "
            "Send one well-formed request."))
        self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._waiting_for_head():
            self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)


def guarded_protocol(max_header_bytes: int, header_timeout_s: float) -> type[H11Protocol]:
    """An HTTP/1.1 protocol class enforcing these limits (uvicorn's ``http=`` option)."""
    return type("GuardedH11", (GuardedH11,), {"max_header_bytes": max_header_bytes, "header_timeout_s": header_timeout_s})
