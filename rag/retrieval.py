"""Finding the papers that answer a question: BM25 + dense, fused by reciprocal rank.

Dense search asks the Chroma collection (written through llama-index) for the nearest
chunks' ids and distances; BM25 uses ``bm25s``'s saved scores over the same chunks (title
+ chunk text, English stop words removed, Snowball-stemmed). Each retriever proposes
``candidates`` chunks; reciprocal-rank fusion scores a chunk ``sum(1 / (rrf_k + rank))``
over the retrievers that found it, and each paper is scored by its best chunk.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from .bm25 import BM25Index, bm25_text, build_bm25
from .corpus import Paper
from .embeddings import Embedder
from .errors import IndexCorruptError, IndexMissingError, PaperchatError
from .places import Manifest
from .records import chunk_text, paper_of_chunk
from .store import PaperIndex, stored_chunks, stored_papers

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "bm25"]


def rrf(rankings: Sequence[Sequence[str]], k: int = 60) -> dict[str, float]:
    """Reciprocal-rank fusion of ranked id lists.

    >>> sorted(rrf([["a", "b"], ["b", "c"]], k=1).items())
    [('a', 0.5), ('b', 0.8333333333333333), ('c', 0.3333333333333333)]
    """
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


class Hit(BaseModel):
    """A retrieved paper and the chunk of it that matched best."""

    paper: Paper
    chunk: str
    chunk_id: str
    score: float
    dense_similarity: float | None = None
    dense_rank: int | None = None
    bm25_score: float | None = None
    bm25_rank: int | None = None

    def to_json(self) -> dict:
        """The flat record ``paperchat search --json`` prints (the paper's fields as :meth:`PaperInfo.shown` gives them)."""
        paper = self.paper.shown()
        del paper["abstract"]
        return {
            "title": paper.pop("title"),
            "score": round(self.score, 6),
            "chunk": self.chunk,
            "paper_id": paper.pop("paper_id"),
            "chunk_id": self.chunk_id,
            **paper,
            "dense_similarity": None if self.dense_similarity is None else round(self.dense_similarity, 4),
            "dense_rank": self.dense_rank,
            "bm25_score": None if self.bm25_score is None else round(self.bm25_score, 4),
            "bm25_rank": self.bm25_rank,
        }


@dataclass
class _Snapshot:
    """One generation, loaded for searching. ``chunk_text`` is None when the chunks' texts were not read at load
    (a saved BM25 index names every chunk): a found chunk's text is then cut from its paper's abstract where the
    saved index says where it stands (``places``), else read from ``collection``."""

    manifest: Manifest
    chunk_text: dict[str, str] | None
    chunk_paper: dict[str, str]
    papers: dict[str, Paper]
    bm25: BM25Index
    collection: object
    places: dict[str, tuple[int, int]] | None = None

    def texts(self, ids: Sequence[str]) -> dict[str, str]:
        """The texts of the chunks ``ids``."""
        if self.chunk_text is not None:
            return {cid: self.chunk_text[cid] for cid in ids}
        out: dict[str, str] = {}
        for cid in ids:
            place, paper = (self.places or {}).get(cid), self.papers.get(self.chunk_paper.get(cid, ""))
            if place is not None and paper is not None:
                out[cid] = paper.abstract[place[0] : place[1]]
        rest = [cid for cid in ids if cid not in out]
        if rest:
            got = self.collection.get(ids=rest, include=["documents", "metadatas"])  # type: ignore[attr-defined]
            for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"]):
                out[cid] = chunk_text(meta, doc, self.papers.get(self.chunk_paper.get(cid, ""))) or ""
        return out

    def dense(self, vector: list[float], n: int) -> list[tuple[str, float]]:
        """The ``n`` chunks nearest ``vector`` with their cosine similarity, best first.

        Only ids and distances are asked of Chroma: the records themselves (a first chunk's holds its paper's
        whole record) were most of a dense search's time at 20k papers, and the search needs none of them."""
        query = self.collection.query  # type: ignore[attr-defined]
        got = query(query_embeddings=[vector], n_results=n, include=["distances"])
        return [(cid, 1.0 - float(d)) for cid, d in zip(got["ids"][0], got["distances"][0])]


class Retriever:
    """Hybrid search over the index in service; follows a new generation when an ingest swaps it in."""

    def __init__(self, index: PaperIndex, meaning: Embedder | None = None):
        self.index = index
        self.settings = index.settings
        self._meaning = meaning
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        """The index's embedder: questions are searched in its vector space."""
        return self.index.embedder

    @property
    def meaning(self) -> Embedder:
        """The embedder that weighs sentences against questions (evidence, relevance, the critique's meaning checks):
        the index's unless one was given (a static index embedder is fast to ingest with, not to judge by)."""
        return self._meaning or self.index.embedder

    def _load(self, manifest: Manifest) -> _Snapshot:
        place = self.index.place
        collection = place.collection(manifest.generation)
        lean = self._lean(manifest, collection)
        if lean is not None:
            papers, chunk_paper, bm25 = lean
            places = dict(zip(bm25.ids, bm25.places)) if bm25.places is not None else None
            log.info("loaded index generation %s: %d papers, %d chunks (texts read when found)", manifest.generation,
                     len(papers), len(chunk_paper))
            return _Snapshot(manifest, None, chunk_paper, papers, bm25, collection, places)
        text_of: dict[str, str] = {}
        chunk_paper: dict[str, str] = {}
        papers: dict[str, Paper] = {}
        ids: list[str] = []
        texts: list[str] = []
        for chunk in stored_chunks(collection, place.description):  # streamed: not every record in memory at once
            pid = chunk.paper.id
            papers.setdefault(pid, chunk.paper)
            text_of[chunk.id] = chunk.text
            chunk_paper[chunk.id] = pid
            ids.append(chunk.id)
            texts.append(bm25_text(chunk.paper.title, chunk.text))
        if not ids:
            raise IndexMissingError(place.description)
        bm25 = None
        bm25_dir = place.bm25_dir(manifest.generation)
        if bm25_dir is not None and (bm25_dir / "chunk_ids.json").exists():
            try:
                bm25 = BM25Index.load(bm25_dir)
            except Exception as err:  # a damaged file: rebuild in memory instead
                log.warning("BM25 index unreadable (%s); rebuilding it in memory", err)
        if bm25 is None or set(bm25.ids) != set(ids):
            bm25 = build_bm25(ids, texts)
        log.info("loaded index generation %s: %d papers, %d chunks", manifest.generation, len(papers), len(ids))
        return _Snapshot(manifest, text_of, chunk_paper, papers, bm25, collection)

    def _lean(self, manifest: Manifest, collection) -> tuple[dict[str, Paper], dict[str, str], BM25Index] | None:
        """The papers (from their first chunks), each chunk's paper and the saved BM25 index, without reading every
        chunk: when the generation has a BM25 index on disk that names every chunk of the collection, else None."""
        place = self.index.place
        bm25_dir = place.bm25_dir(manifest.generation)
        if bm25_dir is None or not (bm25_dir / "chunk_ids.json").exists():
            return None
        try:
            bm25 = BM25Index.load(bm25_dir)
        except Exception as err:  # a damaged file: the full read rebuilds it
            log.warning("BM25 index unreadable (%s); reading every chunk instead", err)
            return None
        papers = stored_papers(collection, place.description)
        chunk_paper = {cid: paper_of_chunk(cid) for cid in bm25.ids}
        if len(chunk_paper) != collection.count() or not set(chunk_paper.values()) <= papers.keys():
            return None
        return papers, chunk_paper, bm25

    def snapshot(self) -> _Snapshot:
        """The loaded generation in service, reloading it if an ingest replaced it."""
        with self._lock:
            try:
                manifest = self.index.current_manifest()
                if self._snapshot is None or self._snapshot.manifest.generation != manifest.generation:
                    if manifest.embedder != self.embedder.name:
                        raise IndexCorruptError(
                            self.index.place.description,
                            f"it was built with the embedder {manifest.embedder}, not {self.embedder.name}",
                        )
                    self._snapshot = self._load(manifest)
                    self.index.place.close_older(manifest.generation)  # no open files left on what an ingest prunes
                return self._snapshot
            except PaperchatError:
                self._snapshot = None
                raise
            except Exception as err:  # chromadb / sqlite / file errors
                self._snapshot = None
                raise IndexCorruptError(self.index.place.description, f"{type(err).__name__}: {err}") from err

    def papers(self) -> list[Paper]:
        """Every paper in service, by title."""
        return sorted(self.snapshot().papers.values(), key=lambda p: p.title.casefold())

    def search(self, query: str, k: int | None = None, mode: Mode | None = None) -> list[Hit]:
        """The ``k`` best papers for ``query``, best first."""
        snap = self.snapshot()
        k = k or self.settings.retrieval.top_k
        mode = mode or self.settings.retrieval.mode
        n = self.settings.retrieval.candidates
        dense_hits: list[tuple[str, float]] = []
        bm25_hits: list[tuple[str, float]] = []
        try:
            if mode in ("hybrid", "dense"):
                dense_hits = snap.dense(self.embedder.embed([query])[0].tolist(), n)
            if mode in ("hybrid", "bm25"):
                bm25_hits = snap.bm25.search(query, n)
        except PaperchatError:
            raise
        except Exception as err:
            with self._lock:
                self._snapshot = None
            raise IndexCorruptError(self.index.place.description, f"{type(err).__name__}: {err}") from err
        rankings = [[cid for cid, _ in hits] for hits in (dense_hits, bm25_hits) if hits]
        fused = rrf(rankings, k=self.settings.retrieval.rrf_k)
        dense_info = {cid: (rank, s) for rank, (cid, s) in enumerate(dense_hits, start=1)}
        bm25_info = {cid: (rank, s) for rank, (cid, s) in enumerate(bm25_hits, start=1)}
        chosen: dict[str, tuple[str, float]] = {}  # paper id -> its best chunk and score, best papers first
        for cid, score in sorted(fused.items(), key=lambda kv: (-kv[1], kv[0])):
            pid = snap.chunk_paper.get(cid)
            if pid is not None and pid not in chosen:
                chosen[pid] = (cid, score)
                if len(chosen) >= k:
                    break
        texts = snap.texts([cid for cid, _ in chosen.values()])
        best: dict[str, Hit] = {}
        for pid, (cid, score) in chosen.items():
            d_rank, d_sim = dense_info.get(cid, (None, None))
            b_rank, b_score = bm25_info.get(cid, (None, None))
            best[pid] = Hit(
                paper=snap.papers[pid],
                chunk=texts.get(cid, ""),
                chunk_id=cid,
                score=score,
                dense_similarity=d_sim,
                dense_rank=d_rank,
                bm25_score=b_score,
                bm25_rank=b_rank,
            )
        return list(best.values())
