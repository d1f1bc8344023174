"""Every error the server sends in the ``{error, message}`` shape: a crash, a bare 500, a framework's ``{"detail"}``."""

from __future__ import annotations

import json
import logging

from .admission import BUSY_RETRY_S

log = logging.getLogger(__name__)

#: Codes and sentences for errors that reach the gate without the ``{error, message}`` shape.
ERRORS = {
    400: ("bad_request", "The request cannot be read. Send JSON like {\"question\": \"What is SPELL?\"}."),
    401: ("unauthorized", "A valid token is required."),
    403: ("forbidden", "This request is not allowed."),
    404: ("not_found", "There is nothing at this address. The API lives under /api/v1 (see /api/v1/docs)."),
    405: ("method_not_allowed", "This address does not take that method; see /api/v1/docs."),
    413: ("too_large", "The request body is too large. Send a shorter question."),
    422: ("invalid_request", "The request body is not valid. Send JSON like {\"question\": \"What is SPELL?\"}."),
    429: ("rate_limited", "Too many requests: wait a minute and try again."),
    500: ("internal", "Something went wrong on the server. Try again; if it keeps happening, run `paperchat doctor`."),
    503: ("busy", "paperchat is busy; try again in a minute."),
}


def _ours(obj) -> bool:
    """A body to pass through: ours (``{error, message}`` with a sentence) or a record (health), not a framework's."""
    if not isinstance(obj, dict) or set(obj) == {"detail"}:
        return False
    if "error" in obj and not isinstance(obj.get("message"), str):
        return False  # Gradio's {"error": <repr>} and the like
    return True


def shaped_body(status: int, body: bytes) -> tuple[bytes | None, str, str]:
    """``(body to keep, code, message)``: the body itself when it is already fine, else a code and sentence for it."""
    try:
        obj = json.loads(body) if body else None
    except ValueError:
        obj = None
    if status < 500 and _ours(obj):
        return body, "", ""
    if status >= 500 and isinstance(obj, dict) and isinstance(obj.get("message"), str) and "error" in obj \
            and set(obj) <= {"error", "message"}:
        return body, "", ""
    if status >= 500 and isinstance(obj, dict) and "status" in obj and "error" not in obj:
        return body, "", ""  # a degraded health record
    detail = obj.get("detail") if isinstance(obj, dict) else None
    code, text = ERRORS.get(status, ("error", "The request failed."))
    if status < 500 and isinstance(detail, str) and detail:
        text = detail.rstrip(".") + "."
    return None, code, text


async def run_shaped(app, scope, receive, send, extra: list[tuple[bytes, bytes]]) -> None:
    """Call ``app``, adding ``extra`` headers; error bodies not in the ``{error, message}`` shape are rewritten."""
    state: dict = {"started": False, "start": None, "chunks": []}

    async def finish(status: int, code: str, message: str, hdrs: list) -> None:
        payload = json.dumps({"error": code, "message": message}).encode()
        keep = [(k, v) for k, v in hdrs if k.lower() not in (b"content-type", b"content-length")]
        keep += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": keep})
        await send({"type": "http.response.body", "body": payload})

    async def wrapped(message):
        if message["type"] == "http.response.start":
            state["started"] = True
            hdrs = list(message.get("headers") or [])
            names = {k.lower() for k, _ in hdrs}
            hdrs += [(k, v) for k, v in extra if k not in names or k == b"set-cookie"]
            if message["status"] == 503 and b"retry-after" not in names:
                hdrs.append((b"retry-after", str(BUSY_RETRY_S).encode()))
            message = {**message, "headers": hdrs}
            ctype = next((v for k, v in hdrs if k.lower() == b"content-type"), b"").lower()
            if message["status"] >= 400 and b"html" not in ctype and b"event-stream" not in ctype:
                state["start"] = message  # hold the error body back: it may need rewriting
                return
        elif state["start"] is not None:
            state["chunks"].append(message.get("body", b""))
            if message.get("more_body"):
                return
            start, body = state["start"], b"".join(state["chunks"])
            kept, code, text = shaped_body(start["status"], body)
            if kept is not None:
                await send(start)
                await send({"type": "http.response.body", "body": kept})
            else:
                await finish(start["status"], code, text, start["headers"])
            return
        await send(message)

    try:
        await app(scope, receive, wrapped)
    except Exception:
        if state["started"]:
            raise
        log.exception("unhandled error serving %s", scope.get("path"))
        await finish(500, *ERRORS[500], list(extra))
