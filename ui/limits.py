"""Per-client rate limits, and which address a request counts against.

Clients are keyed by address: an IPv4 address (also when it reaches an IPv6 socket as
``::ffff:a.b.c.d``), or the /64 of a real IPv6 address (one host usually holds a whole /64).
``X-Forwarded-For`` is believed only from a configured trusted proxy.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable

#: Most client addresses a limiter remembers at once (oldest forgotten first).
MAX_CLIENTS = 10_000

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds per key (sliding window), remembering at most ``max_keys`` keys.

    >>> now = [0.0]
    >>> lim = RateLimiter(2, window=60, clock=lambda: now[0])
    >>> lim.allow("a"), lim.allow("a"), lim.allow("a") > 0
    (0.0, 0.0, True)
    >>> now[0] = 61.0; lim.wait("a"), len(lim)
    (0.0, 0)
    """

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque] = OrderedDict()
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> deque | None:
        """The key's hits inside the window; a key left with none is forgotten (never kept empty)."""
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and now - hits[0] >= self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def _expire(self, now: float) -> None:
        # keys are kept in order of last hit: drop those whose last hit left the window, then the oldest over the cap
        while self._hits:
            hits = next(iter(self._hits.values()))
            if hits and now - hits[-1] < self.window and len(self._hits) <= self.max_keys:
                break
            self._hits.popitem(last=False)

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may hit again (0: it may now); records nothing."""
        now = self._clock()
        with self._lock:
            hits = self._live(key, now)
            if hits is None or len(hits) < self.limit:
                return 0.0
            return max(self.window - (now - hits[0]), 0.001)

    def allow(self, key: str) -> float:
        """Record a hit: 0 if allowed, else seconds until the next hit would be (nothing recorded)."""
        now = self._clock()
        with self._lock:
            hits = self._live(key, now)
            if hits is not None and len(hits) >= self.limit:
                return max(self.window - (now - hits[0]), 0.001)
            if hits is None:
                hits = self._hits[key] = deque()
            hits.append(now)
            self._hits.move_to_end(key)
            self._expire(now)
            return 0.0

    def count(self, key: str) -> int:
        """Hits of ``key`` inside the window now."""
        with self._lock:
            hits = self._live(key, self._clock())
            return len(hits) if hits else 0

    def __len__(self) -> int:
        return len(self._hits)


def parse_networks(values: Iterable[str]) -> list:
    """IP networks from addresses or CIDRs (raises ValueError on a bad one); IPv4-mapped ones as IPv4."""
    nets = []
    for v in values:
        net = ipaddress.ip_network(v.strip().strip("[]"), strict=False)
        mapped = getattr(net.network_address, "ipv4_mapped", None)
        if mapped is not None and net.prefixlen >= 96:
            net = ipaddress.ip_network(f"{mapped}/{net.prefixlen - 96}", strict=False)
        nets.append(net)
    return nets


def parse_ip(text: str) -> Address | None:
    """An address from a peer or a forwarded hop; ``::ffff:a.b.c.d`` becomes ``a.b.c.d``.

    >>> str(parse_ip("::ffff:192.0.2.7")), str(parse_ip("[::1]")), parse_ip("nope")
    ('192.0.2.7', '::1', None)
    """
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    return ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped is not None else ip


def is_trusted(address: str | Address | None, trusted: list) -> bool:
    """Whether ``address`` is one of the trusted proxies."""
    ip = parse_ip(address) if isinstance(address, str) else address
    return ip is not None and any(ip.version == net.version and ip in net for net in trusted)


def client_key(peer: str, forwarded_for: str, trusted: list) -> str:
    """The client's address, from ``X-Forwarded-For`` only when the peer is a trusted proxy.

    The rightmost address not itself a trusted proxy is the client; IPv4 (mapped or not) is keyed
    by address, IPv6 by /64.

    >>> nets = parse_networks(["10.0.0.1"])
    >>> client_key("127.0.0.1", "6.6.6.6", nets), client_key("10.0.0.1", "1.2.3.4, 10.0.0.1", nets)
    ('127.0.0.1', '1.2.3.4')
    >>> client_key("::ffff:203.0.113.9", "", []), client_key("2001:db8::1", "", [])
    ('203.0.113.9', '2001:db8::/64')
    """
    ip = parse_ip(peer)
    if trusted and is_trusted(ip, trusted) and forwarded_for:
        for hop in reversed(forwarded_for.split(",")):
            hop_ip = parse_ip(hop)
            if hop_ip is None:
                break  # a malformed hop: stop at the last address we can vouch for
            ip = hop_ip
            if not is_trusted(hop_ip, trusted):
                break
    if ip is None:
        return peer or "?"
    if ip.version == 6 and not ip.is_loopback:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
