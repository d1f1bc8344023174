"""Where index generations live: one small :class:`Place` seam and its two kinds.

- :class:`LocalPlace`: a Chroma ``PersistentClient`` directory per generation under
  ``DATA_DIR/index``, a ``manifest.json`` written last, and a ``CURRENT`` file
  replaced atomically (``os.replace``);
- :class:`ServerPlace`: a Chroma server (``HttpClient``), one collection per
  generation, the manifest in the collection's metadata and the pointer in a small
  ``<collection>-current`` collection; the ingest lock is a ``<collection>-ingest-lock``
  collection on the same server, so it holds across hosts. Readers look up the pointer on
  every request, so every replica serves a new generation as soon as it is swapped in.

:func:`open_place` picks one from the settings; :func:`read_records` reads a generation's
collection in batches (what a record holds is :mod:`paperchat.rag.records`' business).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .embeddings import Embedder
from .errors import IndexCorruptError, IndexMissingError, IngestBusyError
from .settings import Settings

log = logging.getLogger(__name__)

#: Records read per Chroma call (an ingest also copies and adds this many at once).
BATCH = 512
#: Seconds a Chroma-server ingest lock lasts without a heartbeat (an ingest renews it every third of that).
LOCK_TTL_S = 60.0


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


def new_generation_name(build: str | None = None) -> str:
    """A sortable, unique generation name, e.g. ``g20261124T215000.123456-1a2b3c``, ending in ``build`` (what is
    built, so that a stopped build of the same papers can be found and resumed) or a random suffix.

    The microseconds matter: ingests within one second used to sort by their random suffix, and a
    reader then took a newer generation for an older one (``close_older`` left it open).
    Names without them (before issue 13) still sort before any later one.
    """
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
    return f"g{stamp}-{build or secrets.token_hex(3)}"


#: Seconds :func:`_await_released` waits for Chroma to let go of a closed generation's files.
RELEASE_WAIT_S = 2.0


def _still_shared(client) -> bool:
    """Whether the Chroma system behind a closed ``client`` still runs (other clients of the same path use it)."""
    from chromadb.api.shared_system_client import SharedSystemClient

    return getattr(client, "_identifier", None) in getattr(SharedSystemClient, "_identifier_to_system", {})


def _await_released(path: Path, timeout: float = RELEASE_WAIT_S) -> None:
    """Wait until this process holds no file under ``path`` (Linux; elsewhere return at once).

    Closing a Chroma ``PersistentClient`` drops its Rust bindings, which close the SQLite
    connections and HNSW segment files on their own threads a few milliseconds later (seen:
    11 of 20 closes still held them right after ``close()``, none 0.2 s later). Without this
    wait a generation pruned right after its reader closed it was still held open, deleted,
    when the server answered its next request.
    """
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        return
    prefix = str(path.resolve()) + os.sep
    deadline = time.monotonic() + timeout
    while True:
        held = False
        for fd in os.listdir(fds):
            with contextlib.suppress(OSError):
                if os.readlink(fds / fd).startswith(prefix):
                    held = True
                    break
        if not held:
            return
        if time.monotonic() > deadline:
            log.warning("Chroma still holds files under %s %.0f s after closing it", path, timeout)
            return
        time.sleep(0.01)


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
            if not _still_shared(client):  # another client in this process (an ingest) may keep it open
                _await_released(self._dir(name))

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
        the ingest runs. A lock whose owner died is taken over once it has expired (see :meth:`_take_lock`).
        """
        owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        name = f"{self.prefix}-ingest-lock"
        held = self._take_lock(name, owner)
        if held is None:
            raise IngestBusyError(self.description)
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(LOCK_TTL_S / 3):
                with contextlib.suppress(Exception):
                    # by id: once the lock was taken over (renamed away), this changes nothing
                    held.modify(metadata={"owner": owner, "expires": time.time() + LOCK_TTL_S})

        beat = threading.Thread(target=heartbeat, name="paperchat-ingest-lock", daemon=True)
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join(timeout=5)
            self._retire(held, name, "released")

    def _take_lock(self, name: str, owner: str):
        """The lock collection if this caller now holds the lock, else None (someone else does).

        Only ``create_collection`` decides who holds it: the server creates a name once. An expired
        lock is first renamed away *by its id* to a name of its own (``<lock>-expired-<id>``) and
        deleted under that name, so a taker that read the same expired lock late can at most rename
        or delete that same dead record, never a lock another taker has just created; of the takers
        that then call ``create_collection``, exactly one wins.
        """
        for _ in range(3):
            try:
                return self.client.create_collection(
                    name, embedding_function=None, metadata={"owner": owner, "expires": time.time() + LOCK_TTL_S}
                )
            except Exception:  # the name exists: someone holds the lock (or held it and died)
                pass
            try:
                held = self.client.get_collection(name, embedding_function=None)
            except Exception:
                continue  # released meanwhile: try again
            meta = held.metadata or {}
            if float(meta.get("expires", 0)) > time.time():
                return None
            log.warning("taking over the ingest lock of %s, which expired", meta.get("owner", "?"))
            self._retire(held, name, "expired")
        return None

    def _retire(self, held, name: str, why: str) -> None:
        """Remove exactly this lock record (not whatever now carries the lock's name)."""
        grave = f"{name}-{why}-{held.id}"
        with contextlib.suppress(Exception):
            held.modify(name=grave)  # by id; fails if the record is already gone
        with contextlib.suppress(Exception):
            self.client.delete_collection(grave)


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


def read_records(
    collection, include: Sequence[str] = ("documents", "metadatas"), where: dict | None = None
) -> Iterator[dict]:
    """Every record of a collection (those matching the ``where`` filter), in batches, as dicts with ``id`` and the
    included fields."""
    if where is not None:
        # paging a filtered read by offset filters the collection again for every page (100k papers' first chunks:
        # 51 s): the matching ids are taken in one pass, then read by id
        matching = collection.get(where=where, include=[])["ids"]
        for start in range(0, len(matching), BATCH):
            yield from _as_records(collection.get(ids=matching[start : start + BATCH], include=list(include)), include)
        return
    offset = 0
    while True:
        got = collection.get(include=list(include), limit=BATCH, offset=offset)
        if not len(got["ids"]):
            return
        yield from _as_records(got, include)
        offset += len(got["ids"])


def _as_records(got: dict, include: Sequence[str]) -> Iterator[dict]:
    for i, rid in enumerate(got["ids"]):
        rec: dict[str, Any] = {"id": rid}
        for key in include:
            rec[key] = got[key][i]
        yield rec
