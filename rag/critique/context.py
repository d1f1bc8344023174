"""What the critique's checks read and return: one claim or a whole answer in context, and a check's finding."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..corpus import Paper
from ..shapes import listing_sentence
from .claims import ClaimCheck, Source


@dataclass
class Finding:
    """What a check found: ``reason`` (why the claim is withheld, or what a repair did), ``text`` (a repair: the
    claim's new text), ``notes`` (reasons recorded as they are), ``withhold`` (False: the claim is kept or
    repaired), and for answer-level checks the ``claims`` withheld and a claim ``added`` first."""

    reason: str = ""
    text: str | None = None
    notes: tuple[str, ...] = ()
    withhold: bool = True
    claims: Sequence[ClaimCheck] = ()
    added: ClaimCheck | None = None
    #: answer-level: claims added after the others (the abstract's own sentences that answer the question)
    then: Sequence[ClaimCheck] = ()


@dataclass
class ClaimContext:
    """One claim as the checks read it. ``text`` is the claim as it now reads; ``claim`` is what is compared
    with the sources (a terse answer is read after the question's ask: "47.4% [1]." -> "what rate … 47.4%");
    ``bare``: fewer than two content words; ``terse``: a short answer with facts, read with its question."""

    critic: Any
    check: ClaimCheck
    text: str
    claim: str
    cited: list[int]
    by_n: dict[int, Source]
    question: str = ""
    shape: str = "factoid"
    has_facts: bool = False
    bare: bool = False
    terse: bool = False
    chosen: list[int] = field(default_factory=list)
    repaired: bool = False
    #: the claim checked just before this one (the ``sequence`` stage)
    previous: ClaimCheck | None = None
    #: a which-paper claim made the cited paper's title after its fit to the description was checked
    identity: bool = False
    #: kept for its numbers and names, not its wording (:func:`values_carry`): the re-reader must find each of them
    carried: bool = False
    settled: tuple[str, ...] = ()  # numbers a repair read off the abstract's own structure: not re-read by the model

    @property
    def paper(self) -> Paper:
        """The first chosen source's paper."""
        return self.by_n[self.chosen[0]].paper

    def together(self) -> Paper:
        """The chosen papers as one: a claim citing several answers for them together (comparisons, lists)."""
        papers = [self.by_n[n].paper for n in self.chosen]
        if len(papers) == 1:
            return papers[0]
        return Paper(
            id="+".join(p.id for p in papers),
            title=" / ".join(p.title for p in papers),
            abstract=" ".join(f"{p.abstract} {listing_sentence(p)}" for p in papers),
        )


@dataclass
class AnswerContext:
    """A whole answer as the answer-level checks read it: its claims' checks, the question and its sources."""

    critic: Any
    checks: list[ClaimCheck]
    question: str
    shape: str
    by_n: dict[int, Source]

    @property
    def kept(self) -> list[ClaimCheck]:
        return [c for c in self.checks if c.kept]


@dataclass(frozen=True)
class Check:
    """One named check of the registry."""

    name: str
    stage: str
    run: Callable[[Any], Finding | None]
    applies: Callable[[Any], bool] = lambda ctx: True
    doc: str = ""
