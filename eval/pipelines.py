"""The pipelines an evaluation compares, behind one protocol, found by name.

Each is something with a ``name`` that answers a question (``ask(question) -> Answer``) and
says which papers it retrieved for it (``retrieved_titles``). paperchat's own
:class:`~paperchat.rag.pipeline.Pipeline` (with or without the critique) takes part through
:class:`PaperchatRun`; the llama-index baseline implements the protocol itself.
:data:`BUILDERS` maps each pipeline name to how it is built from one index and one model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from paperchat.rag.answer import Answer
from paperchat.rag.models import LLM
from paperchat.rag.pipeline import Pipeline
from paperchat.rag.retrieval import Retriever
from paperchat.rag.services import build_pipeline
from paperchat.rag.settings import Settings


class EvalPipeline(Protocol):
    """What the eval runner asks of a pipeline."""

    name: str
    #: the paperchat pipeline whose critique the planted-error checks test (None: it has no critique)
    critiqued: Pipeline | None

    def ask(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Answer:
        """Answer ``question``, a follow-up to the chat turns of ``history`` (raises PaperchatError)."""

    def retrieved_titles(self, question: str, answer: Answer, k: int = 5) -> list[str]:
        """Titles of the papers it retrieves for ``question`` (``answer``: its answer to it), best first."""


class PaperchatRun:
    """A paperchat :class:`~paperchat.rag.pipeline.Pipeline` as an :class:`EvalPipeline`."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.name = pipeline.name
        self.critiqued = pipeline if pipeline.critique else None

    def ask(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Answer:
        return self.pipeline.ask(question, history)

    def retrieved_titles(self, question: str, answer: Answer, k: int = 5) -> list[str]:
        """What paperchat's retriever finds for the question it searched with (the standalone one)."""
        return [h.paper.title for h in self.pipeline.retriever.search(answer.standalone_question, k=k)]


def as_eval(pipeline: object) -> EvalPipeline:
    """``pipeline`` as an :class:`EvalPipeline` (a paperchat Pipeline is wrapped; others already are one)."""
    return PaperchatRun(pipeline) if isinstance(pipeline, Pipeline) else pipeline  # type: ignore[return-value]


def _paperchat(settings: Settings, retriever: Retriever, llm: LLM) -> Pipeline:
    return build_pipeline(settings, retriever=retriever, llm=llm, critique=True)


def _no_critique(settings: Settings, retriever: Retriever, llm: LLM) -> Pipeline:
    return build_pipeline(settings, retriever=retriever, llm=llm, critique=False)


def _baseline(settings: Settings, retriever: Retriever, llm: LLM) -> EvalPipeline:
    from .baseline import BaselinePipeline

    return BaselinePipeline(retriever, llm, settings.answer.max_question_chars)


#: Every pipeline ``paperchat eval --pipelines`` knows, by name, and how to build it.
BUILDERS: dict[str, Callable[[Settings, Retriever, LLM], object]] = {
    "paperchat": _paperchat,
    "no-critique": _no_critique,
    "baseline": _baseline,
}
