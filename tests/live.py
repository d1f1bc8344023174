"""Running the real paperchat server (uvicorn) in a thread for tests, and a headless Chromium."""

from __future__ import annotations

import contextlib
import socket
import threading
import json
import time
from collections.abc import Iterator
from pathlib import Path

from paperchat.rag.corpus import parse_jsonl

#: where the browser tests write their screenshots
OUT = Path(__file__).resolve().parent.parent / "test-output"

XSS = parse_jsonl(
    json.dumps(
        {
            "title": "Quasar <script>window.__pwned=1</script> Decoding",
            "abstract": "Quasar Decoding <img src=x onerror=\"window.__pwned=2\"> speeds up speculative decoding by "
            "3.1x on long prompts. <script>window.__pwned=3</script> We release code at https://example.org/quasar.",
        }
    ),
    "xss.jsonl",
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_server(app, port: int | None = None, root_path: str = "") -> Iterator[str]:
    """Serve ``app`` on loopback until the block ends; yields its base URL."""
    from paperchat.ui.server import uvicorn_config

    port = port or free_port()
    config = uvicorn_config(app, "127.0.0.1", port, root_path, timeout_graceful_shutdown=2)  # as `paperchat serve` runs it
    with running(config, port) as url:
        yield url


@contextlib.contextmanager
def running(config, port: int, sockets: list | None = None) -> Iterator[str]:
    """A uvicorn server for ``config`` in a thread (on ``sockets`` when given) until the block ends; yields the
    loopback URL of ``port``."""
    import uvicorn

    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets} if sockets else {}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "the test server did not stop"


@contextlib.contextmanager
def browser() -> Iterator[object]:
    """A headless Chromium (Debian's package) driven by Playwright."""
    import pytest

    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run ./scripts/install-browser.sh (make test does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def ask_in_page(page, question: str, timeout: float = 120.0) -> dict:
    """Type a question, wait for the checked answer; returns timings seen in the page."""
    before = page.locator(".pc-badge").count()
    page.fill("#pc-question textarea", question)
    started = time.monotonic()
    page.click("#pc-ask")
    first_text = None
    while time.monotonic() - started < timeout:
        if first_text is None:
            # read the streamed text in one step: the draft element is replaced when the answer lands
            text = page.evaluate(
                "() => { const d = document.querySelectorAll('.pc-draft p:nth-child(2)');"
                " return d.length ? d[d.length - 1].innerText : ''; }"
            )
            if text.strip():
                first_text = time.monotonic() - started
        if page.locator(".pc-badge").count() > before:
            return {"first_text": first_text, "final": time.monotonic() - started}
        time.sleep(0.1)
    raise AssertionError(f"no checked answer within {timeout} s")


@contextlib.contextmanager
def llama_cpp_server(gguf: Path, *, api_key: str | None = None, n_ctx: int = 4096, threads: int = 2) -> Iterator[str]:
    """llama.cpp's own HTTP server (``llama-server``), run in this process by xllamacpp on a free loopback port.

    Yields its OpenAI-compatible base URL (``http://127.0.0.1:PORT/v1``); the server stops with the block.
    """
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as paperchat.rag.embedded does, before the library loads
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.n_ctx = n_ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.verbosity = 0
    params.hostnames = ["127.0.0.1"]
    params.port = free_port()
    params.endpoint_metrics = True
    if api_key:
        params.api_keys = [api_key]
    server = xllamacpp.Server(params)
    server.handle_metrics()  # returns once the task loop runs, so dropping the server can stop it (see embedded.py)
    base = str(server.listening_address).rstrip("/")
    _await_http(f"{base}/health")
    try:
        yield f"{base}/v1"
    finally:
        del server


def _await_http(url: str, timeout_s: float = 60.0) -> None:
    """Wait until ``url`` answers HTTP at all (any status)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing answers at {url}") from None
            time.sleep(0.1)
