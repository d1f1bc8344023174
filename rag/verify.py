"""Verification by re-reading: a claim's load-bearing parts re-derived from the cited abstract by the model.

Each number and each name of a claim that the question did not already give is blanked, one at a time,
and the model fills the blank with words copied from the cited abstract, or says it is not stated
(QA-based consistency checking, as in QAGS / QuestEval, and Chain-of-Verification). The model reads the
abstract, not the draft's reasoning, so it cannot repeat the draft's mistake. The outcome of each blank:

- the same value (after normalising case, number forms and units): the part is kept;
- another value that the abstract holds: the draft bound the wrong value (a rival's score, a benchmark
  named as the model): the claim is repaired with the abstract's own words;
- not stated: the abstract does not give it; the claim is withheld unless the abstract holds the claim's
  value word for word (the model could not place it, which is no evidence against it).

Every request starts with the same system message and the paper's abstract, byte for byte, so checks of
one paper share the model's prompt cache; only the statement with its blank differs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from . import prompts
from .corpus import Paper
from .errors import PaperchatError
from .models import LLM, Message, Request
from .text import INJECTION, STOPWORDS, fold, name_in, names, number_in, numbers, proper_nouns, split_sentences

log = logging.getLogger("paperchat")

Outcome = Literal["same", "different", "not stated", "unreadable"]

_NOT_STATED = re.compile(
    r"^\W*(?:not\s+(?:stated|mentioned|given|specified|provided|reported)|n/?a|none|unknown|unclear|no\s+answer)\b",
    re.IGNORECASE,
)
_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "billion": 1e9, "t": 1e12, "trillion": 1e12}
_VALUE = re.compile(r"(\d+(?:,\d{3})*(?:\.\d+)?)\s*(k|m|b|t|thousand|million|billion|trillion)?(?![a-z])", re.IGNORECASE)


@dataclass
class Blank:
    """One load-bearing part of a claim: its text as the claim gives it, where it is, and its kind."""

    value: str
    start: int
    end: int
    kind: Literal["number", "name"]

    def blanked(self, claim: str) -> str:
        """The claim with this part replaced by a blank."""
        return f"{claim[: self.start]}{prompts.BLANK}{claim[self.end :]}"


@dataclass
class Reading:
    """What the model read into one blank, and how it compares with the claim's value."""

    blank: Blank
    filled: str
    outcome: Outcome
    reason: str


@dataclass
class Reread:
    """The result of re-reading one claim: kept, repaired (``text`` holds the repair) or withheld, with reasons."""

    verdict: Literal["kept", "repaired", "withheld"]
    text: str
    readings: list[Reading] = field(default_factory=list)
    calls: int = 0

    @property
    def reasons(self) -> list[str]:
        return [r.reason for r in self.readings if r.reason]


def as_value(text: str) -> float | None:
    """The first number of ``text`` as a float, its scale word applied ("13K" -> 13000.0, "1,200" -> 1200.0).

    >>> as_value("13K examples"), as_value("1,200 tasks"), as_value("47.4%"), as_value("2.5 billion"), as_value("none")
    (13000.0, 1200.0, 47.4, 2500000000.0, None)
    """
    m = _VALUE.search(text)
    if not m:
        return None
    value = float(m.group(1).replace(",", ""))
    return value * _SCALE.get((m.group(2) or "").lower(), 1.0)


def same_value(claimed: str, filled: str, kind: str) -> bool:
    """Whether the model's fill gives the claim's value: a number equal to it, or the name (either within the other,
    ignoring case, spaces and hyphens).

    >>> same_value("67.5", "67.5 F1", "number"), same_value("13K", "13,000", "number"), same_value("67.5", "66.4", "number")
    (True, True, False)
    >>> same_value("Qwen-2.5-7B", "the Qwen2.5 7B backbone", "name"), same_value("GPT-4o", "ProcessBench", "name")
    (True, False)
    """
    if kind == "number":
        want = as_value(claimed)
        got = [as_value(m.group(0)) for m in _VALUE.finditer(filled)]
        return want is not None and any(g is not None and abs(g - want) <= 1e-9 * max(1.0, abs(want)) for g in got)
    a, b = _squash(claimed), _squash(filled)
    return bool(a and b) and (a in b or b in a)


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", fold(text))


def blanks(claim: str, given: str = "", paper: Paper | None = None, limit: int = 4) -> list[Blank]:
    """The claim's load-bearing parts worth re-reading, first ``limit`` of them: its numbers (with a unit that
    follows them) and its names, except names that ``given`` (the question) already states and the paper's own name.

    >>> [b.value for b in blanks("SPARK reaches 67.5 F1 on ProcessBench, above GPT-4o at 61.9.", "What does SPARK get?")]
    ['67.5', '61.9', 'ProcessBench', 'GPT-4o']
    >>> [b.value for b in blanks("It trains on 13K examples.", "How much data did it use?")]
    ['13K']
    """
    found: list[Blank] = []
    taken: list[tuple[int, int]] = []

    def add(value: str, kind: str) -> None:
        for m in re.finditer(rf"(?<![\w.\-]){re.escape(value)}(?![\w\-])", claim):
            span = (m.start(), m.end())
            if not any(s < span[1] and span[0] < e for s, e in taken):
                taken.append(span)
                found.append(Blank(value, span[0], span[1], kind))  # type: ignore[arg-type]
                return

    own = fold(paper.title.split(":")[0]) if paper is not None else ""
    for value in numbers(claim) + _magnitudes(claim):
        add(value, "number")  # a number the question states is checked too: it may be a false premise
    for name in names(claim):
        if given and name_in(name, given):
            continue
        if own and fold(name) in own:  # the paper's own name: blanking the subject asks nothing
            continue
        if len(name) <= 2 or re.fullmatch(r"\d+[A-Za-z]?", name):  # "F1", "3D", "13B": a metric or a size, not a name
            continue
        add(name, "name")
    return found[:limit]


def _magnitudes(claim: str) -> list[str]:
    """Amounts with a scale letter ("13K", "2.5B") that :func:`numbers` leaves to names."""
    return [m.group(0) for m in re.finditer(r"(?<![\w.\-])\d+(?:\.\d+)?[KMBT](?![\w\-])", claim)]


class Rereader:
    """Re-reads claims against one abstract at a time through ``llm`` (any backend of the :class:`LLM` seam)."""

    def __init__(self, llm: LLM, *, max_blanks: int = 4, max_tokens: int = 24):
        self.llm = llm
        self.max_blanks = max_blanks
        self.max_tokens = max_tokens
        self.calls = 0

    def fill(self, statement: str, paper: Paper, task: str | None = None) -> str:
        """The model's fill for the blank of ``statement`` (or its reply to ``task``), from ``paper``'s abstract alone."""
        # sentences that read as instructions to a model are never shown to it, here as in the draft's evidence
        abstract = " ".join(s for s in split_sentences(paper.abstract) if not INJECTION.search(s))
        messages = [Message(r, c) for r, c in prompts.reread_messages(paper.title, abstract, statement, task)]
        self.calls += 1
        reply = self.llm.complete(Request(messages, max_tokens=self.max_tokens, temperature=0.0, stop=("\n",)))
        return " ".join(reply.text.strip().strip('"').split())

    def answer(self, question: str, paper: Paper) -> str:
        """The question answered again from ``paper``'s abstract alone ('' when the model cannot be asked)."""
        try:
            return self.fill("", paper, prompts.REREAD_ANSWER.format(question=question))
        except PaperchatError as err:
            log.warning("re-reading failed (%s)", err)
            return ""

    def answers_with(self, claim: str, question: str, paper: Paper) -> bool:
        """Whether the model, answering ``question`` from the abstract alone, gives every number of ``claim`` (so the
        claim's numbers are the ones asked for, whatever words the question used)."""
        values = numbers(claim) + _magnitudes(claim)
        if not values:
            return False
        reply = self.answer(question, paper)
        return bool(reply) and not _NOT_STATED.match(reply) and all(same_value(v, reply, "number") for v in values)

    def read(self, blank: Blank, claim: str, paper: Paper, context: str = "") -> Reading:
        """Fill one blank from the abstract and compare it with the claim's value; a short answer is read after the
        question it answers (``context``)."""
        statement = blank.blanked(claim)
        if context:
            statement = f"{prompts.REREAD_CONTEXT.format(question=context)} {statement}"
        try:
            filled = self.fill(statement, paper)
        except PaperchatError as err:
            log.warning("re-reading failed (%s); the claim keeps the other checks' verdict", err)
            return Reading(blank, "", "unreadable", "")
        if not filled or _NOT_STATED.match(filled):
            return Reading(blank, filled, "not stated", f"re-read: the abstract does not state {blank.value}")
        if same_value(blank.value, filled, blank.kind):
            return Reading(blank, filled, "same", "")
        return Reading(blank, filled, "different", f"re-read: the abstract gives {filled!r} where the claim has {blank.value}")

    def _confirmed(self, blank: Blank, claim: str, paper: Paper, repair: str) -> bool:
        """A second reading, asked another way, gives the first reading's value (not the claim's)."""
        task = prompts.REREAD_AGAIN.format(statement=blank.blanked(claim), blank=prompts.BLANK)
        try:
            again = self.fill("", paper, task)
        except PaperchatError:
            return False
        return same_value(repair, again, blank.kind) and not same_value(blank.value, again, blank.kind)

    def check(
        self, claim: str, paper: Paper, given: str = "", context: str = "", strict: bool = False,
        settled: Sequence[str] = (),
    ) -> Reread:
        """Re-read ``claim`` against ``paper``: kept, repaired with the abstract's value, or withheld. ``given``: the
        question (its names are not re-read); ``context``: the question a short answer is read after; ``strict``: a
        claim whose wording the abstract does not back, so each value must be read back, not merely occur there;
        ``settled``: values already read off the abstract's structure (a "respectively" list), not asked again."""
        before = self.calls
        text = claim
        readings: list[Reading] = []
        verdict: Literal["kept", "repaired", "withheld"] = "kept"
        source = f"{paper.title}. {paper.abstract}"
        found = [b for b in blanks(claim, given, paper, self.max_blanks + len(settled)) if b.value not in settled]
        for blank in sorted(found[: self.max_blanks], key=lambda b: -b.start):
            reading = self.read(blank, claim, paper, context)
            if reading.outcome == "not stated":
                if _holds(blank, source) and not strict:
                    reading.outcome, reading.reason = "same", ""  # the abstract has it word for word
                else:
                    verdict = "withheld"
            elif reading.outcome == "different":
                repair = _repair_value(blank, reading.filled, source)
                if repair is not None and stated_in(repair, f"{claim[: blank.start]} {claim[blank.end :]}"):
                    # the fill is a value the claim already gives beside the blank ("the ____ and BarBench
                    # benchmarks" -> "BarBench"): the reader copied the neighbour, which says nothing of the blank
                    repair = None
                if repair is not None and _holds(blank, source) and (
                    _in_its_place(blank, claim, source) or not self._confirmed(blank, claim, paper, repair)
                ):
                    # both values are the abstract's, and the abstract gives the claim's where the claim puts it (the
                    # same words follow it) or a second reading does not back the first: no evidence against it
                    reading.outcome, reading.reason = "unreadable", ""
                    readings.append(reading)
                    continue
                if repair is None:
                    # a fill the abstract does not hold is the model's own: no evidence either way
                    reading.outcome, reading.reason = "unreadable", ""
                    if not _holds(blank, source) or strict:
                        verdict = "withheld"
                elif verdict != "withheld":
                    text = f"{text[: blank.start]}{repair}{text[blank.end :]}"
                    verdict = "repaired"
            readings.append(reading)
        readings.reverse()
        return Reread(verdict, text if verdict == "repaired" else claim, readings, self.calls - before)


def _in_its_place(blank: Blank, claim: str, source: str) -> bool:
    """Whether ``source`` gives the claim's value followed by the same two words as in the claim, one of them a
    content word ("25% more similar" in both): the abstract binds the value as the claim does, word for word.

    >>> claim = "FooNet's feedback is 25% more similar to experts' than BarNet's."
    >>> b = Blank("25%", claim.index("25%"), claim.index("25%") + 3, "number")
    >>> _in_its_place(b, claim, "FooNet gives feedback 25% more similar to experts'. It cuts stress (up to 17%).")
    True
    >>> _in_its_place(b, claim, "FooNet cuts stress by 25% overall. Its feedback is 17% more similar to experts'.")
    False
    """
    after = [w.strip(".,;:()[]\"'").lower() for w in claim[blank.end :].split()[:2]]
    if len(after) < 2 or not any(w and w not in STOPWORDS for w in after):
        return False
    place = re.compile(
        rf"(?<![\w.]){re.escape(blank.value)}\W*\s+{re.escape(after[0])}\W*\s+{re.escape(after[1])}\b", re.IGNORECASE
    )
    return bool(place.search(source))


def _holds(blank: Blank, source: str) -> bool:
    return number_in(blank.value, source) if blank.kind == "number" else name_in(blank.value, source)


def _repair_value(blank: Blank, filled: str, source: str) -> str | None:
    """The abstract's value that replaces the claim's: for a number, the fill's number (in the claim's unit form)
    when the abstract has it; for a name, the fill's name when the abstract has it; else None."""
    if blank.kind == "number":
        head = re.match(r"[\d.,]+", blank.value)
        suffix = blank.value[head.end() :] if head else ""
        for m in _VALUE.finditer(filled):
            if number_in(m.group(0).strip(), source) or number_in(m.group(1), source):
                number = m.group(1) + (m.group(2) or "")
                return number if number.endswith(suffix) else number + suffix
        return None
    # a name is repaired only with a name the abstract holds: a fill of plain words is no name for the blank
    found = [n for n in names(filled) if name_in(n, source)]
    return found[0] if found else None


def stated_in(value: str, text: str) -> bool:
    """Whether the number or name ``value`` occurs in ``text`` (a number as a whole number, a name ignoring case,
    dashes and spaces).

    >>> stated_in("86", "with 86 participants"), stated_in("Batch-Scheduled Sampling", "batch scheduled sampling"), stated_in("8", "86")
    (True, True, False)
    """
    return number_in(value, text) if value[:1].isdigit() else name_in(value, text)


def answer_values(reply: str, paper: Paper) -> list[str]:
    """The numbers and names of a re-read answer that ``paper``'s title or abstract states ([] for 'not stated').

    >>> p = Paper(id="x", title="FooNet", abstract="FooNet was tested with 86 participants on BarBench.")
    >>> answer_values("86 participants, on BarBench", p), answer_values("not stated", p), answer_values("12 people", p)
    (['86', 'BarBench'], [], [])
    """
    if not reply or _NOT_STATED.match(reply):
        return []
    source = f"{paper.title}. {paper.abstract}"
    found = numbers(reply) + names(reply) + proper_nouns(reply)
    return [v for v in dict.fromkeys(found) if stated_in(v, source)]

