"""Who may use a served paperchat, and how much: one ASGI gate in front of the API and the Gradio apps.

The gate composes small parts: :mod:`.signing` (credentials), :mod:`.limits` (rate limits and
client keys), :mod:`.origins` (Host, Origin/CSRF, cookies, forwarded headers), :mod:`.bodies`
(body size, time and JSON checks) and :mod:`.shaping` (every error as ``{error, message}``).
Header size and header read time are limited earlier, in :mod:`.protocol`; answer slots in :mod:`.admission`.

- **Credentials**: the API token (``Authorization: Bearer``) reaches everything. Pages opened
  with ``?token=`` get a *page session* cookie (signed, never the token itself) that reaches
  the pages and the Gradio apps but not ``/api/v1``. A wiki gets an *embed credential*
  (``?embed=``, from ``paperchat embed-snippet``): signed, bound to one allowed origin, with an
  expiry; it reaches only what the compact chat under ``/embed/`` needs.
- **Failures**: only a wrong API token counts against a client (a missing credential does not;
  signed credentials cannot be guessed); a throttled client still gets in with a signed credential.
- **CSRF**: a browser POST (one with an ``Origin`` or ``Referer``) must come from this server or an allowed
  origin (an embed session: its own); with a cookie the Origin is required. Uploads are refused: the chat takes no files.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from .admission import BUSY_RETRY_S, Busy, Gate  # noqa: F401 (re-exported)
from .bodies import error_body, json_problem, read_body, replay  # noqa: F401 (json_problem re-exported)
from .limits import MAX_CLIENTS, RateLimiter, client_key, parse_networks  # noqa: F401 (re-exported)
from .origins import (LOCAL_HOSTS, SESSION_SECONDS, cookies, drop_untrusted_forwarding, host_name, is_secure,  # noqa: F401
                      origin_ok, session_cookie)
from .shaping import run_shaped
from .signing import Grant, Signer, embed_token  # noqa: F401 (re-exported)

API_PREFIX = "/api/v1"
#: Paths of the API that need no credential (load balancers, client generators).
PUBLIC_API = frozenset({f"{API_PREFIX}/health", f"{API_PREFIX}/openapi.json", f"{API_PREFIX}/docs"})
#: Files any browser may fetch without a credential: page metadata, and the web-component loader a wiki's
#: ``<script>`` tag fetches before any credential can be sent.
PUBLIC_PAGES = frozenset({"/manifest.json", "/favicon.ico", "/embed/gradio.js"})
#: The Gradio functions (api names, see :mod:`.app`) whose first input is a question.
ASKING_FUNCTIONS = frozenset({"ask", "chat"})
PAGE_COOKIE = "paperchat_session"
EMBED_COOKIE = "paperchat_embed"
_GRADIO_CALL = re.compile(r"^(?:/embed)?/gradio_api/(?:queue/join|run/[^/]+|api/[^/]+|call/(?:v2/)?[^/]+)/?$")
_UPLOAD = re.compile(r"^(?:/embed)?/gradio_api/upload")
#: Gradio routes this app never needs (no component has server functions; no streams of media).
_GRADIO_UNUSED = re.compile(r"^(?:/embed)?/gradio_api/(?:component_server|stream/|process_recording|vibe-|undo-vibe-)")
#: What the compact chat needs, and so all an embed credential reaches (no monitoring, queue status, files).
_EMBED_REACH = re.compile(
    r"^/embed(?:/|/config/?|/theme\.css|/robots\.txt|/favicon\.ico|/manifest\.json|/pwa_icon(?:/\d+)?|/gradio\.js"
    r"|/(?:assets|static|svelte)/[^?#]*|/gradio_api/(?:info/?|theme\.css|heartbeat/[^/]+|queue/(?:join|data)"
    r"|call/(?:v2/)?[^/]+(?:/[^/]+)?/?|run/[^/]+/?|api/[^/]+/?|cancel|reset/?|startup-events))?$"
)


@dataclass(frozen=True)
class GradioFn:
    """A function of a mounted Gradio app, as the gate checks calls to it."""

    name: str | None  # its api_name, None when it has none
    inputs: int  # how many values ``data`` carries (all inputs)
    api_inputs: int  # ... or only those the API shows
    params: tuple[str, ...]  # parameter names, for /call/v2 keyword calls
    asks: bool  # its first input is a question


@dataclass
class GuardConfig:
    """What the guard needs from the server settings."""

    api_token: str | None
    allowed_origins: list[str]
    trusted_proxies: list
    allowed_hosts: set[str]
    rate_limit_per_minute: int
    auth_failures_per_minute: int
    max_body_bytes: int
    body_timeout_s: float = 30.0
    #: ``prefix -> {fn index: GradioFn}`` of the Gradio app mounted at that prefix ("" or "/embed"), None if none.
    gradio_fns: Callable[[str], dict[int, GradioFn] | None] = lambda prefix: None
    #: Why a question would be refused (the pipeline's sentence), else None: checked before it queues.
    question_problem: Callable[[object], str | None] = lambda question: None


@dataclass
class Auth:
    """The outcome of reading a request's credentials."""

    ok: bool = False
    cookie: Grant | None = None  # the session cookie's grant, when a cookie is what let it in
    embed: Grant | None = None  # the embed grant, when the request runs as an embedded chat
    set_cookie: list[str] = field(default_factory=list)
    token_tried: bool = False  # an API token was presented (bearer or ?token=), right or wrong
    token_ok: bool = False


def _refuse(status: int, code: str, message: str, headers: dict | None = None):
    return error_body(status, code, message, headers)


class Guard:
    """ASGI middleware: host check, credentials, CSRF, rate limits, body checks, security headers, JSON errors."""

    def __init__(self, app, config: GuardConfig):
        self.app = app
        self.c = config
        self.signer = Signer(config.api_token) if config.api_token else None
        self.limiter = RateLimiter(config.rate_limit_per_minute)
        self.failures = RateLimiter(config.auth_failures_per_minute)

    def _key(self, scope, headers) -> str:
        peer = scope["client"][0] if scope.get("client") else ""
        return client_key(peer, headers.get(b"x-forwarded-for", b"").decode("latin-1"), self.c.trusted_proxies)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        drop_untrusted_forwarding(scope, self.c.trusted_proxies)
        raw = scope.get("headers") or []
        headers = dict(raw)
        root = scope.get("root_path", "") or ""
        path = scope.get("path", "")
        if root and path.startswith(root):  # Starlette keeps the root path in ``path``: match routes without it
            path = path[len(root) :] or "/"
        method = scope.get("method", "GET")
        is_api = path == API_PREFIX or path.startswith(API_PREFIX + "/")
        key = self._key(scope, headers)

        refusal = self._host_refusal(raw, headers)
        auth = Auth(ok=True)
        if refusal is None:
            auth, refusal = self._credentials(scope, headers, path, method, is_api, key)
        if refusal is None:
            refusal = self._request_refusal(scope, headers, path, method, is_api, auth)
        if refusal is None and method == "POST" and ((is_api and path not in PUBLIC_API) or _GRADIO_CALL.match(path)):
            wait = self.limiter.allow(key)
            if wait:
                refusal = _refuse(429, "rate_limited", f"Too many questions: wait {wait:.0f} s and try again.",
                                  {"Retry-After": int(wait) + 1})
        if refusal is None and method in ("POST", "PUT", "PATCH"):
            body, refusal = await read_body(headers, receive, self.c.max_body_bytes, self.c.body_timeout_s)
            refusal = refusal or self._check_body(path, headers, body)
            receive = replay(body, receive)
        if refusal is not None:
            return await refusal(scope, receive, send)
        await run_shaped(self.app, scope, receive, send, self._extra_headers(is_api, auth))

    def _extra_headers(self, is_api: bool, auth: Auth) -> list[tuple[bytes, bytes]]:
        extra = [(b"referrer-policy", b"no-referrer"), (b"x-content-type-options", b"nosniff")]
        if not is_api:
            # an embed credential may be framed only by the origin it was made for
            ancestors = " ".join(["'self'", *([auth.embed.origin] if auth.embed else self.c.allowed_origins)])
            extra.append((b"content-security-policy", f"frame-ancestors {ancestors}".encode()))
        return extra + [(b"set-cookie", c.encode("latin-1")) for c in auth.set_cookie]

    def _host_refusal(self, raw, headers):
        """Two Host headers (ambiguous), or, without a token, a host name not configured (DNS rebinding)."""
        if sum(1 for k, _ in raw if k.lower() == b"host") > 1:
            return _refuse(400, "duplicate_host", "The request has more than one Host header. Send exactly one.")
        if not self.c.api_token and host_name(headers.get(b"host", b"").decode("latin-1")) not in self.c.allowed_hosts:
            return _refuse(
                403, "host_not_allowed",
                "This paperchat answers only to the host names it was configured for. Open it as http://127.0.0.1, "
                "or add the name to PAPERCHAT_SERVER__ALLOWED_HOSTS (or set an API token).",
            )
        return None

    def _credentials(self, scope, headers, path, method, is_api, key):
        """``(auth, refusal)``: who the request is, or why it is refused (401, 429 for a throttled token guesser)."""
        public = path in PUBLIC_API or (path in PUBLIC_PAGES and method in ("GET", "HEAD"))
        if not self.c.api_token or method == "OPTIONS" or public:
            return Auth(ok=True), None
        auth = self._authenticate(scope, headers, path, is_api)
        if auth.token_tried:  # only guesses of the API token are throttled: a signed credential cannot be guessed
            wait = self.failures.wait(key)
            if wait:
                return auth, _refuse(429, "auth_throttled",
                                     f"Too many attempts with a wrong token: wait {wait:.0f} s and try again.",
                                     {"Retry-After": int(wait) + 1})
            if not auth.token_ok and not auth.ok:
                self.failures.allow(key)
        if auth.ok:
            return auth, None
        if is_api:
            msg = "A valid API token is required: send `Authorization: Bearer <token>`."
            return auth, _refuse(401, "unauthorized", msg, {"WWW-Authenticate": "Bearer"})
        return auth, _refuse(
            401, "unauthorized",
            "This paperchat needs a token: open it with ?token=<token> in the address, or embed it with "
            "the snippet from `paperchat embed-snippet`.",
        )

    def _request_refusal(self, scope, headers, path, method, is_api, auth: Auth):
        """What a let-in request may still not do: leave the embed's reach, upload, or POST cross-site."""
        if auth.embed is not None and not _EMBED_REACH.match(path):
            return _refuse(403, "embed_scope", "The embed credential reaches only the embedded chat. "
                           "Open the full chat with the server's token.")
        if _UPLOAD.match(path):
            return _refuse(403, "uploads_disabled", "This paperchat takes no files: ask your question as text.")
        if _GRADIO_UNUSED.match(path):
            return _refuse(404, "not_found", "There is nothing at this address. Ask with /gradio_api/call/ask or /api/v1/ask.")
        if method in ("GET", "HEAD", "OPTIONS") or is_api and auth.cookie is None:
            return None
        cookie_session = auth.cookie is not None
        if not origin_ok(scope, headers, auth.cookie, self.c.allowed_origins, self.c.trusted_proxies,
                         required=cookie_session):
            return _refuse(
                403, "cross_site",
                "This request came from a page that is not allowed to use this paperchat (Origin check). "
                "Embed the chat with `paperchat embed-snippet` from an allowed origin.",
            )
        return None

    def _authenticate(self, scope, headers, path, is_api) -> Auth:
        """Read the bearer token, ``?token=``, the page session cookie, then (under /embed) the embed credential."""
        token = self.c.api_token or ""
        bearer = headers.get(b"authorization", b"").decode("latin-1")
        if bearer.lower().startswith("bearer "):
            ok = hmac.compare_digest(bearer[7:].strip().encode(), token.encode())
            if ok or is_api:
                return Auth(ok=ok, token_tried=True, token_ok=ok)
        if is_api:
            return Auth()  # the API takes the bearer token only: no cookie, no query string
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        jar = cookies(headers)
        root = (scope.get("root_path", "") or "").rstrip("/")
        secure = is_secure(scope, headers, self.c.trusted_proxies)
        given = (query.get("token") or [""])[0]
        if given:
            if not hmac.compare_digest(given.encode(), token.encode()):
                return Auth(token_tried=True)
            session = self.signer.sign("page", "", int(time.time()) + SESSION_SECONDS)
            return Auth(ok=True, token_tried=True, token_ok=True,
                        set_cookie=[session_cookie(PAGE_COOKIE, session, f"{root}/", secure, cross_site=False)])
        page = self.signer.verify(jar.get(PAGE_COOKIE, ""))
        if page is not None and page.kind == "page":
            return Auth(ok=True, cookie=page)
        if not (path == "/embed" or path.startswith("/embed/")):
            return Auth()
        grant = self._embed_grant((query.get("embed") or [""])[0])
        if grant is not None:
            expires = min(grant.expires, int(time.time()) + SESSION_SECONDS)
            session = self.signer.sign("embed", grant.origin, expires)
            return Auth(ok=True, embed=grant,
                        set_cookie=[session_cookie(EMBED_COOKIE, session, f"{root}/embed", secure, cross_site=True)])
        grant = self._embed_grant(jar.get(EMBED_COOKIE, ""))
        return Auth(ok=True, cookie=grant, embed=grant) if grant is not None else Auth()

    def _embed_grant(self, value: str) -> Grant | None:
        """A valid embed credential for an origin still in the allow-list."""
        grant = self.signer.verify(value) if value else None
        if grant is None or grant.kind != "embed" or grant.origin not in self.c.allowed_origins:
            return None
        return grant

    def _check_body(self, path, headers, body: bytes):
        """A JSON body that cannot be read, or a Gradio call to a function that does not exist: the refusal, else None."""
        ctype = headers.get(b"content-type", b"").decode("latin-1").lower()
        gradio = _GRADIO_CALL.match(path)
        if not body or not (gradio or "json" in ctype):
            return None
        problem = json_problem(body)
        if problem:
            return _refuse(400, "invalid_body", problem)
        if not gradio:
            return None
        import json

        try:
            obj = json.loads(body)
        except ValueError:
            return _refuse(400, "invalid_body", "The request body is not valid JSON. Send a JSON object.")
        if not isinstance(obj, dict):
            return _refuse(400, "invalid_body", 'The request body must be a JSON object, e.g. {"data": ["What is SPELL?"]}.')
        fns = self.c.gradio_fns("/embed" if path.startswith("/embed/") else "")
        if fns is None:
            return None
        problem = _gradio_call_problem(path, obj, fns)
        if problem is None:
            question = _question_of(path, obj, fns)
            problem = self.c.question_problem(question) if question is not None else None
            return _refuse(400, "invalid_question", problem) if problem else None
        return _refuse(*problem)


def _target(path: str, obj: dict, fns: dict[int, GradioFn]) -> GradioFn | None:
    """The function a Gradio call names, by ``fn_index`` or by the api name in its path."""
    fn_index = obj.get("fn_index")
    if fn_index is not None:
        return fns.get(fn_index) if isinstance(fn_index, int) and not isinstance(fn_index, bool) else None
    api_name = path.rstrip("/").rsplit("/", 1)[-1]
    return next((fn for fn in fns.values() if fn.name == api_name), None)


def _gradio_call_problem(path: str, obj: dict, fns: dict[int, GradioFn]) -> tuple[int, str, str] | None:
    """``(status, code, sentence)`` for a call to a Gradio function that does not exist, or with the wrong inputs."""
    fn = _target(path, obj, fns)
    if fn is None:
        if obj.get("fn_index") is not None:
            return 404, "unknown_function", f"There is no function {obj.get('fn_index')!r} here. Use the named endpoints /ask or /chat."
        return 404, "unknown_function", f"There is no endpoint named {path.rstrip('/').rsplit('/', 1)[-1]!r}. Use /ask or /chat."
    example = 'e.g. {"data": ["What is SPELL?"]}' if fn.inputs == 1 else f"one value for each of {', '.join(fn.params)}"
    if "/call/v2/" in path:
        unknown = sorted(set(obj) - set(fn.params) - {"oauth_token"})
        if unknown or (fn.asks and not isinstance(obj.get(fn.params[0] if fn.params else ""), str)):
            names = ", ".join(fn.params)
            return 400, "invalid_body", f"/call/v2/{fn.name} takes the keyword inputs {names}; the first is the question as text."
        return None
    data = obj.get("data")
    if not isinstance(data, list) or len(data) not in (fn.inputs, fn.api_inputs):
        return 400, "invalid_body", f'"data" must be a list with {fn.inputs} value(s): {example}.'
    if fn.asks and not isinstance(data[0], str):
        return 400, "invalid_body", 'Send the question as text, the first item of "data": {"data": ["What is SPELL?"]}.'
    return None


def _question_of(path: str, obj: dict, fns: dict[int, GradioFn]):
    """The question a valid call to an asking function carries, else None."""
    fn = _target(path, obj, fns)
    if fn is None or not fn.asks:
        return None
    if "/call/v2/" in path:
        return obj.get(fn.params[0]) if fn.params else None
    return obj["data"][0]
