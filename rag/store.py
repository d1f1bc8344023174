"""The paper index: chunks and their embeddings in Chroma, through llama-index.

The index is kept as *generations*. An ingest never writes to the generation in
service: it builds a new one aside (copying what is already indexed, then adding the
new papers), marks it complete, and only then moves the "current" pointer to it in
one atomic step. A killed or failed ingest leaves the previous generation serving
untouched. A build that was killed (or interrupted) is resumed by the next ingest of the same
papers on the same base and settings (its generation's name ends in :func:`build_key`): the
chunks it had stored are kept, the rest embedded. Any other half-built generation is swept away.

Generations live in a :class:`~paperchat.rag.places.Place` (local disk or a Chroma server, see
:mod:`paperchat.rag.places`); what one chunk record holds is :mod:`paperchat.rag.records`' business. Whether an
ingest does nothing, adds papers on top of the generation in service or rebuilds is decided
by :func:`plan_ingest`, a pure function of what is asked and what is indexed.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .bm25 import bm25_text, build_bm25
from .corpus import Paper
from .embeddings import Embedder, as_llama_embedding
from .errors import IndexMissingError, IngestError, PaperchatError
from .places import (  # noqa: F401  (LocalPlace, ServerPlace: re-exported for callers of paperchat.rag.store)
    BATCH,
    LocalPlace,
    Manifest,
    Place,
    ServerPlace,
    new_generation_name,
    open_place,
    read_records,
)
from .records import (
    FIRST_CHUNK, Chunk, LeanCollection, bookkeeping, chunk_id, chunk_place, chunk_to_node, embed_text, record_paper, record_to_chunk, waits_for_paper
)
from .settings import Settings
from .tokens import install_global_tokenizer, split_tokens

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


@dataclass
class IngestReport:
    """What an ingest did."""

    generation: str | None
    papers_total: int
    papers_added: int
    chunks_total: int
    chunks_added: int
    rebuilt: bool
    seconds: float = 0.0
    skipped_reason: str = ""
    #: chunks a stopped build of the same papers had already stored, kept instead of embedded again
    resumed: int = 0


def chunk_papers(papers: Sequence[Paper], size: int, overlap: int) -> list[Chunk]:
    """Token chunks of every abstract, with ids stable for equal content and settings."""
    chunks: list[Chunk] = []
    for paper in papers:
        for i, text in enumerate(split_tokens(paper.abstract, size, overlap)):
            chunks.append(Chunk(id=chunk_id(paper.id, i), paper=paper, index=i, text=text))
    return chunks


@dataclass(frozen=True)
class IngestPlan:
    """What an ingest will do, decided before anything is written.

    ``action``: ``"nothing"`` (every paper is indexed already), ``"add"`` (copy generation
    ``base`` and embed ``papers`` on top) or ``"rebuild"`` (embed ``papers``, every paper of
    the new generation, from scratch). ``total``: papers in the new generation.
    """

    action: Literal["nothing", "add", "rebuild"]
    papers: tuple[Paper, ...] = ()
    total: int = 0
    base: str | None = None
    reason: str = field(default="", compare=False)


def plan_ingest(
    papers: Sequence[Paper],
    *,
    current: str | None,
    manifest: Manifest | None,
    compatible: bool,
    indexed: Sequence[Paper] | None,
    rebuild: bool = False,
    replace: bool = False,
) -> IngestPlan:
    """Decide an ingest from plain data.

    ``current``/``manifest``: the generation in service and its manifest (None if none, or
    incomplete); ``compatible``: whether its chunking and embedder match today's settings;
    ``indexed``: its papers, or None if they were not or could not be read. Papers asked for
    win over indexed ones with the same id; ``replace`` drops every paper not asked for.
    """
    old: dict[str, Paper] = {}
    if not replace:
        for p in indexed or ():
            old[p.id] = p
    wanted = {p.id: p for p in papers}
    for pid, p in old.items():
        wanted.setdefault(pid, p)
    if manifest is None:
        reason = "the index in service has no manifest" if current else "there is no index yet"
    elif replace:
        reason = "asked to replace the index"
    elif rebuild:
        reason = "asked to rebuild the index"
    elif not compatible:
        reason = "the index was built with other chunking or embedder settings"
    elif indexed is None:
        reason = "the index in service cannot be read"
    else:
        to_add = tuple(p for pid, p in wanted.items() if pid not in old)
        if not to_add:
            return IngestPlan("nothing", total=manifest.papers, base=current, reason="every paper is already indexed")
        return IngestPlan("add", to_add, len(wanted), current, f"{len(to_add)} new papers")
    return IngestPlan("rebuild", tuple(wanted.values()), len(wanted), None, reason)


class PaperIndex:
    """Builds and opens the index; one per process is enough."""

    def __init__(self, settings: Settings, embedder: Embedder, place: Place | None = None):
        self.settings = settings
        self.embedder = embedder
        self.place = place or open_place(settings)
        install_global_tokenizer()

    # -- reading ---------------------------------------------------------------------

    def current_manifest(self) -> Manifest:
        """The manifest in service; raises IndexMissingError when there is none."""
        name = self.place.current()
        manifest = self.place.manifest(name) if name else None
        if manifest is None:
            raise IndexMissingError(self.place.description)
        return manifest

    def papers(self) -> list[Paper]:
        """Every indexed paper, in title order."""
        papers = self.papers_of(self.current_manifest().generation)
        return sorted(papers, key=lambda p: p.title.casefold())

    # -- writing ---------------------------------------------------------------------

    def ingest(
        self, papers: Sequence[Paper], *, rebuild: bool = False, replace: bool = False, progress: Progress = _no_progress
    ) -> IngestReport:
        """Add ``papers`` to the index (or make it exactly them with ``replace``) in a new generation.

        Re-ingesting papers already indexed changes nothing. Raises IngestError if building fails;
        the generation in service is never modified.
        """
        started = time.perf_counter()
        with self.place.ingest_lock():
            current = self.place.current()
            manifest = self.place.manifest(current) if current else None
            if current and manifest is None:
                log.warning("generation %s in service has no manifest; rebuilding", current)
            indexed: list[Paper] | None = None
            if manifest is not None and not replace:
                try:
                    indexed = self.papers_of(current)
                except Exception as err:  # a damaged generation in service: rebuild from what we were given
                    log.warning("the index in service cannot be read (%s); rebuilding it from the given papers", err)
            plan = plan_ingest(
                papers,
                current=current,
                manifest=manifest,
                compatible=manifest is not None and manifest.compatible(self.settings, self.embedder),
                indexed=indexed,
                rebuild=rebuild,
                replace=replace,
            )
            if plan.action == "nothing":
                self._sweep(keep=None)
                return IngestReport(
                    generation=current,
                    papers_total=manifest.papers,
                    papers_added=0,
                    chunks_total=manifest.chunks,
                    chunks_added=0,
                    rebuilt=False,
                    seconds=time.perf_counter() - started,
                    skipped_reason=plan.reason,
                )
            if plan.action == "rebuild":
                log.info("rebuilding the index: %s", plan.reason)
            key = build_key(plan, self.settings, self.embedder)
            # a stopped build of the same: incomplete, and newer than the generation in service (names sort by time)
            stopped = [g for g in self.place.generations() if g.endswith(f"-{key}") and g > (current or "")
                       and self.place.manifest(g) is None]
            name = stopped[-1] if stopped else new_generation_name(key)
            self._sweep(keep=name)
            try:
                report = self._build(name, plan.base, plan.papers, plan.total, progress)
            except BaseException as err:
                if isinstance(err, KeyboardInterrupt):
                    raise  # kept: the next ingest of the same papers resumes it
                self.place.remove(name)
                if isinstance(err, PaperchatError) or not isinstance(err, Exception):
                    raise
                raise IngestError(_describe_failure(err, self.settings.data_dir)) from err
            self.place.set_current(name)
            self._prune(keep=(name, current))
            report.seconds = time.perf_counter() - started
            report.rebuilt = plan.action == "rebuild"
            return report

    def papers_of(self, generation: str) -> list[Paper]:
        """Papers of a given generation (used to carry them over)."""
        return list(stored_papers(self.place.collection(generation), self.place.description).values())

    def _build(self, name: str, base: str | None, papers: Sequence[Paper], total_papers: int, progress: Progress):
        """Fill generation ``name``: copy ``base``'s records, embed ``papers``, build BM25, write the manifest."""
        collection = self.place.collection(name, create=True)
        stored = {rec["id"] for rec in read_records(collection, include=())}  # what a stopped build of it left
        if stored:
            log.info("resuming the stopped build %s: %d chunks already stored", name, len(stored))
        copied = self._copy_base(collection, base, progress, stored) if base is not None else 0
        chunks = chunk_papers(papers, self.settings.index.chunk_tokens, self.settings.index.chunk_overlap)
        self._embed_chunks(collection, [c for c in chunks if c.id not in stored], progress)
        total_chunks = collection.count()
        if total_chunks != copied + len(chunks):
            raise IngestError(f"expected {copied + len(chunks)} chunks in the new index, found {total_chunks}")
        self._build_bm25(name, collection, progress)
        self.place.write_manifest(
            name,
            Manifest(
                generation=name,
                created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                embedder=self.embedder.name,
                dim=self.embedder.dim,
                chunk_tokens=self.settings.index.chunk_tokens,
                chunk_overlap=self.settings.index.chunk_overlap,
                papers=total_papers,
                chunks=total_chunks,
            ),
        )
        return IngestReport(
            generation=name,
            papers_total=total_papers,
            papers_added=len(papers) if base else total_papers,
            chunks_total=total_chunks,
            chunks_added=len(chunks),
            rebuilt=base is None,
            resumed=len(stored),
        )

    def _copy_base(self, collection, base: str, progress: Progress, stored: set[str] = frozenset()) -> int:
        """Copy every record of generation ``base`` into ``collection`` (vectors too: nothing is re-embedded), but
        those ``stored`` already; returns how many ``base`` holds."""
        source = self.place.collection(base)
        collection = LeanCollection(collection)  # an index written before the copy was left out sheds it here
        count = source.count()
        copied = 0
        batch: dict[str, list] = {"ids": [], "embeddings": [], "documents": [], "metadatas": []}
        for rec in read_records(source, include=("embeddings", "documents", "metadatas")):
            if rec["id"] in stored:
                copied += 1
                continue
            batch["ids"].append(rec["id"])
            for key in ("embeddings", "documents", "metadatas"):
                batch[key].append(rec[key])
            if len(batch["ids"]) >= BATCH:
                collection.add(**batch)
                copied += len(batch["ids"])
                progress("copy", copied, count)
                batch = {k: [] for k in batch}
        if batch["ids"]:
            collection.add(**batch)
            copied += len(batch["ids"])
            progress("copy", copied, count)
        return copied

    def _embed_chunks(self, collection, chunks, progress: Progress) -> None:
        """Embed ``chunks`` in batches and insert them through llama-index's Chroma vector store."""
        from llama_index.core import VectorStoreIndex
        from llama_index.vector_stores.chroma import ChromaVectorStore

        store = ChromaVectorStore(chroma_collection=LeanCollection(collection))
        index = VectorStoreIndex.from_vector_store(
            store, embed_model=as_llama_embedding(self.embedder, self.settings.index.embed_batch)
        )
        step = max(self.settings.index.embed_batch, self.embedder.batch)
        progress("embed", 0, len(chunks))
        for start in range(0, len(chunks), step):
            part = chunks[start : start + step]
            vectors = self.embedder.embed([embed_text(c) for c in part])
            index.insert_nodes([chunk_to_node(c, v.tolist()) for c, v in zip(part, vectors)])
            progress("embed", start + len(part), len(chunks))

    def _build_bm25(self, name: str, collection, progress: Progress) -> None:
        """Build the generation's BM25 index from every record of ``collection``, where the place keeps one."""
        bm25_dir = self.place.bm25_dir(name)
        if bm25_dir is None:
            return
        ids, texts, places = [], [], []
        for chunk in stored_chunks(collection, self.place.description):
            ids.append(chunk.id)
            texts.append(bm25_text(chunk.paper.title, chunk.text))
            places.append(chunk_place(chunk))
        progress("bm25", 0, 1)
        build_bm25(ids, texts, places).save(bm25_dir)
        progress("bm25", 1, 1)

    def _sweep(self, keep: str | None) -> None:
        """Remove generations left incomplete by an ingest that died, but ``keep`` (we hold the lock)."""
        current = self.place.current()
        for name in self.place.generations():
            if name not in (current, keep) and self.place.manifest(name) is None:
                log.info("removing incomplete index generation %s", name)
                self.place.remove(name)

    def _prune(self, keep: tuple[str | None, ...]) -> None:
        """Keep the new generation and the one it replaced (a reader may still hold it)."""
        for name in self.place.generations():
            if name not in keep:
                self.place.remove(name)


def build_key(plan: IngestPlan, settings: Settings, embedder: Embedder) -> str:
    """Six hex digits that name what a build makes: its base generation, chunking, embedder and every paper's record
    (so a stopped build is resumed only by an ingest that would build exactly the same)."""
    digest = hashlib.sha256()
    head = [plan.base, embedder.name, embedder.dim, settings.index.chunk_tokens, settings.index.chunk_overlap, plan.total]
    digest.update(json.dumps(head).encode())
    for paper in sorted(plan.papers, key=lambda p: p.id):
        digest.update(paper.model_dump_json().encode())
    return digest.hexdigest()[:6]


def stored_chunks(collection, where: str) -> Iterator[Chunk]:
    """Every chunk of a generation's ``collection`` with its paper, in one streamed pass (``where``: the index's place,
    named in an IndexCorruptError). A paper is read from its first chunk; a later chunk read before it (Chroma does
    not promise an order) waits, without its record's bulk, until the end."""
    papers: dict[str, Paper] = {}
    waiting: list[tuple[str, dict[str, Any], str | None]] = []
    for rec in read_records(collection):
        if waits_for_paper(rec["metadatas"], papers):
            waiting.append((rec["id"], bookkeeping(rec["metadatas"]), rec["documents"]))
            continue
        chunk = record_to_chunk(rec["id"], rec["metadatas"], rec["documents"], where=where, known=papers)
        papers.setdefault(chunk.paper.id, chunk.paper)
        yield chunk
    for record_id, metadata, document in waiting:
        yield record_to_chunk(record_id, metadata, document, where=where, known=papers)


def stored_papers(collection, where: str) -> dict[str, Paper]:
    """The papers a generation's ``collection`` holds, by id, read from each paper's first chunk alone (``where``:
    the index's place, named in an IndexCorruptError)."""
    papers: dict[str, Paper] = {}
    for rec in read_records(collection, include=("metadatas",), where=FIRST_CHUNK):
        paper = record_paper(rec["metadatas"], where=where, record_id=rec["id"])
        papers.setdefault(paper.id, paper)
    return papers


#: Below this much free space, a failed ingest is reported as a full disk.
LOW_DISK_BYTES = 64 * 1024 * 1024


def _describe_failure(err: Exception, where: Path) -> str:
    """Why a build failed, naming a full disk when that is the cause (Chroma's own message often hides it)."""
    detail = f"{type(err).__name__}: {err}"
    full = isinstance(err, OSError) and err.errno == errno.ENOSPC
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        free = None
    if full or (free is not None and free < LOW_DISK_BYTES):
        shown = f"{free / 1e6:.1f} MB free" if free is not None else "no space left"
        return f"the disk holding {where} is full ({shown}; No space left on device); {detail}"
    return detail


def status(settings: Settings, place: Place | None = None) -> dict:
    """A short description of the index, for ``doctor`` and the health endpoint (``place``: one already open)."""
    place = place or open_place(settings)
    name = place.current()
    manifest = place.manifest(name) if name else None
    return {
        "where": place.description,
        "generation": name,
        "ready": manifest is not None,
        "papers": manifest.papers if manifest else 0,
        "chunks": manifest.chunks if manifest else 0,
        "embedder": manifest.embedder if manifest else None,
        "manifest": json.loads(manifest.model_dump_json()) if manifest else None,
    }
