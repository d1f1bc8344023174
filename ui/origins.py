"""Where a request comes from: Host checks, Origin/Referer (CSRF) checks, session cookies, forwarded headers."""

from __future__ import annotations

import contextlib
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from paperchat.rag.settings import normalize_origin

from .limits import is_trusted
from .signing import Grant

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: How long a page or embed session cookie lasts.
SESSION_SECONDS = 12 * 3600
#: Headers a proxy sets to say how the browser addressed it: believed only from a trusted proxy.
FORWARDED = frozenset({b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-port",
                       b"x-forwarded-prefix", b"x-real-ip", b"forwarded"})


def host_name(host_header: str) -> str:
    """The host of a Host header, without the port or IPv6 brackets.

    >>> host_name("[::1]:7860"), host_name("Example.org:80"), host_name("127.0.0.1")
    ('::1', 'example.org', '127.0.0.1')
    """
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1:].split("]", 1)[0]
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def peer_of(scope) -> str:
    return scope["client"][0] if scope.get("client") else ""


def drop_untrusted_forwarding(scope, trusted: list) -> None:
    """Remove forwarded headers from ``scope`` unless the peer is a trusted proxy (Gradio reads them for its root URL)."""
    if is_trusted(peer_of(scope), trusted):
        return
    headers = scope.get("headers") or []
    if any(k.lower() in FORWARDED for k, _ in headers):
        scope["headers"] = [(k, v) for k, v in headers if k.lower() not in FORWARDED]


def cookies(headers: dict[bytes, bytes]) -> dict[str, str]:
    jar = SimpleCookie()
    with contextlib.suppress(Exception):
        jar.load(headers.get(b"cookie", b"").decode("latin-1"))
    return {k: m.value for k, m in jar.items()}


def session_cookie(name: str, value: str, path: str, secure: bool, cross_site: bool) -> str:
    """A session cookie: HttpOnly, scoped to ``path``; SameSite=None only for an embed over https."""
    same_site = "None" if (secure and cross_site) else "Lax"
    parts = [f"{name}={value}", f"Path={path}", f"Max-Age={SESSION_SECONDS}", "HttpOnly", f"SameSite={same_site}"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def is_secure(scope, headers, trusted: list) -> bool:
    """https as the browser sees it: the scheme, or X-Forwarded-Proto from a trusted proxy."""
    if scope.get("scheme") == "https":
        return True
    proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").split(",")[0].strip().lower()
    return proto == "https" and is_trusted(peer_of(scope), trusted)


def same_site_origin(origin: str, scope, headers, trusted: list) -> bool:
    """Whether ``origin`` is this server as the browser addressed it (Host, or X-Forwarded-Host from a trusted proxy)."""
    hosts = [headers.get(b"host", b"").decode("latin-1")]
    if is_trusted(peer_of(scope), trusted):
        hosts.append(headers.get(b"x-forwarded-host", b"").decode("latin-1").split(",")[0])
    with contextlib.suppress(ValueError):
        parts = urlsplit(normalize_origin(origin))
        for host in (h.strip().lower() for h in hosts if h.strip()):
            if parts.netloc == host or (parts.hostname == host_name(host) and ":" not in host.lstrip("[").split("]")[-1]):
                return True
    return False


def request_origin(headers) -> str:
    """The page a request came from: ``Origin``, else the scheme and host of ``Referer``; '' when neither."""
    origin = headers.get(b"origin", b"").decode("latin-1")
    if not origin or origin == "null":
        parts = urlsplit(headers.get(b"referer", b"").decode("latin-1"))
        origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return origin


def origin_ok(scope, headers, grant: Grant | None, allowed: list[str], trusted: list, *, required: bool = True) -> bool:
    """Whether the page behind a browser request may make it: this server, an allowed origin, or an embed's own.

    With ``required`` false a request without any Origin/Referer passes (a program, not a browser page).
    """
    origin = request_origin(headers)
    if not origin:
        return not required
    if same_site_origin(origin, scope, headers, trusted):
        return True
    with contextlib.suppress(ValueError):
        origin = normalize_origin(origin)
        if grant is not None and grant.kind == "embed":
            return origin == grant.origin
        return origin in allowed
    return False
