"""The chunk record schema: written and read back by one pair of pure functions."""

from __future__ import annotations

import pytest

from paperchat.rag.corpus import Paper
from paperchat.rag.errors import IndexCorruptError
from paperchat.rag.records import (
    CHUNK_END,
    CHUNK_START,
    PAPER_JSON,
    TITLE,
    Chunk,
    LeanCollection,
    chunk_metadata,
    chunk_to_node,
    embed_text,
    paper_ref,
    record_paper,
    record_to_chunk,
)

PAPER = Paper(id="p1", title="Quokka Routing", abstract="We route packets. Then more.", authors=3,
              date="Aug 11", upvotes=2, urls=["https://example.org"], sources=["extra.jsonl"])
FIRST = Chunk(id="p1-000", paper=PAPER, index=0, text="We route packets.")
CHUNK = Chunk(id="p1-001", paper=PAPER, index=1, text="Then more.")


def test_a_chunk_round_trips_through_its_record():
    meta = chunk_metadata(FIRST)
    assert record_to_chunk(FIRST.id, meta, FIRST.text, where="here") == FIRST
    assert record_paper(meta, where="here") == PAPER


def test_the_paper_is_stored_with_its_first_chunk_only_and_later_chunks_read_it_from_there():
    later = chunk_metadata(CHUNK)
    assert PAPER_JSON not in later and len(str(later)) < len(str(chunk_metadata(FIRST))) / 2
    assert record_to_chunk(CHUNK.id, later, CHUNK.text, where="here", known={"p1": PAPER}) == CHUNK
    with pytest.raises(IndexCorruptError, match="record p1-001 has no 'paper_json'"):
        record_to_chunk(CHUNK.id, later, CHUNK.text, where="here")  # its first chunk not read: the index is damaged


def test_a_chunk_round_trips_through_the_chroma_adapter_as_it_stores_nodes():
    from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

    node = chunk_to_node(FIRST, [0.1, 0.2])
    stored = node_to_metadata_dict(node, remove_text=True, flat_metadata=True)  # what ChromaVectorStore.add writes
    assert "_node_content" in stored
    assert record_to_chunk(FIRST.id, stored, node.get_content(), where="here") == FIRST
    back = metadata_dict_to_node(stored, text=FIRST.text)
    assert paper_ref(back.metadata) == ("p1", "Quokka Routing")


def test_known_papers_are_reused_not_parsed_again():
    meta = dict(chunk_metadata(CHUNK), paper_json="not json")
    assert record_to_chunk(CHUNK.id, meta, CHUNK.text, where="here", known={"p1": PAPER}).paper is PAPER


def test_embedded_text_is_the_title_then_the_chunk_without_bookkeeping():
    text = embed_text(CHUNK)
    assert "Quokka Routing" in text and text.endswith("Then more.")
    assert "paper_json" not in text and "p1" not in text.replace("p1-", "")


@pytest.mark.parametrize("key", [TITLE, "paper_id", "chunk_index", PAPER_JSON])
def test_a_record_missing_a_key_is_a_corrupt_index_not_a_key_error(key):
    meta = chunk_metadata(FIRST)
    del meta[key]
    with pytest.raises(IndexCorruptError, match=f"at /data/index cannot be read .*record p1-000 has no '{key}'") as err:
        record_to_chunk(FIRST.id, meta, FIRST.text, where="/data/index")
    assert "paperchat ingest --rebuild" in str(err.value)


def test_no_metadata_no_text_or_a_broken_paper_are_corrupt_too():
    with pytest.raises(IndexCorruptError, match="has no metadata"):
        record_to_chunk("x", None, "t", where="w")
    # a record with neither a document nor the place of its text in the abstract
    unplaced = {k: v for k, v in chunk_metadata(FIRST).items() if k not in (CHUNK_START, CHUNK_END)}
    with pytest.raises(IndexCorruptError, match="has no text"):
        record_to_chunk("x", unplaced, None, where="w")
    with pytest.raises(IndexCorruptError, match="unreadable paper"):
        record_paper({PAPER_JSON: "{"}, where="w", record_id="x")


def test_a_chunk_is_stored_once_in_its_papers_record_and_read_back_whole():
    # the document is left out where the metadata says where the text stands in the abstract
    class Recording:
        def add(self, **records):
            self.records = records

    inner = Recording()
    metas = [chunk_metadata(FIRST), chunk_metadata(CHUNK), {"paper_id": "old", "chunk_index": 0}]
    LeanCollection(inner).add(ids=["a", "b", "c"], documents=[FIRST.text, CHUNK.text, "kept"], metadatas=metas)
    assert inner.records["documents"] == [None, None, "kept"]
    assert record_to_chunk(CHUNK.id, metas[1], None, where="w", known={"p1": PAPER}).text == "Then more."
    assert record_to_chunk(FIRST.id, metas[0], None, where="w").text == "We route packets."
    # a chunk whose text is not the abstract's word for word keeps its document
    odd = Chunk(id="p1-002", paper=PAPER, index=2, text="Not in the abstract.")
    assert CHUNK_START not in chunk_metadata(odd)


def test_only_records_names_the_stored_keys():
    from .conftest import ROOT

    readers = [
        path.relative_to(ROOT).as_posix()
        for package in ("rag", "ui", "eval", "bench")
        for path in sorted((ROOT / package).rglob("*.py"))
        if any(key in path.read_text(encoding="utf-8") for key in ('"paper_json"', '"_node_content"', "math.log("))
    ]
    assert readers == ["rag/records.py"]
