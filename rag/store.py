"""The paper index: chunks and their embeddings in Chroma, through llama-index.

The index is kept as *generations*. An ingest never writes to the generation in
service: it builds a new one aside (copying what is already indexed, then adding the
new papers), marks it complete, and only then moves the "current" pointer to it in
one atomic step. A killed or failed ingest leaves the previous generation serving
untouched; its half-built generation is swept away by the next ingest.

Two places can hold generations, behind one small :class:`Place` seam:

- :class:`LocalPlace`: a Chroma ``PersistentClient`` directory per generation under
  ``DATA_DIR/index``, a ``manifest.json`` written last, and a ``CURRENT`` file
  replaced atomically (``os.replace``);
- :class:`ServerPlace`: a Chroma server (``HttpClient``), one collection per
  generation, the manifest in the collection's metadata and the pointer in a small
  ``<collection>-current`` collection; the ingest lock is a ``<collection>-ingest-lock``
  collection on the same server, so it holds across hosts. Readers look up the pointer on
  every request, so every replica serves a new generation as soon as it is swapped in.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .bm25 import bm25_text, build_bm25
from .corpus import Paper
from .embeddings import Embedder, as_llama_embedding
from .errors import (
    IndexCorruptError,
    IndexMissingError,
    IngestBusyError,
    IngestError,
    PaperchatError,
)
from .settings import Settings
from .tokens import install_global_tokenizer, split_tokens

log = logging.getLogger(__name__)

#: Records copied or added per Chroma call.
BATCH = 512
#: Seconds a Chroma-server ingest lock lasts without a heartbeat (an ingest renews it every third of that).
LOCK_TTL_S = 60.0
#: Chunk metadata keys that are bookkeeping, not text to embed or show the model.
_HIDDEN_KEYS = ["paper_id", "chunk_index", "paper_json"]

Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def chroma_settings():
    """Chroma client settings: no telemetry (it would try the network)."""
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


class Manifest(BaseModel):
    """What a complete generation holds and how it was built."""

    generation: str
    created: str
    embedder: str
    dim: int
    chunk_tokens: int
    chunk_overlap: int
    papers: int
    chunks: int

    def compatible(self, settings: Settings, embedder: Embedder) -> bool:
        """Whether new chunks made now could sit beside this generation's."""
        return (
            self.embedder == embedder.name
            and self.dim == embedder.dim
            and self.chunk_tokens == settings.index.chunk_tokens
            and self.chunk_overlap == settings.index.chunk_overlap
        )


@dataclass
class Chunk:
    """A piece of one paper's abstract, as indexed."""

    id: str
    paper: Paper
    index: int
    text: str


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


def chunk_papers(papers: Sequence[Paper], size: int, overlap: int) -> list[Chunk]:
    """Token chunks of every abstract, with ids stable for equal content and settings."""
    chunks: list[Chunk] = []
    for paper in papers:
        for i, text in enumerate(split_tokens(paper.abstract, size, overlap)):
            chunks.append(Chunk(id=f"{paper.id}-{i:03d}", paper=paper, index=i, text=text))
    return chunks


def _to_node(chunk: Chunk, embedding: list[float]):
    from llama_index.core.schema import TextNode

    return TextNode(
        id_=chunk.id,
        text=chunk.text,
        embedding=embedding,
        metadata={
            "title": chunk.paper.title,
            "paper_id": chunk.paper.id,
            "chunk_index": chunk.index,
            "paper_json": chunk.paper.model_dump_json(),
        },
        excluded_embed_metadata_keys=list(_HIDDEN_KEYS),
        excluded_llm_metadata_keys=list(_HIDDEN_KEYS),
    )


def embed_text(chunk: Chunk) -> str:
    """The text embedded for a chunk: the paper title, then the chunk (as llama-index formats it)."""
    node = _to_node(chunk, [])
    from llama_index.core.schema import MetadataMode

    return node.get_content(metadata_mode=MetadataMode.EMBED)


class Place(ABC):
    """Where generations live; knows how to list, point to and remove them."""

    description: str

    @abstractmethod
    def current(self) -> str | None:
        """Name of the generation in service, if any."""

    @abstractmethod
    def set_current(self, name: str) -> None:
        """Atomically put generation ``name`` in service."""

    @abstractmethod
    def collection(self, name: str, create: bool = False):
        """The Chroma collection of generation ``name``."""

    @abstractmethod
    def manifest(self, name: str) -> Manifest | None:
        """The manifest of a complete generation, else None."""

    @abstractmethod
    def write_manifest(self, name: str, manifest: Manifest) -> None:
        """Mark generation ``name`` complete."""

    @abstractmethod
    def generations(self) -> list[str]:
        """All generation names present, complete or not."""

    @abstractmethod
    def remove(self, name: str) -> None:
        """Delete generation ``name``."""

    def bm25_dir(self, name: str) -> Path | None:
        """Where the generation's BM25 index is saved, if this place keeps files."""
        return None

    def close(self, name: str) -> None:
        """Let go of what this process holds open of generation ``name``."""

    def close_older(self, name: str) -> None:
        """Let go of every generation older than ``name`` (a reader that moved on to ``name``).

        Newer ones are left alone: an ingest in this process may be building one.
        """

    @contextlib.contextmanager
    def ingest_lock(self) -> Iterator[None]:
        """Held for the whole of an ingest."""
        yield


def new_generation_name() -> str:
    """A sortable, unique generation name, e.g. ``g20261124T215000-1a2b3c``."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"g{stamp}-{secrets.token_hex(3)}"


class LocalPlace(Place):
    """Generations as directories of a Chroma PersistentClient on local disk."""

    def __init__(self, root: Path, collection: str):
        self.root = Path(root)
        self.collection_name = collection
        self.description = str(self.root)
        self._clients: dict[str, Any] = {}

    def _dir(self, name: str) -> Path:
        return self.root / name

    def current(self) -> str | None:
        try:
            name = (self.root / "CURRENT").read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise IndexCorruptError(self.description, f"CURRENT unreadable: {err}") from None
        return name or None

    def set_current(self, name: str) -> None:
        tmp = self.root / f".CURRENT.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / "CURRENT")
        with contextlib.suppress(OSError):
            fd = os.open(self.root, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)

    def collection(self, name: str, create: bool = False):
        import chromadb

        path = self._dir(name)
        if not create and not (path / "chroma.sqlite3").exists():
            raise IndexMissingError(str(path))
        path.mkdir(parents=True, exist_ok=True)
        client = self._clients.get(name)
        if client is None:
            client = chromadb.PersistentClient(path=str(path), settings=chroma_settings())
            self._clients[name] = client
        if create:
            return client.get_or_create_collection(
                self.collection_name, embedding_function=None, metadata={"hnsw:space": "cosine"}
            )
        return client.get_collection(self.collection_name, embedding_function=None)

    def manifest(self, name: str) -> Manifest | None:
        try:
            return Manifest.model_validate_json((self._dir(name) / "manifest.json").read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None

    def write_manifest(self, name: str, manifest: Manifest) -> None:
        path = self._dir(name) / "manifest.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(manifest.model_dump_json(indent=2))
        os.replace(tmp, path)

    def generations(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name.startswith("g"))

    def close(self, name: str) -> None:
        client = self._clients.pop(name, None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()  # only this generation's Chroma system (clear_system_cache would drop every one)

    def close_older(self, name: str) -> None:
        for old in [g for g in self._clients if g < name]:
            self.close(old)

    def remove(self, name: str) -> None:
        self.close(name)
        shutil.rmtree(self._dir(name), ignore_errors=True)

    def bm25_dir(self, name: str) -> Path | None:
        return self._dir(name) / "bm25"

    @contextlib.contextmanager
    def ingest_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".ingest.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IngestBusyError(self.description) from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


class ServerPlace(Place):
    """Generations as collections on a Chroma server."""

    def __init__(self, host: str, port: int, ssl: bool, collection: str):
        import chromadb

        self.description = f"chroma server {host}:{port}"
        self.prefix = collection
        try:
            self.client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=chroma_settings())
        except Exception as err:  # chromadb raises ValueError/ConnectionError variants
            raise IndexCorruptError(
                self.description, f"the server does not answer ({err}); check PAPERCHAT_INDEX__CHROMA_HOST/PORT"
            ) from None

    def _coll_name(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def _pointer(self):
        return self.client.get_or_create_collection(f"{self.prefix}-current", embedding_function=None)

    def current(self) -> str | None:
        meta = self._pointer().metadata or {}
        return meta.get("current") or None

    def set_current(self, name: str) -> None:
        self._pointer().modify(metadata={"current": name})

    def collection(self, name: str, create: bool = False):
        if create:
            return self.client.get_or_create_collection(
                self._coll_name(name), embedding_function=None, metadata={"hnsw:space": "cosine"}
            )
        try:
            return self.client.get_collection(self._coll_name(name), embedding_function=None)
        except Exception:
            raise IndexMissingError(f"{self.description}/{self._coll_name(name)}") from None

    def manifest(self, name: str) -> Manifest | None:
        try:
            meta = self.client.get_collection(self._coll_name(name), embedding_function=None).metadata or {}
        except Exception:
            return None
        raw = meta.get("paperchat_manifest")
        return Manifest.model_validate_json(raw) if raw else None

    def write_manifest(self, name: str, manifest: Manifest) -> None:
        coll = self.client.get_collection(self._coll_name(name), embedding_function=None)
        meta = dict(coll.metadata or {})
        meta.pop("hnsw:space", None)  # fixed at creation; may not be modified
        meta["paperchat_manifest"] = manifest.model_dump_json()
        coll.modify(metadata=meta)

    def generations(self) -> list[str]:
        names = [getattr(c, "name", c) for c in self.client.list_collections()]
        start = f"{self.prefix}-g"
        return sorted(n[len(self.prefix) + 1 :] for n in names if n.startswith(start))

    def remove(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.client.delete_collection(self._coll_name(name))

    @contextlib.contextmanager
    def ingest_lock(self) -> Iterator[None]:
        """A lock record on the Chroma server itself, so that ingests on different hosts exclude each other.

        The record is a collection ``<prefix>-ingest-lock`` whose creation is atomic on the server
        (names are unique); its metadata names the owner and an expiry that a heartbeat extends while
        the ingest runs. A lock whose owner died is taken over once it has expired.
        """
        owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        name = f"{self.prefix}-ingest-lock"
        if not self._take_lock(name, owner):
            raise IngestBusyError(self.description)
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(LOCK_TTL_S / 3):
                with contextlib.suppress(Exception):
                    coll = self.client.get_collection(name, embedding_function=None)
                    if (coll.metadata or {}).get("owner") == owner:
                        coll.modify(metadata={"owner": owner, "expires": time.time() + LOCK_TTL_S})

        beat = threading.Thread(target=heartbeat, name="paperchat-ingest-lock", daemon=True)
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join(timeout=5)
            with contextlib.suppress(Exception):
                if (self.client.get_collection(name, embedding_function=None).metadata or {}).get("owner") == owner:
                    self.client.delete_collection(name)

    def _take_lock(self, name: str, owner: str) -> bool:
        for _ in range(2):
            try:
                self.client.create_collection(name, embedding_function=None,
                                              metadata={"owner": owner, "expires": time.time() + LOCK_TTL_S})
                return True
            except Exception:  # the name exists: someone holds the lock (or held it and died)
                try:
                    held = self.client.get_collection(name, embedding_function=None).metadata or {}
                except Exception:
                    continue  # released meanwhile: try again
                if float(held.get("expires", 0)) > time.time():
                    return False
                log.warning("taking over the ingest lock of %s, which expired", held.get("owner", "?"))
                with contextlib.suppress(Exception):
                    self.client.delete_collection(name)
        return False


def open_place(settings: Settings) -> Place:
    """The place the settings point to: a Chroma server if a host is set, else local disk."""
    if settings.index.chroma_host:
        return ServerPlace(
            settings.index.chroma_host,
            settings.index.chroma_port,
            settings.index.chroma_ssl,
            settings.index.collection,
        )
    return LocalPlace(settings.index_dir, settings.index.collection)


def _paper_from_meta(meta: dict) -> Paper:
    return Paper.model_validate_json(meta["paper_json"])


def read_records(collection, include: Sequence[str] = ("documents", "metadatas")) -> Iterator[dict]:
    """Every record of a collection, in batches, as dicts with ``id`` and the included fields."""
    offset = 0
    while True:
        got = collection.get(include=list(include), limit=BATCH, offset=offset)
        ids = got["ids"]
        if not len(ids):
            return
        for i, rid in enumerate(ids):
            rec: dict[str, Any] = {"id": rid}
            for key in include:
                rec[key] = got[key][i]
            yield rec
        offset += len(ids)


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
        import time

        started = time.perf_counter()
        with self.place.ingest_lock():
            self._sweep()
            current = self.place.current()
            manifest = self.place.manifest(current) if current else None
            if current and manifest is None:
                log.warning("generation %s in service has no manifest; rebuilding", current)
            keep_old = manifest is not None and not rebuild and not replace
            if keep_old and not manifest.compatible(self.settings, self.embedder):
                log.info("index was built with other chunking or embedder settings; rebuilding")
                keep_old = False
            old_papers: dict[str, Paper] = {}
            if keep_old or (manifest is not None and not replace):
                try:
                    for p in self.papers_of(current):
                        old_papers[p.id] = p
                except Exception as err:  # a damaged generation in service: rebuild from what we were given
                    log.warning("the index in service cannot be read (%s); rebuilding it from the given papers", err)
                    keep_old = False
            wanted = {p.id: p for p in papers}
            if not replace:
                for pid, p in old_papers.items():
                    wanted.setdefault(pid, p)
            to_add = [p for pid, p in wanted.items() if not keep_old or pid not in old_papers]
            if keep_old and not to_add:
                return IngestReport(
                    generation=current,
                    papers_total=manifest.papers,
                    papers_added=0,
                    chunks_total=manifest.chunks,
                    chunks_added=0,
                    rebuilt=False,
                    seconds=time.perf_counter() - started,
                    skipped_reason="every paper is already indexed",
                )
            name = new_generation_name()
            try:
                report = self._build(name, current if keep_old else None, to_add, len(wanted), progress)
            except BaseException as err:
                self.place.remove(name)
                if isinstance(err, PaperchatError) or not isinstance(err, Exception):
                    raise
                raise IngestError(_describe_failure(err, self.settings.data_dir)) from err
            self.place.set_current(name)
            self._prune(keep=(name, current))
            report.seconds = time.perf_counter() - started
            report.rebuilt = not keep_old
            return report

    def papers_of(self, generation: str) -> list[Paper]:
        """Papers of a given generation (used to carry them over)."""
        seen: dict[str, Paper] = {}
        for rec in read_records(self.place.collection(generation), include=("metadatas",)):
            paper = _paper_from_meta(rec["metadatas"])
            seen.setdefault(paper.id, paper)
        return list(seen.values())

    def _build(self, name: str, base: str | None, papers: Sequence[Paper], total_papers: int, progress: Progress):
        from llama_index.core import VectorStoreIndex
        from llama_index.vector_stores.chroma import ChromaVectorStore

        collection = self.place.collection(name, create=True)
        copied = 0
        if base is not None:
            source = self.place.collection(base)
            count = source.count()
            batch: dict[str, list] = {"ids": [], "embeddings": [], "documents": [], "metadatas": []}
            for rec in read_records(source, include=("embeddings", "documents", "metadatas")):
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

        chunks = chunk_papers(papers, self.settings.index.chunk_tokens, self.settings.index.chunk_overlap)
        store = ChromaVectorStore(chroma_collection=collection)
        index = VectorStoreIndex.from_vector_store(
            store, embed_model=as_llama_embedding(self.embedder, self.settings.index.embed_batch)
        )
        step = self.settings.index.embed_batch
        progress("embed", 0, len(chunks))
        for start in range(0, len(chunks), step):
            part = chunks[start : start + step]
            vectors = self.embedder.embed([embed_text(c) for c in part])
            index.insert_nodes([_to_node(c, v.tolist()) for c, v in zip(part, vectors)])
            progress("embed", start + len(part), len(chunks))

        total_chunks = collection.count()
        if total_chunks != copied + len(chunks):
            raise IngestError(f"expected {copied + len(chunks)} chunks in the new index, found {total_chunks}")
        bm25_dir = self.place.bm25_dir(name)
        if bm25_dir is not None:
            ids, texts = [], []
            for rec in read_records(collection, include=("documents", "metadatas")):
                ids.append(rec["id"])
                texts.append(bm25_text(rec["metadatas"]["title"], rec["documents"]))
            progress("bm25", 0, 1)
            build_bm25(ids, texts).save(bm25_dir)
            progress("bm25", 1, 1)
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
        )

    def _sweep(self) -> None:
        """Remove generations left incomplete by an ingest that died (we hold the lock)."""
        current = self.place.current()
        for name in self.place.generations():
            if name != current and self.place.manifest(name) is None:
                log.info("removing incomplete index generation %s", name)
                self.place.remove(name)

    def _prune(self, keep: tuple[str | None, ...]) -> None:
        """Keep the new generation and the one it replaced (a reader may still hold it)."""
        for name in self.place.generations():
            if name not in keep:
                self.place.remove(name)


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
