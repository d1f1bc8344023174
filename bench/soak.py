"""A bounded soak of a served paperchat: answers, bad requests, dropped streams, big headers, uploads and
half-open connections against one ``paperchat serve`` on 127.0.0.1, sampling the server's RSS.

    python -m paperchat.bench.soak --minutes 10            # writes bench/SOAK.md

It ingests the bundled seeds into a temporary data directory, serves them with a token (the
configured model backend: the embedded one by default), drives the loops until ``--minutes`` have
passed (each loop also bounded in count), stops the server and writes its figures. Only loopback
is contacted; nothing is downloaded. Failing figures (a 500, a stalled health probe, RSS growth
over ``--max-growth`` after warm-up) make the exit status 1.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

TOKEN = "soak-token"
QUESTIONS = (
    "What does SPELL propose?",
    "Which papers are about speculative decoding?",
    "How does the Music Transformer handle long sequences?",
    "What results does SPELL report?",
)
#: Bad requests, each ``(method, path, kwargs)``: all must be refused with a 4xx sentence.
BAD = (
    ("GET", "/api/v1/papers", {"headers": {"Authorization": "Bearer wrong"}}),
    ("GET", "/api/v1/papers", {}),
    ("POST", "/api/v1/ask", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
    ("POST", "/api/v1/ask", {"content": b"[" * 200 + b"]" * 200, "headers": {"Content-Type": "application/json"}}),
    ("POST", "/api/v1/ask", {"json": {"question": "\u3164\u2800"}}),
    ("POST", "/api/v1/ask", {"json": {"question": "x" * 70_000}}),
    ("POST", "/gradio_api/run/chat", {"json": {"data": [""]}}),
    ("POST", "/gradio_api/call/v2/ask", {"json": {"data": [""]}}),
    ("POST", "/gradio_api/queue/join", {"json": {"fn_index": 0, "data": [], "session_hash": "x"}}),
    ("POST", "/gradio_api/component_server", {"json": {"component_id": 1, "fn_name": "x", "data": None}}),
    ("GET", "/no/such/page", {}),
    ("OPTIONS", "/api/v1/ask", {"headers": {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}}),
    ("POST", "/gradio_api/call/ask", {"json": {"data": ["What is SPELL?"]}, "headers": {"Origin": "https://evil.example"}}),
)


class Tally:
    """Status codes per kind of request, thread-safe."""

    def __init__(self):
        self.counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self._lock = threading.Lock()

    def add(self, kind: str, outcome) -> None:
        with self._lock:
            self.counts[kind][str(outcome)] += 1

    def total(self, pred) -> int:
        return sum(n for c in self.counts.values() for k, n in c.items() if pred(k))


def rss_mb(pid: int) -> float | None:
    """The resident memory of ``pid`` in MB (Linux), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int, log_path: Path, env: dict) -> subprocess.Popen:
    """Ingest the seeds and start ``paperchat serve``; returns once /health answers 200."""
    cli = [sys.executable, "-m", "paperchat.cli", "--data-dir", str(data_dir)]
    subprocess.run([*cli, "ingest"], env=env, check=True, stdout=subprocess.DEVNULL, timeout=1800)
    log = open(log_path, "wb")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}; see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).status_code == 200:
                return proc
        time.sleep(1)
    proc.kill()
    raise SystemExit("the server did not become healthy within 15 minutes")


def loop(stop: threading.Event, pause: float, limit: int, step) -> None:
    """Call ``step(i)`` until ``stop`` is set or ``limit`` calls were made, ``pause`` seconds apart."""
    for i in range(limit):
        if stop.is_set():
            return
        step(i)
        stop.wait(pause)


def drivers(url: str, port: int, tally: Tally, stall: list) -> dict:
    """The request loops, by name: each a ``step(i)`` function."""
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def answer(i: int) -> None:
        body = {"question": QUESTIONS[i % len(QUESTIONS)]}
        drop = i % 3 == 2  # every third stream is dropped after its first token
        try:
            with httpx.stream("POST", f"{url}/api/v1/ask/stream", json=body, headers=auth, timeout=600) as r:
                kind = "answer (dropped stream)" if drop else "answer (stream)"
                for line in r.iter_lines():
                    if drop and json.loads(line).get("type") == "token":
                        break
                tally.add(kind, r.status_code)
        except httpx.HTTPError as err:
            tally.add("answer (stream)", type(err).__name__)

    def bad(i: int) -> None:
        method, path, kw = BAD[i % len(BAD)]
        if i % len(BAD) >= 2:  # past the two credential failures: with the token, so the request itself is judged
            kw = {**kw, "headers": {**auth, **kw.get("headers", {})}}
        try:
            r = httpx.request(method, f"{url}{path}", timeout=30, **kw)
            shaped = set(r.json()) == {"error", "message"} if r.content else False
            tally.add("bad request", r.status_code if shaped else f"{r.status_code} unshaped")
        except (httpx.HTTPError, ValueError) as err:
            tally.add("bad request", type(err).__name__)

    def big_header(i: int) -> None:
        size = (8_000, 40_000, 1_000_000)[i % 3]
        try:
            r = httpx.get(f"{url}/api/v1/health", headers={"X-Pad": "a" * size}, timeout=30)
            tally.add(f"header {size // 1000} kB", r.status_code)
        except httpx.HTTPError as err:  # the server may close while a 1 MB head is still being sent
            tally.add(f"header {size // 1000} kB", type(err).__name__)

    def upload(i: int) -> None:
        files = {"files": ("x.txt", b"x" * 60_000, "text/plain")}
        try:
            r = httpx.post(f"{url}/gradio_api/upload", files=files, headers={**auth, "Origin": "https://evil.example"},
                           timeout=30)
            tally.add("upload", r.status_code)
        except httpx.HTTPError as err:
            tally.add("upload", type(err).__name__)

    def half_open(i: int) -> None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            started = time.monotonic()
            reply = s.recv(1024)
            tally.add("slow header", f"{reply[:12].decode('latin-1', 'replace')} after {round(time.monotonic() - started)} s")

    def health(i: int) -> None:
        started = time.monotonic()
        try:
            r = httpx.get(f"{url}/api/v1/health", timeout=10)
            tally.add("health", r.status_code)
        except httpx.HTTPError as err:
            tally.add("health", type(err).__name__)
        stall.append(time.monotonic() - started)

    return {"answer": (answer, 0.5, 10_000), "bad": (bad, 0.2, 20_000), "big header": (big_header, 1.0, 5_000),
            "upload": (upload, 0.5, 10_000), "half open": (half_open, 2.0, 2_000), "health": (health, 2.0, 5_000)}


def soak(minutes: float, warmup: float, env: dict) -> dict:
    """Serve, drive every loop for ``minutes``, sample RSS every 5 s; the figures."""
    with tempfile.TemporaryDirectory(prefix="paperchat-soak-") as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(Path(tmp) / "data", port, Path(tmp) / "server.log", env)
        served = httpx.get(f"{url}/api/v1/health", timeout=30).json()
        tally, stall, samples = Tally(), [], []
        stop = threading.Event()
        started = time.monotonic()
        threads = [threading.Thread(target=loop, args=(stop, pause, limit, step), daemon=True)
                   for step, pause, limit in drivers(url, port, tally, stall).values()]
        for t in threads:
            t.start()
        while time.monotonic() - started < minutes * 60 and proc.poll() is None:
            samples.append((time.monotonic() - started, rss_mb(proc.pid)))
            time.sleep(5)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        samples.append((time.monotonic() - started, rss_mb(proc.pid)))
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log_tail = (Path(tmp) / "server.log").read_text(errors="replace")[-4000:]
    return {"minutes": minutes, "warmup": warmup, "backend": f"{served['backend']}: {served['model']}",
            "tally": tally, "stall": stall, "samples": samples, "log": log_tail,
            "crashed": proc.returncode not in (0, -signal.SIGINT, 130) if proc.returncode is not None else False}


def figures(result: dict) -> dict:
    """RSS after warm-up and at the end (medians of one minute), growth, 5xx and stalls."""
    samples = [(t, r) for t, r in result["samples"] if r is not None]
    warm = result["warmup"] * 60
    after = [r for t, r in samples if warm <= t < warm + 60] or [r for _, r in samples[:1]]
    end = [r for t, r in samples if t >= samples[-1][0] - 60] if samples else []
    base, last = statistics.median(after), statistics.median(end)
    return {
        "rss_start": samples[0][1], "rss_warm": base, "rss_end": last, "rss_max": max(r for _, r in samples),
        "growth_pct": 100 * (last - base) / base,
        "server_errors": result["tally"].total(lambda k: k.startswith("5")),
        "unshaped": result["tally"].total(lambda k: "unshaped" in k),
        "stalls": sum(1 for s in result["stall"] if s >= 5), "health_max_s": max(result["stall"] or [0]),
    }


def write_report(result: dict, fig: dict, out: Path, command: str) -> None:
    rows = "\n".join(f"| {kind} | {sum(c.values())} | {', '.join(f'{k}: {n}' for k, n in sorted(c.items()))} |"
                     for kind, c in sorted(result["tally"].counts.items()))
    out.write_text(f"""# Soak of a served paperchat (generated by bench/soak.py)

Command: `{command}` on {os.cpu_count()} CPU(s), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.
One `paperchat serve` with a token on 127.0.0.1 (answering with {result['backend']}),
driven for {result['minutes']:g} min; RSS sampled every 5 s; warm-up {result['warmup']:g} min.

| figure | value |
|---|---|
| 5xx responses | {fig['server_errors']} |
| error bodies not in the {{error, message}} shape | {fig['unshaped']} |
| health probes slower than 5 s (stalls) | {fig['stalls']} (slowest {fig['health_max_s']:.2f} s) |
| RSS at start / after warm-up / at end / max (MB) | {fig['rss_start']:.0f} / {fig['rss_warm']:.0f} / {fig['rss_end']:.0f} / {fig['rss_max']:.0f} |
| RSS growth after warm-up | {fig['growth_pct']:+.1f} % |
| server exited abnormally | {result['crashed']} |

| requests | count | outcomes |
|---|---|---|
{rows}

RSS over time (minute: MB): {', '.join(f"{t / 60:.0f}: {r:.0f}" for t, r in result['samples'][::12] if r)}
""")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to drive the server (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="minutes before the RSS baseline (default 2)")
    parser.add_argument("--max-growth", type=float, default=5.0, help="RSS growth (%%) after warm-up that fails")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "SOAK.md")
    args = parser.parse_args(argv)
    if args.minutes <= args.warmup + 1:
        parser.error("--minutes must exceed --warmup by more than one minute")
    env = {**os.environ, "PAPERCHAT_SERVER__API_TOKEN": TOKEN, "HF_HUB_OFFLINE": "1",
           # one client address drives everything: let its answers through, keep every other limit as served
           "PAPERCHAT_SERVER__RATE_LIMIT_PER_MINUTE": "100000", "PAPERCHAT_SERVER__AUTH_FAILURES_PER_MINUTE": "100000"}
    result = soak(args.minutes, args.warmup, env)
    fig = figures(result)
    write_report(result, fig, args.out, "python -m paperchat.bench.soak " + " ".join(argv or sys.argv[1:]))
    print(args.out.read_text())
    ok = fig["server_errors"] == 0 and fig["stalls"] == 0 and fig["growth_pct"] < args.max_growth and not result["crashed"]
    if not ok:
        print("the server's log ended with:\n" + result["log"], file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
