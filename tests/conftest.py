"""Shared fixtures. Every test runs with the network closed except loopback."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paperchat.rag.corpus import load_papers
from paperchat.rag.embeddings import HashingEmbedder, MiniLMEmbedder
from paperchat.rag.settings import Settings
from paperchat.rag.store import PaperIndex

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DATA = Path(__file__).resolve().parent / "data"

_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if self.family in (socket.AF_INET, socket.AF_INET6):
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is None or not ip.is_loopback:
            raise OSError(f"network access blocked in tests: {address!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail any connection that leaves this machine: paperchat must work offline."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


#: The relevance gate's floor is a MiniLM cosine; the hashing stand-in's cosines are on another scale, so tests
#: that use it turn the gate off (tests/test_pipeline_real.py checks the gate with the real model).
NO_GATE = {"min_relevance": -1.0}


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", model={"backend": "embedded"}, answer=NO_GATE)


@pytest.fixture(scope="session")
def seed_papers():
    return load_papers([SEEDS])


@pytest.fixture
def fake_index(settings, seed_papers) -> PaperIndex:
    """A real Chroma index on disk, embedded with the fast deterministic test embedder."""
    index = PaperIndex(settings, HashingEmbedder())
    index.ingest(seed_papers)
    return index


@pytest.fixture(scope="module")
def shared_index(tmp_path_factory, seed_papers) -> PaperIndex:
    """The seed papers indexed once per test module (real Chroma, deterministic test embedder)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("served") / "data", model={"backend": "embedded"}, answer=NO_GATE)
    index = PaperIndex(settings, HashingEmbedder())
    index.ingest(seed_papers)
    return index


@pytest.fixture
def start(shared_index):
    """``start(**server_settings)`` serves a fresh app on a real uvicorn server; returns (url, app).

    ``index`` (default: the shared one), ``llm`` (default: a scripted model copying source [1]),
    ``mount_ui`` and ``root_path`` choose what is served.
    """
    import contextlib

    from paperchat.rag.retrieval import Retriever
    from paperchat.rag.services import build_pipeline
    from paperchat.rag.settings import ServerSettings
    from paperchat.ui.server import create_app

    from .fakes import ScriptedLLM, copying_reply
    from .live import live_server

    stack = contextlib.ExitStack()

    def _start(*, index: PaperIndex | None = None, mount_ui: bool = False, llm=None, root_path: str = "", **server):
        index = index or shared_index
        settings = index.settings.model_copy(update={"server": ServerSettings(root_path=root_path, **server)})
        retriever = Retriever(index)
        pipeline = build_pipeline(settings, retriever=retriever, llm=llm or ScriptedLLM(copying_reply))
        app = create_app(settings, pipeline, retriever, mount_ui=mount_ui)
        return stack.enter_context(live_server(app, root_path=root_path)), app

    yield _start
    stack.close()


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("real") / "data", model={"backend": "embedded"})


@pytest.fixture(scope="session")
def real_index(real_settings, seed_papers, minilm) -> PaperIndex:
    """The seed papers in a real Chroma index with the real embedding model (built once per session)."""
    index = PaperIndex(real_settings, minilm)
    index.ingest(seed_papers)
    return index


@pytest.fixture
def chroma_server(tmp_path):
    """A real `chroma run` server on loopback, stopped after the test."""
    exe = Path(sys.executable).with_name("chroma")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            assert proc.poll() is None, "chroma run exited"
            assert time.monotonic() < deadline, "chroma server did not start"
            time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(timeout=20)
