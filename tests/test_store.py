"""The generational Chroma index: idempotent ingest, atomic swaps, server mode."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from paperchat.rag.corpus import Paper, parse_jsonl
from paperchat.rag.embeddings import HashingEmbedder
from paperchat.rag.errors import IndexCorruptError, IndexMissingError, IngestBusyError, IngestError
from paperchat.rag.retrieval import Retriever
from paperchat.rag.settings import Settings
from paperchat.rag.places import LocalPlace, Manifest
from paperchat.rag.store import IngestPlan, PaperIndex, plan_ingest, status

from .conftest import ROOT, SEEDS
from .fakes import FailingEmbedder

EXTRA = parse_jsonl(
    json.dumps(
        {
            "title": "Quokka Routing: Marsupial-Inspired Packet Scheduling",
            "abstract": "We present Quokka Routing, a packet scheduler inspired by marsupial foraging that "
            "cuts tail latency by 37% on datacenter traces while keeping throughput unchanged.",
        }
    ),
    "extra.jsonl",
)


def _papers(*ids: str) -> list:
    return [Paper(id=i, title=f"Title {i}", abstract=f"Abstract {i}.") for i in ids]


MANIFEST = Manifest(generation="g1", created="2026-11-25T00:00:00+00:00", embedder="hashing", dim=384,
                    chunk_tokens=160, chunk_overlap=32, papers=2, chunks=2)


def _plan(papers, indexed=_papers("a", "b"), **kw):
    given = {"current": "g1", "manifest": MANIFEST, "compatible": True, "indexed": indexed}
    return plan_ingest(papers, **{**given, **kw})


def _ids(plan: IngestPlan) -> list[str]:
    return [p.id for p in plan.papers]


def test_plan_nothing_when_every_paper_is_indexed():
    plan = _plan(_papers("b", "a", "a"))
    assert plan == IngestPlan("nothing", (), 2, "g1") and plan.reason == "every paper is already indexed"


def test_plan_adds_only_new_papers_on_top_of_the_generation_in_service():
    plan = _plan(_papers("a", "c", "d"))
    assert (plan.action, _ids(plan), plan.total, plan.base) == ("add", ["c", "d"], 4, "g1")


def test_plan_rebuilds_from_scratch_when_there_is_no_usable_generation():
    assert _ids(_plan(_papers("a"), current=None, manifest=None, compatible=False, indexed=None)) == ["a"]
    no_manifest = _plan(_papers("a"), manifest=None, compatible=False, indexed=None)
    assert (no_manifest.action, no_manifest.base, no_manifest.reason) == (
        "rebuild", None, "the index in service has no manifest")
    unreadable = _plan(_papers("c"), indexed=None)
    assert (unreadable.action, _ids(unreadable), unreadable.reason) == (
        "rebuild", ["c"], "the index in service cannot be read")


def test_plan_rebuilds_every_paper_when_settings_changed_or_asked():
    for kw in ({"compatible": False}, {"rebuild": True}):
        plan = _plan(_papers("c"), **kw)
        assert (plan.action, sorted(_ids(plan)), plan.total, plan.base) == ("rebuild", ["a", "b", "c"], 3, None)
    assert _plan([], rebuild=True).total == 2


def test_plan_replace_keeps_only_the_papers_asked_for():
    plan = _plan(_papers("c", "a"), replace=True)
    assert (plan.action, _ids(plan), plan.total) == ("rebuild", ["c", "a"], 2)
    assert plan.reason == "asked to replace the index"


def test_plan_prefers_the_papers_asked_for_over_indexed_ones_with_the_same_id():
    newer = Paper(id="a", title="Title a, revised", abstract="Abstract a.")
    plan = _plan([newer], rebuild=True)
    assert plan.papers[0] is newer


def test_reingest_adds_nothing(fake_index, seed_papers):
    first = fake_index.current_manifest()
    report = fake_index.ingest(seed_papers)
    assert report.papers_added == 0 and report.chunks_added == 0
    assert report.skipped_reason
    assert fake_index.current_manifest().generation == first.generation
    assert fake_index.place.generations() == [first.generation]


def test_adding_a_paper_embeds_only_the_new_chunks(fake_index, seed_papers):
    before = fake_index.current_manifest()
    report = fake_index.ingest(EXTRA)
    after = fake_index.current_manifest()
    assert after.generation != before.generation
    assert (report.papers_added, report.papers_total) == (1, 47)
    assert report.chunks_added == 1 and after.chunks == before.chunks + 1
    assert not report.rebuilt
    hits = Retriever(fake_index).search("marsupial packet scheduler tail latency", k=1)
    assert hits[0].paper.title.startswith("Quokka Routing")
    # the old generation is kept one round for readers that still hold it, no more
    fake_index.ingest(parse_jsonl(json.dumps({"title": "Another", "abstract": EXTRA[0].abstract + " More."})))
    assert len(fake_index.place.generations()) == 2


def test_each_paper_is_stored_once_and_every_chunk_still_finds_it(fake_index, seed_papers):
    collection = fake_index.place.collection(fake_index.current_manifest().generation)
    got = collection.get(include=["metadatas"])
    holding = [m for m in got["metadatas"] if "paper_json" in m]
    assert len(got["ids"]) > len(seed_papers) and len(holding) == len(seed_papers)
    assert all(m["chunk_index"] == 0 for m in holding)
    assert not any("_node_content" in m for m in got["metadatas"])  # llama-index's copy of each node is left out
    # loading reads the papers and the saved BM25 index, not every chunk: the texts of the chunks found come later
    snapshot = Retriever(fake_index).snapshot()
    assert snapshot.chunk_text is None and len(snapshot.chunk_paper) == len(got["ids"])
    found = Retriever(fake_index).search(seed_papers[1].title, k=2)[0]
    assert found.chunk and found.chunk in seed_papers[1].abstract
    # a search that lands on a paper's later chunk gets the whole paper, in every mode
    for mode in ("dense", "hybrid"):
        assert Retriever(fake_index).search(seed_papers[0].title, k=3, mode=mode)[0].paper == seed_papers[0]
    later = next(m for m in got["metadatas"] if m["chunk_index"] > 0)
    paper = next(p for p in seed_papers if p.id == later["paper_id"])
    retriever = Retriever(fake_index)
    sentence = paper.abstract.rstrip(". ").rsplit(". ", 1)[-1]
    hit = next(h for h in retriever.search(sentence, k=5) if h.paper.id == paper.id)
    assert hit.paper == paper
    assert {p.id for p in fake_index.papers()} == {p.id for p in seed_papers}


class _CountingCollection:
    """A Chroma collection that counts the records read through ``get``."""

    def __init__(self, collection):
        self._collection, self.read = collection, 0

    def __getattr__(self, name):
        return getattr(self._collection, name)

    def get(self, *args, **kwargs):
        got = self._collection.get(*args, **kwargs)
        self.read += len(got["ids"])
        return got


def test_a_search_reads_no_chunk_record_when_the_saved_index_knows_where_each_text_stands(fake_index, seed_papers):
    """The BM25 index saved at ingest keeps where each chunk's text stands in its abstract: a search cuts the texts
    of the chunks it found from the papers in memory, and asks Chroma only for ids and distances."""
    snapshot = Retriever(fake_index).snapshot()
    assert snapshot.places is not None and set(snapshot.places) == set(snapshot.chunk_paper)
    retriever = Retriever(fake_index)
    retriever.snapshot().collection = counting = _CountingCollection(retriever.snapshot().collection)
    hits = retriever.search(seed_papers[2].title, k=3)
    assert counting.read == 0 and hits[0].paper == seed_papers[2]
    collection = fake_index.place.collection(fake_index.current_manifest().generation)
    for hit in hits:  # the very texts the index was built from
        meta = collection.get(ids=[hit.chunk_id], include=["metadatas"])["metadatas"][0]
        assert hit.chunk == hit.paper.abstract[meta["chunk_start"] : meta["chunk_end"]] and hit.chunk
    # a snapshot that knows no places (an index saved before they were kept) reads the found chunks instead
    old = Retriever(fake_index)
    old.snapshot().places = None
    old.snapshot().collection = counting = _CountingCollection(old.snapshot().collection)
    assert [h.chunk for h in old.search(seed_papers[2].title, k=3)] == [h.chunk for h in hits]
    assert counting.read == 3


def test_a_dense_hit_reports_the_cosine_of_the_question_and_its_chunk(fake_index, seed_papers):
    import numpy as np

    question = seed_papers[3].title
    hit = Retriever(fake_index).search(question, k=1, mode="dense")[0]
    collection = fake_index.place.collection(fake_index.current_manifest().generation)
    stored = np.asarray(collection.get(ids=[hit.chunk_id], include=["embeddings"])["embeddings"][0])
    asked = fake_index.embedder.embed([question])[0]
    cosine = float(stored @ asked / (np.linalg.norm(stored) * np.linalg.norm(asked)))
    assert hit.dense_similarity == pytest.approx(cosine, abs=1e-5) and hit.dense_rank == 1


def test_replace_makes_the_index_exactly_the_given_papers(fake_index):
    report = fake_index.ingest(EXTRA, replace=True)
    assert report.papers_total == 1
    assert [p.title for p in fake_index.papers()] == [EXTRA[0].title]


def test_rebuild_keeps_every_paper(fake_index, seed_papers):
    report = fake_index.ingest([], rebuild=True)
    assert report.rebuilt and report.papers_total == 46
    assert len(fake_index.papers()) == 46


def test_failed_build_leaves_the_served_index_intact(settings, seed_papers):
    PaperIndex(settings, HashingEmbedder()).ingest(seed_papers[:10])
    good = PaperIndex(settings, HashingEmbedder())
    served = good.current_manifest().generation
    broken = PaperIndex(settings, FailingEmbedder(ok_calls=1))
    with pytest.raises(IngestError, match="previous index is still in service"):
        broken.ingest(seed_papers, rebuild=True)
    assert good.current_manifest().generation == served
    assert good.place.generations() == [served]  # the half-built one was removed
    assert len(good.papers()) == 10
    assert Retriever(good).search("music transformer", k=1)


def _killed_ingest(settings, tmp_path, mark_on: int = 1) -> None:
    """Rebuild the index of every seed paper in another process, and kill it in its ``mark_on``-th embedding call
    (the batches before it stored)."""
    marker = tmp_path / "embedding-started"
    script = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
from paperchat.rag.corpus import load_papers
from paperchat.rag.settings import Settings
from paperchat.rag.store import PaperIndex
from tests.fakes import SlowEmbedder
s = Settings(data_dir={str(settings.data_dir)!r})
PaperIndex(s, SlowEmbedder(Path({str(marker)!r}), delay=0.5, mark_on={mark_on})).ingest(
    load_papers([Path({str(SEEDS)!r})]), rebuild=True)
"""
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "ingest exited before it started embedding"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_killed_ingest_keeps_serving_and_is_swept(settings, seed_papers, tmp_path):
    PaperIndex(settings, HashingEmbedder()).ingest(seed_papers[:5])
    served = PaperIndex(settings, HashingEmbedder()).current_manifest().generation
    _killed_ingest(settings, tmp_path)
    index = PaperIndex(settings, HashingEmbedder())
    assert index.current_manifest().generation == served
    assert len(index.place.generations()) == 2  # the dead build's leftovers
    assert len(Retriever(index).papers()) == 5
    index.ingest(seed_papers)  # another build (the 41 new papers on top of the 5): the dead one is swept
    assert len(index.place.generations()) == 2 and len(index.papers()) == 46


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, counting the texts it embeds."""

    def __init__(self):
        super().__init__()
        self.texts = 0

    def embed(self, texts):
        self.texts += len(texts)
        return super().embed(texts)


def test_a_killed_ingest_is_resumed_by_the_same_ingest_and_embeds_only_what_it_had_not_stored(
    settings, seed_papers, tmp_path
):
    PaperIndex(settings, HashingEmbedder()).ingest(seed_papers[:5])
    served = PaperIndex(settings, HashingEmbedder()).current_manifest().generation
    _killed_ingest(settings, tmp_path, mark_on=3)  # killed in its third batch: two batches stored
    stopped = next(g for g in PaperIndex(settings, HashingEmbedder()).place.generations() if g != served)
    embedder = CountingEmbedder()
    index = PaperIndex(settings, embedder)
    report = index.ingest(seed_papers, rebuild=True)  # the same build: resumed
    batch = settings.index.embed_batch
    assert report.resumed == 2 * batch and embedder.texts == report.chunks_total - 2 * batch
    assert index.current_manifest().generation == stopped  # built where it stopped
    assert len(index.papers()) == 46 and report.chunks_total == report.chunks_added
    hit = Retriever(index).search("music transformer relative attention", k=1)[0]
    assert "Music Transformer" in hit.paper.title
    # a different build does not take it up: the next rebuild of other papers starts afresh
    assert index.ingest(seed_papers[:3], replace=True).resumed == 0


def test_second_ingest_at_once_is_refused(settings):
    place = LocalPlace(settings.index_dir, "papers")
    with place.ingest_lock():
        with pytest.raises(IngestBusyError, match="already running"):
            with place.ingest_lock():
                pass


def test_missing_and_deleted_index_errors_say_how_to_fix(settings, seed_papers):
    index = PaperIndex(settings, HashingEmbedder())
    with pytest.raises(IndexMissingError, match="paperchat ingest"):
        Retriever(index).search("anything")
    assert status(settings)["ready"] is False
    index.ingest(seed_papers[:3])
    retriever = Retriever(index)
    assert retriever.search("self", k=1)
    import shutil

    shutil.rmtree(settings.index_dir)
    with pytest.raises((IndexMissingError, IndexCorruptError), match="paperchat ingest"):
        retriever.search("self", k=1)
    index.ingest(seed_papers[:3])  # ingest repairs it
    assert retriever.search("self", k=1)


def test_index_built_with_another_embedder_is_rebuilt_not_mixed(settings, seed_papers):
    PaperIndex(settings, HashingEmbedder(dim=384)).ingest(seed_papers[:3])
    other = HashingEmbedder(dim=128)
    other.name = "hashing-128"
    report = PaperIndex(settings, other).ingest(seed_papers[:3])
    assert report.rebuilt and report.papers_total == 3




def test_chroma_server_mode(tmp_path, chroma_server, seed_papers):
    settings = Settings(data_dir=tmp_path / "d", index={"chroma_host": "127.0.0.1", "chroma_port": chroma_server})
    index = PaperIndex(settings, HashingEmbedder())
    assert index.place.description.startswith("chroma server")
    first = index.ingest(seed_papers)
    assert first.papers_total == 46
    again = index.ingest(seed_papers)
    assert again.papers_added == 0 and again.generation == first.generation
    hits = Retriever(index).search("self-play long-context reasoning", k=3)
    assert any(h.paper.title.startswith("SPELL") for h in hits)
    index.ingest(EXTRA)
    # a second client sees the swap, and only two generations remain on the server
    other = PaperIndex(settings, HashingEmbedder())
    assert len(other.papers()) == 47
    assert len(other.place.generations()) == 2
    assert not (settings.index_dir / "CURRENT").exists()  # nothing was written to local disk but the lock


class ListedCollection:
    """Records in a given order behind Chroma's ``get(include, limit, offset, where)`` (what ``read_records`` calls)."""

    def __init__(self, records: list[dict]):
        self.records = records

    def get(self, include, limit, offset, where=None):
        rows = self.records[offset : offset + limit]
        return {"ids": [r["id"] for r in rows], **{key: [r[key] for r in rows] for key in include}}


def test_a_later_chunk_read_before_its_papers_first_waits_for_it():
    from paperchat.rag.records import Chunk, chunk_metadata
    from paperchat.rag.store import stored_chunks

    paper = Paper(id="p1", title="Quokka Routing", abstract="We route packets. Then more.")
    first, later = Chunk("p1-000", paper, 0, "We route packets."), Chunk("p1-001", paper, 1, "Then more.")

    def record(chunk):
        return {"id": chunk.id, "metadatas": chunk_metadata(chunk), "documents": chunk.text}

    assert sorted(c.id for c in stored_chunks(ListedCollection([record(later), record(first)]), "here")) == [
        "p1-000", "p1-001"]
    assert all(c.paper == paper for c in stored_chunks(ListedCollection([record(later), record(first)]), "here"))
    with pytest.raises(IndexCorruptError, match="record p1-001 has no 'paper_json'"):
        list(stored_chunks(ListedCollection([record(later)]), "/data/index"))  # its paper's first chunk is lost
