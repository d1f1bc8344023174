"""One process serves the chat (Gradio), a compact chat for iframes, and the JSON API.

Routes (all under ``--root-path`` when behind a proxy):

- ``/``            the chat; ``/embed/`` a compact chat for ``<iframe>`` or ``<gradio-app>``;
- ``/api/v1/ask``  POST ``{"question", "history"?}`` -> the answer record;
- ``/api/v1/ask/stream`` the same as NDJSON events (status, token, answer | error);
- ``/api/v1/papers``, ``/api/v1/health``; OpenAPI at ``/api/v1/openapi.json``, docs at ``/api/v1/docs``.

Access control, limits and admission live in :mod:`paperchat.ui.security` (one gate in front of
everything); this module only defines the routes and runs uvicorn.
"""

from __future__ import annotations

import asyncio
import errno
import html
import inspect
import ipaddress
import json
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from paperchat.rag.answer import Answer, Done, Status, Token
from paperchat.rag.corpus import PaperInfo
from paperchat.rag.errors import ConfigError, PaperchatError
from paperchat.rag.pipeline import Pipeline
from paperchat.rag.retrieval import Retriever
from paperchat.rag.settings import Settings

from .admission import BUSY_RETRY_S, POLL_S, Busy, Gate
from .limits import parse_networks
from .origins import LOCAL_HOSTS
from .security import API_PREFIX, ASKING_FUNCTIONS, GradioFn, Guard, GuardConfig

log = logging.getLogger(__name__)



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


class PaperOut(PaperInfo):
    """A paper as ``/papers`` lists it."""


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


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def create_app(settings: Settings, pipeline: Pipeline, retriever: Retriever, *, mount_ui: bool = True) -> FastAPI:
    """The FastAPI app with the API, and the Gradio chat mounted on it, behind the security gate."""
    server = settings.server
    gate = Gate(server.concurrency, server.max_queue)
    gradio_apps: dict[str, Any] = {}
    app = FastAPI(
        title="paperchat API",
        version="1",
        description="Questions answered from research-paper abstracts, with citations and a self-critique verdict.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # Swagger UI would load from a CDN: a local page points to the schema instead
        redoc_url=None,
    )
    app.state.gate = gate
    app.state.server_settings = server  # uvicorn_config reads the header limits from here
    _add_error_handlers(app)
    _add_gate(app, server, pipeline, gradio_apps)
    _add_answer_routes(app, pipeline, gate)
    _add_info_routes(app, settings, pipeline, retriever)
    if mount_ui:
        _mount_chats(app, server, pipeline, retriever, gate, gradio_apps)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """FastAPI's own errors (validation, 404, 405) as ``{error, message}`` sentences."""

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        return _error(422, "invalid_request", f"The request body is not valid ({where or 'body'}: {first.get('msg', 'invalid')}). "
                      'Send JSON like {"question": "What does SPELL propose?"}.')

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return _error(404, "not_found", "There is nothing at this address. The API lives under /api/v1 (see /api/v1/docs).")
        if exc.status_code == 405:
            return _error(405, "method_not_allowed", "This address does not take that method; see /api/v1/docs.")
        detail = exc.detail if isinstance(exc.detail, str) else "The request cannot be read."
        return _error(exc.status_code, "bad_request", f"{detail.rstrip('.')}. Send JSON like {{\"question\": \"What is SPELL?\"}}.")


def _describe_fn(fn) -> GradioFn:
    """What the gate needs to know of a Gradio function to check calls to it."""
    name = fn.api_name if isinstance(getattr(fn, "api_name", None), str) else None
    try:
        params = tuple(inspect.signature(fn.fn).parameters) if fn.fn else ()
    except (TypeError, ValueError):
        params = ()
    inputs = list(fn.inputs or [])
    api_inputs = sum(1 for block in inputs if not getattr(block, "skip_api", False))
    return GradioFn(name, len(inputs), api_inputs, params, asks=name in ASKING_FUNCTIONS)


def _add_gate(app: FastAPI, server, pipeline: Pipeline, gradio_apps: dict[str, Any]) -> None:
    """The security gate, and CORS outside it (so refusals carry CORS headers a page can read)."""

    cache: dict[str, dict[int, GradioFn]] = {}

    def gradio_fns(prefix: str) -> dict[int, GradioFn] | None:
        blocks = gradio_apps.get(prefix)
        if blocks is None:
            return None
        if prefix not in cache:
            cache[prefix] = {i: _describe_fn(fn) for i, fn in blocks.fns.items()}
        return cache[prefix]

    def question_problem(question) -> str | None:
        try:
            pipeline.check(question)
        except PaperchatError as err:
            return str(err)
        return None

    hosts = set(LOCAL_HOSTS) | {h.strip().lower() for h in server.allowed_hosts}
    if server.host not in ("0.0.0.0", "::", ""):
        hosts.add(server.host.strip("[]").lower())
    app.add_middleware(
        Guard,
        config=GuardConfig(
            api_token=server.api_token,
            allowed_origins=list(server.allowed_origins),
            trusted_proxies=parse_networks(server.trusted_proxies),
            allowed_hosts=hosts,
            rate_limit_per_minute=server.rate_limit_per_minute,
            auth_failures_per_minute=server.auth_failures_per_minute,
            max_body_bytes=server.max_body_bytes,
            body_timeout_s=server.body_timeout_s,
            gradio_fns=gradio_fns,
            question_problem=question_problem,
        ),
    )
    app.add_middleware(
        _ShapedCORS,
        allow_origins=list(server.allowed_origins),
        allow_credentials=True,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
    )


class _ShapedCORS(CORSMiddleware):
    """CORS whose refused preflight says why in the ``{error, message}`` shape (Starlette's is a text/plain 400)."""

    def preflight_response(self, request_headers):
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        keep = {k: v for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")}
        reason = response.body.decode("utf-8", "replace").removeprefix("Disallowed CORS ").strip()
        return _error(400, "cors_refused", f"This cross-origin request is not allowed ({reason}). Only the origins in "
                      "PAPERCHAT_SERVER__ALLOWED_ORIGINS may call paperchat from a browser, with GET or POST.", keep)


def _busy() -> JSONResponse:
    return _error(503, "busy", "paperchat is answering too many questions right now. Try again in a minute.",
                  {"Retry-After": str(BUSY_RETRY_S)})


_ERROR_RESPONSES = {code: {"model": ErrorBody} for code in (400, 401, 413, 429, 503)}


def _add_answer_routes(app: FastAPI, pipeline: Pipeline, gate: Gate) -> None:
    """``/ask`` and ``/ask/stream``: both wait for an answer slot on the event loop, never in a worker thread."""

    @app.post(f"{API_PREFIX}/ask", response_model=Answer, responses=_ERROR_RESPONSES,
              summary="Answer a question with citations and a self-critique verdict")
    async def ask(body: AskBody):
        try:
            pipeline.check(body.question)  # a bad question is refused before it waits for the model
            async with gate.admitted():
                return await anyio.to_thread.run_sync(pipeline.ask, body.question, body.history)
        except PaperchatError as err:
            return _error(err.http_status, err.code, str(err))
        except Busy:
            return _busy()

    @app.post(
        f"{API_PREFIX}/ask/stream",
        summary="The same as /ask, streamed as NDJSON events",
        responses={200: {"content": {"application/x-ndjson": {}},
                          "description": "queued (place in line) while waiting, status, token, then answer or error events"},
                   **_ERROR_RESPONSES},
    )
    async def ask_stream(body: AskBody):
        try:
            pipeline.check(body.question)
            gate.enter()
        except PaperchatError as err:
            return _error(err.http_status, err.code, str(err))
        except Busy:
            return _busy()
        return _ClosingStream(_stream_events(gate, pipeline, body), media_type="application/x-ndjson")


def _add_info_routes(app: FastAPI, settings: Settings, pipeline: Pipeline, retriever: Retriever) -> None:
    """``/papers``, ``/health``, the local docs page and the web-component script."""

    @app.get(f"{API_PREFIX}/papers", response_model=list[PaperOut], responses={401: {"model": ErrorBody}, 503: {"model": ErrorBody}})
    def papers():
        try:
            return [PaperOut(**p.info().model_dump()) for p in retriever.papers()]
        except PaperchatError as err:
            return _error(err.http_status, err.code, str(err))

    @app.get(f"{API_PREFIX}/health", response_model=Health)
    def health():
        from paperchat.rag.store import status

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

    @app.get(f"{API_PREFIX}/docs", include_in_schema=False)
    def docs(request: Request):
        """A local page about the API (Swagger UI is not installed and would come from a CDN)."""
        schema = html.escape(f"{request.scope.get('root_path', '').rstrip('/')}{API_PREFIX}/openapi.json", quote=True)
        rows = "".join(f"<li><code>{m} {API_PREFIX}{p}</code>: {d}</li>" for m, p, d in _ROUTES)
        return HTMLResponse(
            f"<!doctype html><html><head><meta charset=utf-8><title>paperchat API</title></head><body>"
            f"<h1>paperchat API</h1><ul>{rows}</ul><p>The OpenAPI schema is at <a href=\"{schema}\">{schema}</a>; "
            "load it into any OpenAPI viewer or client generator.</p></body></html>"
        )

    gradio_js = Path(__import__("gradio").__file__).parent / "templates" / "frontend" / "gradio.js"

    @app.get("/embed/gradio.js", include_in_schema=False)
    def web_component_script():
        """Gradio's web-component loader, served locally (no CDN: works offline)."""
        return FileResponse(gradio_js, media_type="text/javascript")


def _mount_chats(app: FastAPI, server, pipeline: Pipeline, retriever: Retriever, gate: Gate, gradio_apps: dict) -> None:
    """The full chat at ``/`` and the compact one at ``/embed``, sharing the gate's answer slots."""
    import gradio as gr

    from .app import CSS, build_blocks, queue

    compact = queue(build_blocks(pipeline, retriever, compact=True, gate=gate), server.concurrency, server.max_queue)
    full = queue(build_blocks(pipeline, retriever, gate=gate), server.concurrency, server.max_queue)
    gradio_apps.update({"/embed": compact, "": full})
    gr.mount_gradio_app(app, compact, path="/embed", root_path=_join(server.root_path, "/embed"), css=CSS)
    gr.mount_gradio_app(app, full, path="", root_path=server.root_path or None, css=CSS)


_ROUTES = (
    ("POST", "/ask", '{"question", "history"?} -> the answer record'),
    ("POST", "/ask/stream", "the same as NDJSON events"),
    ("GET", "/papers", "the indexed papers"),
    ("GET", "/health", "backend, model and index state (no token needed)"),
)
_END = object()


async def _stream_events(gate: Gate, pipeline: Pipeline, body: AskBody) -> AsyncIterator[bytes]:
    """NDJSON events of one answer: ``queued`` (its place in line) while it waits, then the answer's. The queue place
    (taken by the caller), the line place and the answer slot are freed as soon as the client goes away (the
    response closes this generator)."""
    try:
        with gate.turn(queue=False) as turn:
            while not turn.ready():
                if place := turn.moved():
                    yield _line({"type": "queued", "position": place.position, "ahead": place.ahead,
                                 "estimate_s": place.estimate_s, "message": place.sentence()})
                await asyncio.sleep(POLL_S)
            gen = pipeline.run(body.question, body.history)
            try:
                async for line in _answer_lines(gen):
                    yield line
            finally:
                try:
                    gen.close()  # stops the model at once
                except Exception:  # pragma: no cover - a generator that fails while closing
                    log.exception("closing an answer stream failed")
    finally:
        gate.leave()


async def _answer_lines(gen) -> AsyncIterator[bytes]:
    """The pipeline's events as NDJSON lines, each taken from the generator in a worker thread; errors as events."""
    try:
        while True:
            event = await anyio.to_thread.run_sync(next, gen, _END)
            if event is _END:
                break
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


class _ClosingStream(StreamingResponse):
    """A streaming response that closes its generator when the client disconnects (not at the next GC)."""

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()


def _line(obj: dict) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


def _join(root: str, path: str) -> str:
    return (root.rstrip("/") + path) if root else path


def uvicorn_config(app, host: str, port: int, root_path: str = "", server=None, **extra):
    """uvicorn's settings for paperchat: forwarded headers are handled by the gate (trusted proxies only);
    request heads are limited in size and read time by :mod:`paperchat.ui.protocol` (``server``: ServerSettings)."""
    import uvicorn

    from paperchat.rag.settings import ServerSettings

    from .protocol import guarded_protocol

    s = server or getattr(getattr(app, "state", None), "server_settings", None) or ServerSettings()
    return uvicorn.Config(
        app, host=host, port=port, root_path=root_path, log_level="warning", proxy_headers=False,
        server_header=False, http=guarded_protocol(s.max_header_bytes, s.header_timeout_s),
        h11_max_incomplete_event_size=s.max_header_bytes + 65_536, **extra,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a port in use is a ConfigError that says what to do."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"Port {port} on {host} is already in use by another program. "
                "Stop that program or pass another port, e.g. `paperchat serve --port 7861`."
            ) from None
        raise ConfigError(f"Cannot listen on {host}:{port} ({err.strerror or err}). Check --host and --port.") from None
    sock.set_inheritable(True)
    return sock


def ready_line(s) -> str:
    """What ``serve`` prints once the port is bound: the address to open (IPv6 in brackets).

    >>> from paperchat.rag.settings import ServerSettings
    >>> ready_line(ServerSettings(host="::ffff:127.0.0.1", port=7860)).split()[4]
    'http://[::ffff:127.0.0.1]:7860/'
    """
    shown = "127.0.0.1" if s.host in ("0.0.0.0", "::") else s.host.strip("[]")
    shown = f"[{shown}]" if ":" in shown else shown
    return f"paperchat is ready on http://{shown}:{s.port}{s.root_path or ''}/  (API: {s.root_path or ''}{API_PREFIX}/docs)"


def serve(settings: Settings, pipeline: Pipeline, retriever: Retriever) -> None:
    """Run the server until interrupted; says it is ready only once the port is bound."""
    import uvicorn

    s = settings.server
    if not s.api_token and not _is_loopback(s.host):
        log.warning(
            "Serving on %s without an API token: anyone who can reach this address can use paperchat. "
            "Set PAPERCHAT_SERVER__API_TOKEN to require one.", s.host
        )
    sock = bind(s.host, s.port)
    app = create_app(settings, pipeline, retriever)
    print(ready_line(s), flush=True)
    if not s.api_token and _is_loopback(s.host):
        print("No API token is set: bound to this machine only unless you pass --host.", flush=True)
    uvicorn.Server(uvicorn_config(app, s.host, s.port, s.root_path, server=s)).run(sockets=[sock])
