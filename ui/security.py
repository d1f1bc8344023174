"""Who may use a served paperchat, and how much: one ASGI gate in front of the API and the Gradio apps.

- **Credentials**: the API token (``Authorization: Bearer``) reaches everything. Pages opened
  with ``?token=`` get a *page session* cookie (signed, never the token itself) that reaches
  the pages and the Gradio apps but not ``/api/v1``. A wiki gets an *embed token*
  (``?embed=``, made by ``paperchat embed-snippet``): HMAC-signed with a key derived from the
  API token, bound to one allowed origin, with an expiry; it reaches only ``/embed/`` (the
  compact chat and its ask endpoint), never uploads nor the API.
- **CSRF**: a POST authenticated by a cookie must carry an ``Origin`` (or ``Referer``) that is
  this server or an allowed origin (for an embed session: its own origin).
- **Admission**: one rate limit per client for questions on ``/api/v1`` and Gradio's API
  routes; failed authentication is throttled; client addresses come from ``X-Forwarded-For``
  only when the peer is a configured trusted proxy; the limiter's memory is bounded.
- **Hygiene**: Host header checked in no-token mode (DNS rebinding), body size limit, JSON
  bodies checked (UTF-8, nesting, number size), unknown Gradio functions refused, every 4xx/5xx
  of our own in the ``{error, message}`` shape, ``Referrer-Policy`` and ``frame-ancestors``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

from paperchat.rag.settings import normalize_origin

API_PREFIX = "/api/v1"
#: Paths of the API that need no credential (load balancers, client generators).
PUBLIC_API = frozenset({f"{API_PREFIX}/health", f"{API_PREFIX}/openapi.json", f"{API_PREFIX}/docs"})
PAGE_COOKIE = "paperchat_session"
EMBED_COOKIE = "paperchat_embed"
#: How long a page or embed session cookie lasts.
SESSION_SECONDS = 12 * 3600
#: Most client addresses the rate limiters remember at once (oldest forgotten first).
MAX_CLIENTS = 10_000
#: Deepest JSON nesting accepted in a request body.
MAX_JSON_DEPTH = 64
#: Seconds a client is told to wait when every answer slot and queue place is taken.
BUSY_RETRY_S = 30
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_GRADIO_CALL = re.compile(r"^(?:/embed)?/gradio_api/(?:queue/join|run/[^/]+|api/[^/]+|call/(?:v2/)?[^/]+)/?$")
#: Page metadata any browser may fetch without a credential (the embed's cookie is scoped to /embed).
PUBLIC_PAGES = frozenset({"/manifest.json", "/favicon.ico"})
_UPLOAD = re.compile(r"^(?:/embed)?/gradio_api/upload")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Grant:
    """What a signed credential allows: ``kind`` is 'page' or 'embed'; ``origin`` binds an embed."""

    kind: str
    origin: str
    expires: int


class Signer:
    """Signs and checks page-session and embed credentials with a key derived from the API token.

    >>> s = Signer("s3cret")
    >>> g = s.verify(s.sign("embed", "https://wiki.example.org", 4102444800))
    >>> (g.kind, g.origin)
    ('embed', 'https://wiki.example.org')
    >>> s.verify(s.sign("embed", "https://a.example", 4102444800)[:-2] + "xx") is None
    True
    """

    def __init__(self, api_token: str):
        self._key = hmac.new(api_token.encode(), b"paperchat signed credentials v1", hashlib.sha256).digest()

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def sign(self, kind: str, origin: str, expires: int) -> str:
        payload = f"{kind}.{int(expires)}.{_b64(origin.encode())}"
        return f"pc1.{payload}.{self._mac(payload)}"

    def verify(self, value: str, now: float | None = None) -> Grant | None:
        """The grant of a valid, unexpired credential, else None."""
        parts = (value or "").split(".")
        if len(parts) != 5 or parts[0] != "pc1" or parts[1] not in ("page", "embed"):
            return None
        payload = ".".join(parts[1:4])
        if not hmac.compare_digest(self._mac(payload).encode(), parts[4].encode()):
            return None
        try:
            expires = int(parts[2])
            origin = _unb64(parts[3]).decode()
        except ValueError:
            return None
        if expires < (time.time() if now is None else now):
            return None
        return Grant(parts[1], origin, expires)


def embed_token(api_token: str, origin: str, days: float) -> str:
    """An ask-only credential for one wiki origin, valid for ``days``."""
    return Signer(api_token).sign("embed", origin, int(time.time() + days * 86400))


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds per key (sliding window), remembering at most ``max_keys`` keys."""

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = MAX_CLIENTS):
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        # keys are kept in order of last hit: drop those whose last hit left the window, then the oldest over the cap
        while self._hits:
            key, hits = next(iter(self._hits.items()))
            if now - hits[-1] < self.window and len(self._hits) <= self.max_keys:
                break
            self._hits.popitem(last=False)

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may hit again (0: it may now); records nothing."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.get(key)
            if not hits:
                return 0.0
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            return 0.0 if len(hits) < self.limit else self.window - (now - hits[0])

    def allow(self, key: str) -> float:
        """Record a hit: 0 if allowed, else seconds until the next hit would be (nothing recorded)."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return self.window - (now - hits[0])
            hits.append(now)
            self._hits.move_to_end(key)
            self._expire(now)
            return 0.0

    def __len__(self) -> int:
        return len(self._hits)


def parse_networks(values: Iterable[str]) -> list:
    """IP networks from addresses or CIDRs (raises ValueError on a bad one)."""
    return [ipaddress.ip_network(v.strip(), strict=False) for v in values]


def client_key(peer: str, forwarded_for: str, trusted: list) -> str:
    """The client's address, from ``X-Forwarded-For`` only when the peer is a trusted proxy.

    The rightmost address not itself a trusted proxy is the client; IPv6 clients are keyed by /64.

    >>> nets = parse_networks(["10.0.0.1"])
    >>> client_key("127.0.0.1", "6.6.6.6", nets), client_key("10.0.0.1", "1.2.3.4, 10.0.0.1", nets)
    ('127.0.0.1', '1.2.3.4')
    """

    def parse(text: str):
        try:
            return ipaddress.ip_address(text.strip().strip("[]"))
        except ValueError:
            return None

    def is_trusted(ip) -> bool:
        return ip is not None and any(ip in net for net in trusted)

    ip = parse(peer)
    if trusted and is_trusted(ip) and forwarded_for:
        for hop in reversed(forwarded_for.split(",")):
            hop_ip = parse(hop)
            if hop_ip is None:
                break  # a malformed hop: stop at the last address we can vouch for
            ip = hop_ip
            if not is_trusted(hop_ip):
                break
    if ip is None:
        return peer or "?"
    if ip.version == 6 and not ip.is_loopback:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class Busy(Exception):
    """Every answer slot and queue place is taken."""


class Gate:
    """The answer slots (``concurrency``) and the queue in front of them (``max_queue``), shared by API and UI."""

    def __init__(self, concurrency: int, max_queue: int):
        self.slots = threading.BoundedSemaphore(concurrency)
        self.max_queue = max_queue
        self.waiting = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        """Take a queue place; raises Busy when the queue is full."""
        with self._lock:
            if self.waiting >= self.max_queue:
                raise Busy()
            self.waiting += 1

    def leave(self) -> None:
        with self._lock:
            self.waiting -= 1

    @contextlib.contextmanager
    def exclusive(self, queue: bool = True):
        """Hold a queue place (when ``queue``) and then an answer slot, blocking until one is free."""
        if queue:
            self.enter()
        try:
            with self.slots:
                yield
        finally:
            if queue:
                self.leave()

    async def acquire_async(self) -> bool:
        """Wait for an answer slot without blocking the event loop (cancellable: the client may leave)."""
        while not self.slots.acquire(blocking=False):
            await asyncio.sleep(0.05)
        return True


def host_name(host_header: str) -> str:
    """The host of a Host header, without the port or IPv6 brackets.

    >>> host_name("[::1]:7860"), host_name("Example.org:80"), host_name("127.0.0.1")
    ('::1', 'example.org', '127.0.0.1')
    """
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1:].split("]", 1)[0]
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


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


def error_body(status: int, code: str, message: str, headers: dict | None = None):
    """An ASGI app answering ``{"error", "message"}`` with ``status``."""
    payload = json.dumps({"error": code, "message": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": payload})

    return app


def _cookies(headers: dict[bytes, bytes]) -> dict[str, str]:
    jar = SimpleCookie()
    with contextlib.suppress(Exception):
        jar.load(headers.get(b"cookie", b"").decode("latin-1"))
    return {k: m.value for k, m in jar.items()}


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
    #: ``prefix -> (fn indices, api names)`` of the Gradio apps mounted at that prefix ("" or "/embed").
    gradio_fns: Callable[[str], tuple[set[int], set[str]] | None] = lambda prefix: None


class Guard:
    """ASGI middleware: host check, credentials, CSRF, rate limits, body checks, security headers, JSON errors."""

    def __init__(self, app, config: GuardConfig):
        self.app = app
        self.c = config
        self.signer = Signer(config.api_token) if config.api_token else None
        self.limiter = RateLimiter(config.rate_limit_per_minute)
        self.failures = RateLimiter(config.auth_failures_per_minute)

    # -- helpers --------------------------------------------------------------------

    def _key(self, scope, headers) -> str:
        peer = scope["client"][0] if scope.get("client") else ""
        return client_key(peer, headers.get(b"x-forwarded-for", b"").decode("latin-1"), self.c.trusted_proxies)

    def _secure(self, scope, headers) -> bool:
        """https as the browser sees it: the scheme, or X-Forwarded-Proto from a trusted proxy."""
        if scope.get("scheme") == "https":
            return True
        peer = scope["client"][0] if scope.get("client") else ""
        proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").split(",")[0].strip().lower()
        return proto == "https" and _in(peer, self.c.trusted_proxies)

    def _same_site_origin(self, origin: str, scope, headers) -> bool:
        """Whether ``origin`` is this server as the browser addressed it (Host, or X-Forwarded-Host from a trusted proxy)."""
        hosts = [headers.get(b"host", b"").decode("latin-1")]
        peer = scope["client"][0] if scope.get("client") else ""
        if _in(peer, self.c.trusted_proxies):
            hosts.append(headers.get(b"x-forwarded-host", b"").decode("latin-1").split(",")[0])
        with contextlib.suppress(ValueError):
            parts = urlsplit(normalize_origin(origin))
            for host in (h.strip().lower() for h in hosts if h.strip()):
                if parts.netloc == host or (parts.hostname == host_name(host) and ":" not in host.lstrip("[").split("]")[-1]):
                    return True
        return False

    # -- the gate -------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        root = scope.get("root_path", "") or ""
        path = scope.get("path", "")
        if root and path.startswith(root):  # Starlette keeps the root path in ``path``: match routes without it
            path = path[len(root) :] or "/"
        method = scope.get("method", "GET")
        is_api = path == API_PREFIX or path.startswith(API_PREFIX + "/")
        key = self._key(scope, headers)

        if not self.c.api_token and host_name(headers.get(b"host", b"").decode("latin-1")) not in self.c.allowed_hosts:
            return await error_body(
                403, "host_not_allowed",
                "This paperchat answers only to the host names it was configured for. Open it as http://127.0.0.1, "
                "or add the name to PAPERCHAT_SERVER__ALLOWED_HOSTS (or set an API token).",
            )(scope, receive, send)

        cookie_auth: Grant | None = None
        embed_grant: Grant | None = None
        set_cookie: list[str] = []
        public = path in PUBLIC_API or (path in PUBLIC_PAGES and method in ("GET", "HEAD"))
        if self.c.api_token and method != "OPTIONS" and not public:
            wait = self.failures.wait(key)
            if wait:
                return await error_body(
                    429, "auth_throttled", f"Too many attempts with a wrong token: wait {wait:.0f} s and try again.",
                    {"Retry-After": int(wait) + 1},
                )(scope, receive, send)
            ok, cookie_auth, set_cookie, embed_grant = self._authenticate(scope, headers, path, is_api)
            if not ok:
                self.failures.allow(key)
                if is_api:
                    msg = "A valid API token is required: send `Authorization: Bearer <token>`."
                    return await error_body(401, "unauthorized", msg, {"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return await error_body(
                    401, "unauthorized",
                    "This paperchat needs a token: open it with ?token=<token> in the address, or embed it with "
                    "the snippet from `paperchat embed-snippet`.",
                )(scope, receive, send)
            if cookie_auth is not None and method not in ("GET", "HEAD", "OPTIONS"):
                if not self._origin_ok(scope, headers, cookie_auth):
                    return await error_body(
                        403, "cross_site",
                        "This request came from a page that is not allowed to use this paperchat (Origin check). "
                        "Embed the chat with `paperchat embed-snippet` from an allowed origin.",
                    )(scope, receive, send)

        if method == "POST" and ((is_api and path not in PUBLIC_API) or _GRADIO_CALL.match(path)):
            wait = self.limiter.allow(key)
            if wait:
                return await error_body(
                    429, "rate_limited", f"Too many questions: wait {wait:.0f} s and try again.", {"Retry-After": int(wait) + 1}
                )(scope, receive, send)

        if method in ("POST", "PUT", "PATCH"):
            body, problem = await self._read_body(headers, receive)
            if problem is not None:
                return await problem(scope, receive, send)
            checked = self._check_body(path, is_api, headers, body)
            if checked is not None:
                return await checked(scope, receive, send)
            receive = _replay(body, receive)

        extra = [(b"referrer-policy", b"no-referrer"), (b"x-content-type-options", b"nosniff")]
        if not is_api:
            # an embed credential may be framed only by the origin it was made for
            ancestors = " ".join(["'self'", *([embed_grant.origin] if embed_grant else self.c.allowed_origins)])
            extra.append((b"content-security-policy", f"frame-ancestors {ancestors}".encode()))
        extra += [(b"set-cookie", c.encode("latin-1")) for c in set_cookie]
        await self._run(scope, receive, send, extra)

    def _authenticate(self, scope, headers, path, is_api) -> tuple[bool, Grant | None, list[str], Grant | None]:
        """(allowed, the cookie grant it used if any, cookies to set, the embed grant if any)."""
        token = self.c.api_token or ""
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
            return True, None, [], None
        if is_api:
            return False, None, [], None  # the API takes the bearer token only: no cookie, no query string
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        cookies = _cookies(headers)
        root = (scope.get("root_path", "") or "").rstrip("/")
        secure = self._secure(scope, headers)
        in_embed = path == "/embed" or path.startswith("/embed/")
        given = (query.get("token") or [""])[0]
        if given and hmac.compare_digest(given.encode(), token.encode()):
            session = self.signer.sign("page", "", int(time.time()) + SESSION_SECONDS)
            return True, None, [_cookie(PAGE_COOKIE, session, f"{root}/", secure, cross_site=False)], None
        page = self.signer.verify(cookies.get(PAGE_COOKIE, ""))
        if page is not None and page.kind == "page":
            return True, page, [], None
        if not in_embed or _UPLOAD.match(path):
            return False, None, [], None
        grant = self._embed_grant((query.get("embed") or [""])[0])
        if grant is not None:
            expires = min(grant.expires, int(time.time()) + SESSION_SECONDS)
            session = self.signer.sign("embed", grant.origin, expires)
            return True, None, [_cookie(EMBED_COOKIE, session, f"{root}/embed", secure, cross_site=True)], grant
        grant = self._embed_grant(cookies.get(EMBED_COOKIE, ""))
        if grant is not None:
            return True, grant, [], grant
        return False, None, [], None

    def _embed_grant(self, value: str) -> Grant | None:
        """A valid embed credential for an origin still in the allow-list."""
        grant = self.signer.verify(value) if value else None
        if grant is None or grant.kind != "embed" or grant.origin not in self.c.allowed_origins:
            return None
        return grant

    def _origin_ok(self, scope, headers, grant: Grant) -> bool:
        origin = headers.get(b"origin", b"").decode("latin-1")
        if not origin or origin == "null":
            referer = headers.get(b"referer", b"").decode("latin-1")
            parts = urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
        if not origin:
            return False
        if self._same_site_origin(origin, scope, headers):
            return True
        with contextlib.suppress(ValueError):
            origin = normalize_origin(origin)
            if grant.kind == "embed":
                return origin == grant.origin
            return origin in self.c.allowed_origins
        return False

    async def _read_body(self, headers, receive):
        limit = self.c.max_body_bytes
        length = headers.get(b"content-length", b"")
        too_large = error_body(413, "too_large", f"The request body is larger than {limit:,} bytes. Send a shorter question.")
        if length.isdigit() and int(length) > limit:
            return b"", too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"", error_body(400, "disconnected", "The client went away before sending the whole body.")
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return b"", too_large
            if not message.get("more_body"):
                return b"".join(chunks), None

    def _check_body(self, path, is_api, headers, body: bytes):
        ctype = headers.get(b"content-type", b"").decode("latin-1").lower()
        gradio = _GRADIO_CALL.match(path)
        if not body or not (gradio or "json" in ctype):
            return None
        problem = json_problem(body)
        if problem:
            return error_body(400, "invalid_body", problem)
        if not gradio:
            return None
        try:
            obj = json.loads(body)
        except ValueError:
            return error_body(400, "invalid_body", "The request body is not valid JSON. Send a JSON object.")
        prefix = "/embed" if path.startswith("/embed/") else ""
        known = self.c.gradio_fns(prefix)
        if known is None:
            return None
        indices, names = known
        api_name = path.rstrip("/").rsplit("/", 1)[-1]
        fn_index = obj.get("fn_index") if isinstance(obj, dict) else None
        if not isinstance(obj, dict):
            return error_body(400, "invalid_body", 'The request body must be a JSON object, e.g. {"data": ["What is SPELL?"]}.')
        if fn_index is not None and (isinstance(fn_index, bool) or not isinstance(fn_index, int) or fn_index not in indices):
            return error_body(404, "unknown_function", f"There is no function {fn_index!r} here. Use the named endpoints /ask or /chat.")
        if "/queue/join" not in path and fn_index is None and api_name not in names:
            return error_body(404, "unknown_function", f"There is no endpoint named {api_name!r}. Use /ask or /chat.")
        return None

    async def _run(self, scope, receive, send, extra: list[tuple[bytes, bytes]]):
        """Call the app, adding headers; errors that are not ``{error, message}`` (a crash, a bare 500,
        a framework's ``{"detail"}``) are rewritten into that shape."""
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
                status = message["status"]
                hdrs = list(message.get("headers") or [])
                names = {k.lower() for k, _ in hdrs}
                hdrs += [(k, v) for k, v in extra if k not in names or k == b"set-cookie"]
                if status == 503 and b"retry-after" not in names:
                    hdrs.append((b"retry-after", str(BUSY_RETRY_S).encode()))
                message = {**message, "headers": hdrs}
                ctype = next((v for k, v in hdrs if k.lower() == b"content-type"), b"").lower()
                if status >= 400 and b"html" not in ctype and b"event-stream" not in ctype:
                    state["start"] = message  # hold the error body back: it may need rewriting
                    return
            elif state["start"] is not None:
                state["chunks"].append(message.get("body", b""))
                if message.get("more_body"):
                    return
                start, body = state["start"], b"".join(state["chunks"])
                status = start["status"]
                try:
                    obj = json.loads(body) if body else None
                except ValueError:
                    obj = None
                if isinstance(obj, dict) and set(obj) != {"detail"}:  # ours ({error, message}) or a record (health)
                    await send(start)
                    await send({"type": "http.response.body", "body": body})
                    return
                detail = obj.get("detail") if isinstance(obj, dict) else None
                code, text = _ERRORS.get(status, ("error", "The request failed."))
                if status < 500 and isinstance(detail, str) and detail:
                    text = detail.rstrip(".") + "."
                await finish(status, code, text, start["headers"])
                return
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        except Exception:
            if state["started"]:
                raise
            import logging

            logging.getLogger(__name__).exception("unhandled error serving %s", scope.get("path"))
            await finish(500, *_ERRORS[500], list(extra))


#: Codes and sentences for errors that reach the gate without the ``{error, message}`` shape.
_ERRORS = {
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


def _in(address: str, networks: list) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _cookie(name: str, value: str, path: str, secure: bool, cross_site: bool) -> str:
    """A session cookie: HttpOnly, scoped to ``path``; SameSite=None only for an embed over https."""
    same_site = "None" if (secure and cross_site) else "Lax"
    parts = [f"{name}={value}", f"Path={path}", f"Max-Age={SESSION_SECONDS}", "HttpOnly", f"SameSite={same_site}"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
