"""Request bodies read with limits (size, time, JSON shape), and error answers in the ``{error, message}`` shape."""

from __future__ import annotations

import asyncio
import json
import re

#: Deepest JSON nesting accepted in a request body.
MAX_JSON_DEPTH = 64


def error_body(status: int, code: str, message: str, headers: dict | None = None):
    """An ASGI app answering ``{"error", "message"}`` with ``status``."""
    payload = json.dumps({"error": code, "message": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": payload})

    return app


def json_problem(body: bytes) -> str | None:
    """Why a JSON body cannot be read (not UTF-8, nested too deep, a number too long), else None."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"The request body is not UTF-8 text (byte {err.start}). Send JSON encoded as UTF-8."
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                return f"The request body nests deeper than {MAX_JSON_DEPTH} levels. Send a flat JSON object."
        elif ch in "]}":
            depth -= 1
    if re.search(r"\d{1000}", text):
        return "The request body holds a number with 1,000 digits or more. Send ordinary numbers."
    return None


async def read_body(headers, receive, limit: int, timeout: float):
    """``(body, None)``, or ``(b"", an error app)`` when the body is too large, too slow or cut off."""
    too_large = error_body(413, "too_large", f"The request body is larger than {limit:,} bytes. Send a shorter question.")
    length = headers.get(b"content-length", b"")
    if length.isdigit() and int(length) > limit:
        return b"", too_large
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.001))
        except asyncio.TimeoutError:
            return b"", error_body(408, "body_timeout", f"The request body did not arrive within {timeout:g} s. "
                                   "Send the whole body at once.", {"Connection": "close"})
        if message["type"] != "http.request":
            return b"", error_body(400, "disconnected", "The client went away before sending the whole body.")
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return b"", too_large
        if not message.get("more_body"):
            return b"".join(chunks), None


def replay(body: bytes, receive):
    """A ``receive`` that hands the app the body already read, then the connection's own messages."""
    sent = False

    async def again():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
