"""Signed credentials: page sessions and embed credentials, HMAC-signed with a key derived from the API token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass


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
