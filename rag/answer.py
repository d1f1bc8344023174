"""What the pipeline gives back: the :class:`Answer` record, its parts, and the events :meth:`Pipeline.run` yields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from .critique import ClaimCheck, Verdict
from .models import TokenCounts, Usage
from .shapes import Shape


class Citation(BaseModel):
    """A source the final answer cites."""

    n: int
    title: str
    paper_id: str
    date: str | None = None
    authors: int | None = None
    upvotes: int | None = None
    urls: list[str] = Field(default_factory=list)
    abstract: str
    chunk: str = Field("", description="The indexed chunk that matched the question.")
    supporting: list[str] = Field(default_factory=list, description="Abstract sentences that support the answer.")


class _Stages(BaseModel):
    rewrite: float = 0.0
    retrieval: float = 0.0
    first_token: float | None = None
    draft: float = 0.0
    critique: float = 0.0
    total: float = 0.0


class Timings(TokenCounts, _Stages):
    """Where the time went, in seconds, and what the model did (the token counts are the draft's)."""

    critique_prompt_tokens: int = 0
    critique_cached_tokens: int = 0
    tokens_per_second: float = 0.0

    def count(self, usage: Usage) -> None:
        """Take the draft's token counts and speed from its ``usage``."""
        for name in TokenCounts.model_fields:
            setattr(self, name, getattr(usage, name))
        self.tokens_per_second = round(usage.tokens_per_second, 2)


class AnswerRow(BaseModel):
    """One row of a structured answer: a paper of a list, or one side of a comparison."""

    label: str = Field(description="The paper's title (list) or the side compared (comparison).")
    text: str = Field(description="The checked statement for this row, with its citations.")
    sources: list[int] = Field(default_factory=list, description="Source numbers the statement cites.")
    missing: bool = Field(False, description="Comparison: nothing in the papers states this side.")


class Related(BaseModel):
    """What a cited abstract does state about the thing asked; shown, labelled, with a withheld answer."""

    n: int
    title: str
    sentence: str


class Answer(BaseModel):
    """Everything paperchat says about one question."""

    question: str
    standalone_question: str
    answer: str
    verdict: Verdict
    citations: list[Citation]
    claims: list[ClaimCheck]
    draft: str
    removed: int = 0
    timings: Timings
    backend: str = ""
    model: str = ""
    pipeline: str = "paperchat"
    shape: Shape = Field("factoid", description="The question's shape, which chose how it was answered.")
    rows: list[AnswerRow] = Field(default_factory=list, description="List items or comparison sides, each checked.")
    related: list[Related] = Field(
        default_factory=list, description="With a withheld or refused answer: what the abstracts do state instead."
    )


@dataclass
class Status:
    """A stage began."""

    stage: Literal["rewrite", "retrieval", "draft", "critique"]
    message: str


@dataclass
class Token:
    """A piece of the draft as the model writes it."""

    text: str


@dataclass
class Done:
    """The finished answer."""

    answer: Answer


Event = Status | Token | Done
