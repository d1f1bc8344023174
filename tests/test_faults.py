"""Load and faults: concurrent clients, a dying model server, a vanished or corrupt index, a full disk."""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from paperchat.rag.backends import AutoLLM, OllamaLLM
from paperchat.rag.embeddings import HashingEmbedder
from paperchat.rag.pipeline import Pipeline
from paperchat.rag.retrieval import Retriever
from paperchat.rag.store import PaperIndex
from paperchat.ui.server import create_app

from .conftest import ROOT, SEEDS
from .fakes import ScriptedLLM, copying_reply
from .live import live_server
from .ollama_standin import OllamaStandIn

API = "/api/v1"


class SlowScripted(ScriptedLLM):
    """The copying scripted model, taking ``delay`` seconds per call like a (very fast) real one."""

    def __init__(self, delay: float = 0.05):
        super().__init__(copying_reply)
        self.delay = delay

    def stream(self, request):
        time.sleep(self.delay)
        yield from super().stream(request)


@pytest.mark.parametrize("clients", [8, 16])
def test_concurrent_clients_all_get_answers(fake_index, settings, clients):
    settings.server.rate_limit_per_minute = 1000
    retriever = Retriever(fake_index)
    app = create_app(settings, Pipeline(settings, retriever, SlowScripted()), retriever, mount_ui=False)
    questions = ["What does SPELL propose?", "How does DreamTuner work?", "What is Self-RAG?", "What does SPARK reach?"]
    with live_server(app) as url:
        def one(i: int) -> tuple[int, float]:
            started = time.monotonic()
            r = httpx.post(f"{url}{API}/ask", json={"question": questions[i % 4]}, timeout=120)
            return r.status_code, time.monotonic() - started

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(one, range(clients * 2)))
        wall = time.monotonic() - started
    codes = [c for c, _ in results]
    assert codes == [200] * (clients * 2), codes  # queueing is fine, errors are not
    assert wall < 120


def test_model_server_dies_mid_stream_then_next_question_works(fake_index, settings):
    standin = OllamaStandIn(reply=lambda b: "SPELL integrates three cyclical roles within a single model to enable continual self-improvement [1].").start()
    try:
        fallback = ScriptedLLM(copying_reply, model="embedded-stand-in")
        llm = AutoLLM(OllamaLLM(standin.url, "qwen2.5:7b-instruct", timeout_s=10), lambda: fallback, recheck_s=3600)
        retriever = Retriever(fake_index)
        settings.answer.model_judge = "never"
        app = create_app(settings, Pipeline(settings, retriever, llm), retriever, mount_ui=False)
        with live_server(app) as url:
            standin.die_after = 3
            lines = [json.loads(x) for x in httpx.post(f"{url}{API}/ask/stream", json={"question": "What does SPELL integrate?"}, timeout=60).text.splitlines()]
            assert [x["type"] for x in lines if x["type"] == "token"], "some text streamed before the server died"
            assert lines[-1]["type"] == "error" and "stopped answering" in lines[-1]["message"]
            after = httpx.post(f"{url}{API}/ask", json={"question": "What does SPELL integrate?"}, timeout=60)
            assert after.status_code == 200 and after.json()["backend"] == "scripted"  # now on the fallback model
    finally:
        if llm.ollama.preloading is not None:
            llm.ollama.preloading.join(10)
        standin.stop()


def test_index_deleted_or_corrupted_while_serving(settings, seed_papers):
    index = PaperIndex(settings, HashingEmbedder())
    index.ingest(seed_papers)
    retriever = Retriever(index)
    app = create_app(settings, Pipeline(settings, retriever, ScriptedLLM(copying_reply)), retriever, mount_ui=False)
    q = {"question": "What does SPELL propose?"}
    with live_server(app) as url:
        assert httpx.post(f"{url}{API}/ask", json=q, timeout=60).status_code == 200
        shutil.rmtree(settings.index_dir)
        gone = httpx.post(f"{url}{API}/ask", json=q, timeout=60)
        assert gone.status_code == 503 and "paperchat ingest" in gone.json()["message"]
        assert httpx.get(f"{url}{API}/health").json()["status"] == "degraded"
        index.ingest(seed_papers)  # what `paperchat ingest` does
        assert httpx.post(f"{url}{API}/ask", json=q, timeout=60).status_code == 200
        # now corrupt the generation in service
        current = index.current_manifest().generation
        (settings.index_dir / current / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
        for name in list(index.place._clients):
            index.place._clients.pop(name)
        retriever._snapshot = None
        bad = httpx.post(f"{url}{API}/ask", json=q, timeout=60)
        assert bad.status_code == 503
        assert "paperchat ingest" in bad.json()["message"]
        index.ingest(seed_papers, rebuild=True)  # `paperchat ingest --rebuild` repairs it
        assert httpx.post(f"{url}{API}/ask", json=q, timeout=60).status_code == 200


def test_full_disk_during_ingest_loses_nothing(tmp_path):
    """A real full disk: the data dir is a 3 MB tmpfs in a private mount namespace."""
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("mount namespaces unavailable here")
    data = tmp_path / "small-disk"
    data.mkdir()
    script = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from paperchat.rag.corpus import Paper, load_papers, paper_id
from paperchat.rag.embeddings import HashingEmbedder
from paperchat.rag.errors import IngestError
from paperchat.rag.retrieval import Retriever
from paperchat.rag.settings import Settings
from paperchat.rag.store import PaperIndex
papers = load_papers([Path({str(SEEDS)!r})])
index = PaperIndex(Settings(data_dir={str(data)!r}), HashingEmbedder())
index.ingest(papers[:10])
before = index.current_manifest().generation
try:
    # five copies of the seeds under other titles: more than the small disk holds
    more = [Paper(id=paper_id(f"{{p.title}} ({{i}})", p.abstract), title=f"{{p.title}} ({{i}})", abstract=p.abstract)
            for i in range(5) for p in papers]
    index.ingest(papers + more, rebuild=True)
    outcome = "ingest fitted"
except IngestError as err:
    outcome = str(err)
fresh = PaperIndex(Settings(data_dir={str(data)!r}), HashingEmbedder())
hits = Retriever(fresh).search("music", k=3)
print(json.dumps({{"outcome": outcome, "before": before, "after": fresh.current_manifest().generation,
                  "papers": len(fresh.papers()), "hits": len(hits), "generations": fresh.place.generations()}}))
"""
    run = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size=3m tmpfs "{data}" && exec "{sys.executable}" -c "$0"', script],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert "No space left on device" in result["outcome"] and "still in service" in result["outcome"]
    assert result["after"] == result["before"]
    assert result["papers"] == 10 and result["hits"] == 3
    assert result["generations"] == [result["before"]]  # the half-written generation was removed
