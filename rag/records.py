"""The chunk record stored in Chroma: the only module that knows its keys and its score.

Every chunk is one Chroma record: the chunk id, the chunk text as the document, its
embedding, and the metadata ``title``, ``paper_id`` and ``chunk_index``; a paper's first chunk
also holds ``paper_json`` (the whole :class:`~paperchat.rag.corpus.Paper`, stored once per paper:
:data:`FIRST_CHUNK` finds those records), to which llama-index's ``ChromaVectorStore`` adds
its own keys (``_node_type``, ``document_id``...; its ``_node_content`` copy of the node is left
out by :class:`LeanCollection`) from which it rebuilds nodes. The pair :func:`chunk_to_node` / :func:`record_to_chunk` writes and reads that
schema (in the manner of llama-index's ``node_to_metadata_dict`` / ``metadata_dict_to_node``);
:func:`similarity` turns the adapter's score back into a cosine similarity. Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .corpus import Paper
from .errors import IndexCorruptError

TITLE = "title"
PAPER_ID = "paper_id"
CHUNK_INDEX = "chunk_index"
PAPER_JSON = "paper_json"
#: Where a chunk's text stands in its paper's abstract (characters), so the record need not hold the text again.
CHUNK_START, CHUNK_END = "chunk_start", "chunk_end"
#: Metadata keys that are bookkeeping, not text to embed or show the model.
HIDDEN_KEYS = (PAPER_ID, CHUNK_INDEX, PAPER_JSON, CHUNK_START, CHUNK_END)
#: The Chroma ``where`` filter of the records that hold their paper (each paper's first chunk).
FIRST_CHUNK = {CHUNK_INDEX: 0}


@dataclass
class Chunk:
    """A piece of one paper's abstract, as indexed."""

    id: str
    paper: Paper
    index: int
    text: str


class PaperRef(NamedTuple):
    """The paper a llama-index node came from, as far as its metadata tells."""

    paper_id: str
    title: str


def chunk_place(chunk: Chunk) -> tuple[int, int] | None:
    """Where the chunk's text stands in its paper's abstract, word for word, as (start, end); None if it does not.

    >>> chunk_place(Chunk("p1-001", Paper(id="p1", title="T", abstract="A. B."), 1, "B."))
    (3, 5)
    """
    start = chunk.paper.abstract.find(chunk.text)
    return (start, start + len(chunk.text)) if chunk.text and start >= 0 else None


def chunk_metadata(chunk: Chunk) -> dict[str, Any]:
    """The metadata stored with a chunk: the paper's whole record only with its first chunk, and where the chunk's
    text stands in the abstract (when it stands there word for word).

    >>> p = Paper(id="p1", title="T", abstract="A. B.")
    >>> sorted(chunk_metadata(Chunk("p1-000", p, 0, "A.")))
    ['chunk_end', 'chunk_index', 'chunk_start', 'paper_id', 'paper_json', 'title']
    >>> later = chunk_metadata(Chunk("p1-001", p, 1, "B."))
    >>> sorted(later), p.abstract[later["chunk_start"] : later["chunk_end"]]
    (['chunk_end', 'chunk_index', 'chunk_start', 'paper_id', 'title'], 'B.')
    """
    metadata: dict[str, Any] = {TITLE: chunk.paper.title, PAPER_ID: chunk.paper.id, CHUNK_INDEX: chunk.index}
    place = chunk_place(chunk)
    if place is not None:
        metadata[CHUNK_START], metadata[CHUNK_END] = place
    if chunk.index == 0:
        # stored once per paper: a copy per chunk (and llama-index's copy of the metadata in ``_node_content``)
        # made most of a large index's size
        metadata[PAPER_JSON] = chunk.paper.model_dump_json()
    return metadata


#: llama-index's JSON copy of the whole node in each record's metadata: the document and the keys above hold it already
NODE_COPY = "_node_content"


class LeanCollection:
    """A Chroma collection whose ``add`` stores each chunk's text once, in its paper's record: llama-index's
    ``_node_content`` copy of each node is left out, and so is the document of a chunk whose metadata says where
    its text stands in the abstract. Local Chroma keeps a document three more times (a string index and a
    full-text index over it), so at 100k papers the texts were half the index; the readers here rebuild a chunk's
    text from its paper (:func:`chunk_text`), and llama-index rebuilds nodes from the metadata (its legacy path)."""

    def __init__(self, collection: Any):
        self._collection = collection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)

    def add(self, **records: Any) -> Any:
        metadatas = records.get("metadatas")
        if metadatas:
            records["metadatas"] = [{k: v for k, v in m.items() if k != NODE_COPY} for m in metadatas]
            if records.get("documents"):
                records["documents"] = [
                    None if CHUNK_START in (m or {}) else doc for m, doc in zip(metadatas, records["documents"])
                ]
        return self._collection.add(**records)


def chunk_to_node(chunk: Chunk, embedding: list[float]):
    """The llama-index ``TextNode`` of a chunk, which ``ChromaVectorStore`` stores as one record."""
    from llama_index.core.schema import TextNode

    return TextNode(
        id_=chunk.id,
        text=chunk.text,
        embedding=embedding,
        metadata=chunk_metadata(chunk),
        excluded_embed_metadata_keys=list(HIDDEN_KEYS),
        excluded_llm_metadata_keys=list(HIDDEN_KEYS),
    )


def chunk_id(paper_id: str, index: int) -> str:
    """A chunk's record id: its paper's id and its place in the abstract.

    >>> chunk_id("p1", 2), paper_of_chunk(chunk_id("p1-x", 2))
    ('p1-002', 'p1-x')
    """
    return f"{paper_id}-{index:03d}"


def paper_of_chunk(record_id: str) -> str:
    """The paper id of a chunk's record id (:func:`chunk_id`)."""
    return record_id.rsplit("-", 1)[0]


def embed_text(chunk: Chunk) -> str:
    """The text embedded for a chunk: the paper title, then the chunk (as llama-index formats it)."""
    from llama_index.core.schema import MetadataMode

    return chunk_to_node(chunk, []).get_content(metadata_mode=MetadataMode.EMBED)


def _field(metadata: Mapping[str, Any] | None, key: str, record_id: str, where: str) -> Any:
    if not isinstance(metadata, Mapping):
        raise IndexCorruptError(where, f"record {record_id} has no metadata")
    try:
        return metadata[key]
    except KeyError:
        raise IndexCorruptError(where, f"record {record_id} has no {key!r} in its metadata") from None


def record_paper(metadata: Mapping[str, Any] | None, *, where: str, record_id: str = "?") -> Paper:
    """The paper a record belongs to; IndexCorruptError (naming ``where``) if the metadata lacks it."""
    raw = _field(metadata, PAPER_JSON, record_id, where)
    try:
        return Paper.model_validate_json(raw)
    except ValueError as err:
        raise IndexCorruptError(where, f"record {record_id} holds an unreadable paper ({err})") from None


def waits_for_paper(metadata: Mapping[str, Any] | None, known: Mapping[str, Paper]) -> bool:
    """Whether a record's paper is neither in ``known`` nor held by the record itself (a later chunk read before its
    paper's first one: it must wait for it).

    >>> p = Paper(id="p1", title="T", abstract="A. B.")
    >>> later, first = (chunk_metadata(Chunk(f"p1-00{i}", p, i, "A.")) for i in (1, 0))
    >>> waits_for_paper(later, {}), waits_for_paper(first, {}), waits_for_paper(later, {"p1": p})
    (True, False, False)
    """
    if not isinstance(metadata, Mapping) or PAPER_JSON in metadata:
        return False
    return metadata.get(PAPER_ID) not in known


def bookkeeping(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A record's own keys without its bulk (llama-index's copy of the node), for a chunk kept until its paper is read."""
    return {key: metadata[key] for key in (TITLE, PAPER_ID, CHUNK_INDEX, CHUNK_START, CHUNK_END) if key in metadata}


def chunk_text(metadata: Mapping[str, Any] | None, document: str | None, paper: Paper | None) -> str | None:
    """A record's chunk text: its document, else the part of its paper's abstract its metadata points to (None when
    it has neither).

    >>> p = Paper(id="p1", title="T", abstract="First part. Second part.")
    >>> chunk_text({CHUNK_START: 12, CHUNK_END: 24}, None, p), chunk_text({}, "Stored text.", p), chunk_text({}, None, p)
    ('Second part.', 'Stored text.', None)
    """
    if document is not None:
        return document
    metadata = metadata or {}
    if paper is None or CHUNK_START not in metadata or CHUNK_END not in metadata:
        return None
    return paper.abstract[int(metadata[CHUNK_START]) : int(metadata[CHUNK_END])]


def record_to_chunk(
    record_id: str,
    metadata: Mapping[str, Any] | None,
    document: str | None,
    *,
    where: str,
    known: Mapping[str, Paper] | None = None,
) -> Chunk:
    """The chunk a Chroma record holds (``known``: papers already read, by id; a chunk after a paper's first holds
    no paper of its own, so its paper must be among them).

    Raises IndexCorruptError, naming ``where``, when a key or the document is missing.
    """
    paper_id = _field(metadata, PAPER_ID, record_id, where)
    _field(metadata, TITLE, record_id, where)
    index = _field(metadata, CHUNK_INDEX, record_id, where)
    paper = (known or {}).get(paper_id)
    if paper is None:
        paper = record_paper(metadata, where=where, record_id=record_id)
    text = chunk_text(metadata, document, paper)
    if text is None:
        raise IndexCorruptError(where, f"record {record_id} has no text")
    return Chunk(id=record_id, paper=paper, index=int(index), text=text)


def paper_ref(metadata: Mapping[str, Any] | None) -> PaperRef:
    """Paper id and title of a node's metadata, empty where absent (for showing what a stock retriever found).

    >>> paper_ref({"paper_id": "p1", "title": "T"}), paper_ref({})
    (PaperRef(paper_id='p1', title='T'), PaperRef(paper_id='', title=''))
    """
    metadata = metadata or {}
    return PaperRef(str(metadata.get(PAPER_ID, "")), str(metadata.get(TITLE, "")))
