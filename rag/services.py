"""Building the parts of paperchat from settings, in one place: the composition root.

The CLI, the server, the evaluation (:mod:`eval.pipelines`) and the benchmarks build the
index, retriever, model and pipelines through these functions.

Each builder takes the parts it depends on as arguments with defaults, so tests and
other front ends can pass their own (a deterministic embedder, a scripted LLM).
Nothing is built at import time.
"""

from __future__ import annotations

from .embeddings import Embedder, default_embedder
from .retrieval import Retriever
from .settings import Settings
from .store import PaperIndex


def build_index(settings: Settings | None = None, embedder: Embedder | None = None) -> PaperIndex:
    """The paper index the settings describe."""
    settings = settings or Settings()
    return PaperIndex(settings, embedder or default_embedder())


def build_retriever(settings: Settings | None = None, index: PaperIndex | None = None) -> Retriever:
    """A retriever over the index in service."""
    return Retriever(index or build_index(settings))


def build_llm(settings: Settings | None = None, backend: str | None = None):
    """The language model the settings choose, or the named ``backend`` (see :func:`rag.backends.choose_llm`)."""
    from .backends import choose_llm

    return choose_llm(settings or Settings(), backend=backend)


def build_pipeline(settings: Settings | None = None, *, retriever: Retriever | None = None, llm=None, critique: bool | None = None):
    """The answering pipeline, from settings; pass parts to reuse or replace them."""
    from .pipeline import Pipeline

    settings = settings or Settings()
    return Pipeline(settings, retriever or build_retriever(settings), llm or build_llm(settings), critique=critique)
