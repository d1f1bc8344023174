"""BM25 over chunks: how a chunk's text is tokenised, indexed, saved and searched.

A leaf: the store builds and saves the index at ingest, the retriever loads and searches it.
Tokens are lower-cased, English stop words removed, Snowball-stemmed (``bm25s``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .text import english_stemmer


def bm25_tokens(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed word lists, as BM25 sees them.

    >>> bm25_tokens(["The critics are criticizing"])
    [['critic', 'critic']]
    """
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", stemmer=english_stemmer(), return_ids=False, show_progress=False)


class BM25Index:
    """A bm25s index with the chunk ids it was built over."""

    def __init__(self, retriever, ids: list[str]):
        self.retriever = retriever
        self.ids = ids

    def save(self, path: Path) -> None:
        path = Path(path)
        self.retriever.save(str(path))
        (path / "chunk_ids.json").write_text(json.dumps(self.ids))

    @classmethod
    def load(cls, path: Path) -> BM25Index:
        import bm25s

        retriever = bm25s.BM25.load(str(path))
        ids = json.loads((Path(path) / "chunk_ids.json").read_text())
        return cls(retriever, ids)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Best ``k`` chunk ids for ``query`` with their BM25 scores (zero-score chunks left out)."""
        vocab = self.retriever.vocab_dict
        tokens = [t for t in bm25_tokens([query])[0] if t in vocab]
        if not tokens or not self.ids:
            return []
        k = min(k, len(self.ids))
        docs, scores = self.retriever.retrieve([tokens], k=k, show_progress=False, n_threads=1)
        return [(self.ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]


def bm25_text(title: str, chunk: str) -> str:
    """What BM25 indexes for a chunk: its paper's title, then the chunk.

    >>> bm25_text("SPELL", "It self-plays.").splitlines()
    ['SPELL', 'It self-plays.']
    """
    return f"{title}\n{chunk}"


def build_bm25(ids: list[str], texts: list[str]) -> BM25Index:
    """Index ``texts`` (aligned with chunk ``ids``) for BM25."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25_tokens(texts), show_progress=False)
    return BM25Index(retriever, list(ids))
