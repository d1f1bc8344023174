"""BM25 over chunks: how a chunk's text is tokenised, indexed, saved and searched.

A leaf: the store builds and saves the index at ingest, the retriever loads and searches it.
Tokens are lower-cased, English stop words removed, Snowball-stemmed (``bm25s``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .text import english_stemmer

#: Beside the saved index: where each chunk's text stands in its abstract, as ``[start, end]`` (or null).
PLACES_FILE = "chunk_places.json"


def bm25_tokens(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed word lists, as BM25 sees them.

    >>> bm25_tokens(["The critics are criticizing"])
    [['critic', 'critic']]
    """
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", stemmer=english_stemmer(), return_ids=False, show_progress=False)


class BM25Index:
    """A bm25s index with the chunk ids it was built over."""

    def __init__(self, retriever, ids: list[str], places: list[tuple[int, int] | None] | None = None):
        self.retriever = retriever
        self.ids = ids
        #: where each chunk's text stands in its paper's abstract (aligned with ``ids``; None where unknown), so
        #: that a search reads no chunk record to show what it found
        self.places = places

    def save(self, path: Path) -> None:
        path = Path(path)
        self.retriever.save(str(path))
        (path / "chunk_ids.json").write_text(json.dumps(self.ids))
        if self.places is not None:
            (path / PLACES_FILE).write_text(json.dumps(self.places))

    @classmethod
    def load(cls, path: Path) -> BM25Index:
        import bm25s

        retriever = bm25s.BM25.load(str(path))
        ids = json.loads((Path(path) / "chunk_ids.json").read_text())
        places_file = Path(path) / PLACES_FILE
        places = None
        if places_file.exists():  # indexes saved before places were kept have none: their texts are read when found
            loaded = json.loads(places_file.read_text())
            places = [tuple(p) if p else None for p in loaded] if len(loaded) == len(ids) else None
        return cls(retriever, ids, places)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Best ``k`` chunk ids for ``query`` with their BM25 scores (zero-score chunks left out)."""
        vocab = self.retriever.vocab_dict
        tokens = [t for t in bm25_tokens([query])[0] if t in vocab]
        if not tokens or not self.ids:
            return []
        k = min(k, len(self.ids))
        if self.retriever.nonoccurrence_array is None:
            scores = self._scores([vocab[t] for t in tokens])
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            top = top[np.lexsort((top, -scores[top]))]
            return [(self.ids[int(d)], float(scores[d])) for d in top if scores[d] > 0]
        docs, scores = self.retriever.retrieve([tokens], k=k, show_progress=False, n_threads=1)
        return [(self.ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]

    def _scores(self, token_ids: list[int]) -> np.ndarray:
        """Every chunk's BM25 score for the query tokens ``token_ids``, summed from the saved per-token scores.

        bm25s sums them with ``np.add.at`` when numba is absent: measured at 100k chunks on 2 cores, a query of
        common words took tens of milliseconds that ``np.bincount`` does in a few."""
        s = self.retriever.scores
        indptr = s["indptr"]
        spans = [(int(indptr[t]), int(indptr[t + 1])) for t in token_ids]
        indices = np.concatenate([s["indices"][a:b] for a, b in spans])
        data = np.concatenate([s["data"][a:b] for a, b in spans])
        return np.bincount(indices, weights=data, minlength=int(s["num_docs"])).astype(np.float32)


def bm25_text(title: str, chunk: str) -> str:
    """What BM25 indexes for a chunk: its paper's title, then the chunk.

    >>> bm25_text("SPELL", "It self-plays.").splitlines()
    ['SPELL', 'It self-plays.']
    """
    return f"{title}\n{chunk}"


def build_bm25(ids: list[str], texts: list[str], places: list[tuple[int, int] | None] | None = None) -> BM25Index:
    """Index ``texts`` (aligned with chunk ``ids``, and ``places`` where given) for BM25."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25_tokens(texts), show_progress=False)
    return BM25Index(retriever, list(ids), places)
