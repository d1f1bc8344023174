"""One process serves the chat (Gradio), a compact chat for iframes, and the JSON API.

Routes (all under ``--root-path`` when behind a proxy):

- ``/``            the chat; ``/embed/`` a compact chat for ``<iframe>`` or ``<gradio-app>``;
- ``/api/v1/ask``  POST ``{"question", "history"?}`` -> the answer record;
- ``/api/v1/ask/stream`` the same as NDJSON events (status, token, answer | error);
- ``/api/v1/papers``, ``/api/v1/health``; OpenAPI at ``/api/v1/openapi.json``, docs at ``/api/v1/docs``.

Access control: an optional token (``PAPERCHAT_API_TOKEN``-style setting
``PAPERCHAT_SERVER__API_TOKEN``) checked on the API (``Authorization: Bearer``) and on
the pages (``?token=`` once, then a cookie); a CORS allow-list that also feeds
``frame-ancestors``; a request-size limit; a per-client rate limit on the API.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from rag.errors import PaperchatError, QuestionTooLongError
from rag.pipeline import Answer, Done, Pipeline, Status, Token, check_question
from rag.retrieval import Retriever
from rag.settings import Settings

log = logging.getLogger(__name__)

COOKIE = "paperchat_token"
API_PREFIX = "/api/v1"


class AskBody(BaseModel):
    """A question, optionally with the conversation so far."""

    question: str = Field(description="The question, in plain language.", examples=["What does SPELL propose?"])
    history: list[tuple[Literal["user", "assistant"], str]] = Field(
        default_factory=list, description='Earlier turns as ["user"|"assistant", text] pairs, oldest first.', max_length=40
    )


class ErrorBody(BaseModel):
    """An error: ``message`` says what happened and how to fix it."""

    error: str
    message: str


class PaperOut(BaseModel):
    id: str
    title: str
    abstract: str
    authors: int | None = None
    date: str | None = None
    upvotes: int | None = None
    urls: list[str] = []


class Health(BaseModel):
    status: str
    backend: str
    model: str
    index: dict[str, Any]


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RateLimiter:
    """At most ``limit`` requests per ``window`` seconds per client key (sliding window)."""

    def __init__(self, limit: int, window: float = 60.0):
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        """0 if allowed, else seconds until the next request would be."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits[key]
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return self.window - (now - hits[0])
            hits.append(now)
            return 0.0


class BodyLimit:
    """ASGI middleware: 413 for request bodies over ``limit`` bytes, whether sized or chunked.

    The body is read (up to the limit) before the app sees it, then replayed.
    """

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            return await _too_large(self.limit)(scope, receive, send)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await _too_large(self.limit)(scope, receive, send)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int) -> JSONResponse:
    return _error(413, "too_large", f"The request body is larger than {limit:,} bytes. Send a shorter question.")


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def create_app(settings: Settings, pipeline: Pipeline, retriever: Retriever, *, mount_ui: bool = True) -> FastAPI:
    """The FastAPI app with the API, and the Gradio chat mounted on it."""
    server = settings.server
    token = server.api_token
    origins = list(server.allowed_origins)
    limiter = RateLimiter(server.rate_limit_per_minute)
    slots = threading.BoundedSemaphore(server.concurrency)
    waiting = {"n": 0}
    waiting_lock = threading.Lock()

    app = FastAPI(
        title="paperchat API",
        version="1",
        description="Questions answered from research-paper abstracts, with citations and a self-critique verdict.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )

    def token_ok(request: Request) -> bool:
        if not token:
            return True
        given = ""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        given = given or request.query_params.get("token", "") or request.cookies.get(COOKIE, "")
        return hmac.compare_digest(given.encode(), token.encode())

    @app.middleware("http")
    async def guard(request: Request, call_next):
        path = request.url.path
        is_api = path.startswith(API_PREFIX)
        public = path in (f"{API_PREFIX}/health", f"{API_PREFIX}/openapi.json", f"{API_PREFIX}/docs")
        if request.method != "OPTIONS" and not public and not token_ok(request):
            if is_api:
                return _error(401, "unauthorized", "A valid API token is required: send `Authorization: Bearer <token>`.",
                              {"WWW-Authenticate": "Bearer"})
            return _error(401, "unauthorized", "This paperchat needs a token: open it with ?token=<token> in the address.")
        if is_api and request.method == "POST":
            wait = limiter.allow(request.client.host if request.client else "?")  # per client address
            if wait:
                return _error(429, "rate_limited", f"Too many questions: wait {wait:.0f} s and try again.",
                              {"Retry-After": str(int(wait) + 1)})
        response = await call_next(request)
        if token and request.query_params.get("token") and token_ok(request):
            secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
            response.set_cookie(COOKIE, token, httponly=True, samesite="none" if secure else "lax", secure=secure)
        if not is_api:
            ancestors = " ".join(["'self'", *origins])
            response.headers["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        return _error(422, "invalid_request", f"The request body is not valid ({where or 'body'}: {first.get('msg', 'invalid')}). "
                      'Send JSON like {"question": "What does SPELL propose?"}.')

    app.add_middleware(BodyLimit, limit=server.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
    )

    def run_exclusive(fn):
        with waiting_lock:
            if waiting["n"] >= server.max_queue:
                raise _Busy()
            waiting["n"] += 1
        try:
            with slots:
                return fn()
        finally:
            with waiting_lock:
                waiting["n"] -= 1

    def error_response(err: PaperchatError) -> JSONResponse:
        return _error(err.http_status, err.code, str(err))

    def check_length(question: str) -> None:
        if len(question) > settings.answer.max_question_chars:
            raise QuestionTooLongError(len(question), settings.answer.max_question_chars)

    @app.post(
        f"{API_PREFIX}/ask",
        response_model=Answer,
        responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 413: {"model": ErrorBody},
                   429: {"model": ErrorBody}, 503: {"model": ErrorBody}},
        summary="Answer a question with citations and a self-critique verdict",
    )
    def ask(body: AskBody):
        try:
            check_length(body.question)
            return run_exclusive(lambda: pipeline.ask(body.question, body.history))
        except PaperchatError as err:
            return error_response(err)
        except _Busy:
            return _error(503, "busy", "paperchat is answering too many questions right now. Try again in a minute.")

    @app.post(
        f"{API_PREFIX}/ask/stream",
        summary="The same as /ask, streamed as NDJSON events",
        responses={200: {"content": {"application/x-ndjson": {}}, "description": "status, token, then answer or error events"},
                   400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 413: {"model": ErrorBody}, 429: {"model": ErrorBody}},
    )
    def ask_stream(body: AskBody):
        try:
            check_length(body.question)
            check_question(body.question, settings.answer.max_question_chars)
        except PaperchatError as err:
            return error_response(err)
        with waiting_lock:
            if waiting["n"] >= server.max_queue:
                return _error(503, "busy", "paperchat is answering too many questions right now. Try again in a minute.")
            waiting["n"] += 1

        def events() -> Iterator[bytes]:
            acquired = slots.acquire(timeout=600)
            try:
                if not acquired:
                    yield _line({"type": "error", "error": "busy", "message": "paperchat is busy; try again."})
                    return
                for event in pipeline.run(body.question, body.history):
                    if isinstance(event, Status):
                        yield _line({"type": "status", "stage": event.stage, "message": event.message})
                    elif isinstance(event, Token):
                        yield _line({"type": "token", "text": event.text})
                    elif isinstance(event, Done):
                        yield _line({"type": "answer", "answer": event.answer.model_dump(mode="json")})
            except PaperchatError as err:
                yield _line({"type": "error", "error": err.code, "message": str(err)})
            except Exception:
                log.exception("unexpected error while streaming an answer")
                yield _line({"type": "error", "error": "internal", "message": "Something went wrong; ask again."})
            finally:
                if acquired:
                    slots.release()
                with waiting_lock:
                    waiting["n"] -= 1

        return StreamingResponse(events(), media_type="application/x-ndjson")

    @app.get(f"{API_PREFIX}/papers", response_model=list[PaperOut], responses={401: {"model": ErrorBody}, 503: {"model": ErrorBody}})
    def papers():
        try:
            return [PaperOut(**p.model_dump(include=set(PaperOut.model_fields))) for p in retriever.papers()]
        except PaperchatError as err:
            return error_response(err)

    @app.get(f"{API_PREFIX}/health", response_model=Health)
    def health():
        from rag.store import status

        info = pipeline.llm.describe()
        try:
            index = status(settings, retriever.index.place)
        except PaperchatError as err:
            index = {"ready": False, "error": str(err)}
        index = {k: v for k, v in index.items() if k in ("ready", "papers", "chunks", "generation", "error")}
        ok = bool(index.get("ready"))
        return JSONResponse(
            Health(status="ok" if ok else "degraded", backend=str(info.get("backend", "")),
                   model=str(info.get("model", "")), index=index).model_dump(),
            status_code=200 if ok else 503,
        )

    gradio_js = Path(__import__("gradio").__file__).parent / "templates" / "frontend" / "gradio.js"

    @app.get("/embed/gradio.js", include_in_schema=False)
    def web_component_script():
        """Gradio's web-component loader, served locally (no CDN: works offline)."""
        return FileResponse(gradio_js, media_type="text/javascript")

    if mount_ui:
        import gradio as gr

        from .app import build_blocks, queue

        compact = queue(build_blocks(pipeline, retriever, compact=True), server.concurrency, server.max_queue)
        full = queue(build_blocks(pipeline, retriever), server.concurrency, server.max_queue)
        from .app import CSS

        gr.mount_gradio_app(app, compact, path="/embed", root_path=_join(server.root_path, "/embed"), css=CSS)
        gr.mount_gradio_app(app, full, path="", root_path=server.root_path or None, css=CSS)
    return app


class _Busy(Exception):
    pass


def _line(obj: dict) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


def _join(root: str, path: str) -> str:
    return (root.rstrip("/") + path) if root else path


def serve(settings: Settings, pipeline: Pipeline, retriever: Retriever) -> None:
    """Run the server until interrupted."""
    import uvicorn

    s = settings.server
    if not s.api_token and not _is_loopback(s.host):
        log.warning(
            "Serving on %s without an API token: anyone who can reach this address can use paperchat. "
            "Set PAPERCHAT_SERVER__API_TOKEN to require one.", s.host
        )
    app = create_app(settings, pipeline, retriever)
    shown = "127.0.0.1" if s.host in ("0.0.0.0", "::") else s.host
    print(f"paperchat is ready on http://{shown}:{s.port}{s.root_path or ''}/  (API: {s.root_path or ''}{API_PREFIX}/docs)", flush=True)
    if not s.api_token:
        print("No API token is set: bound to this machine only unless you pass --host." if _is_loopback(s.host) else "", flush=True)
    uvicorn.run(app, host=s.host, port=s.port, root_path=s.root_path, log_level="warning")
