"""The draft: the model's answer written from the sources, streamed as events, and tidied for the critique.

One prompt for most questions; a comparison is drafted one side at a time, each from its own
paper alone, so one paper's facts cannot land on the other. A draft that states nothing (a
bare "[1]") is asked for once more.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from . import prompts
from .answer import Status, Timings, Token
from .critique import Source, restates, states_something
from .listing import listing_sentence, mentions, short_name
from .models import LLM, Collected, Message, Request, Usage
from .plans import Plan, Planner, strip_names
from .retrieval import Hit
from .settings import Settings
from .side_split import asks_each_side, split_sides
from .shapes import asks_listing, asks_process, two_asks

# a draft that is only a citation: "[2]", "[2]." or "Source [2]"
_BARE_CITATION = re.compile(r"\s*(?:source\s*)?\[(\d+)\]\W*", re.IGNORECASE)
# "[1] shows …" / "[1] Reduces …": a citation followed by a verb (not by a name)
_CITED_SUBJECT = re.compile(r"(^|(?<=[.!?]\s)|\n)\s*\[(\d+)\]\s+([a-z][\w\-]*|[A-Z][a-z]+s\b)")
_PAPER_SUBJECT = re.compile(
    r"(^|(?<=[.!?]\s)|\n)\s*(?:the|this) (?:paper|work|study|article)\b(?=[^.\n]*?\[(\d+)\])", re.IGNORECASE
)


# a citation used as a noun after a preposition or verb ("… is proposed in [2].", "as shown by [1],")
_CITED_OBJECT = re.compile(r"\b(in|by|from|of|see|than|and|with)\s+\[(\d+)\](?=\s*(?:[.,;:!?]|$))", re.IGNORECASE)


def name_cited_objects(draft: str, sources: Sequence[Source]) -> str:
    """A draft whose citations stand as nouns ("… is proposed in [2].") with the cited paper's name put before
    them, so the sentence still says something once the critique reads it without its citations.

    >>> from paperchat.rag.corpus import Paper
    >>> src = [Source(n=2, paper=Paper(id="f", title="FooNet: Sparse Audio", abstract="x"), excerpt=[])]
    >>> name_cited_objects("Denoising by sparse heads is proposed in [2].", src)
    'Denoising by sparse heads is proposed in FooNet [2].'
    >>> name_cited_objects("FooNet denoises audio [2]. It is fast [2].", src)
    'FooNet denoises audio [2]. It is fast [2].'
    """
    by_n = {s.n: s for s in sources}

    def named(match: re.Match) -> str:
        src = by_n.get(int(match.group(2)))
        return f"{match.group(1)} {short_name(src.paper.title)} [{src.n}]" if src else match.group(0)

    return _CITED_OBJECT.sub(named, draft)


def name_the_subject(draft: str, sources: Sequence[Source]) -> str:
    """A which-paper draft with "[1] shows …" / "The paper proposes … [1]" given the cited paper's title as subject.

    For a which-paper question the cited paper is the answer, so the sentence is a full claim about it.

    >>> from paperchat.rag.corpus import Paper
    >>> src = [Source(n=1, paper=Paper(id="s", title="SPELL: Self-Play", abstract="x"), excerpt=[])]
    >>> name_the_subject("[1] shows that one model can play three roles.", src)
    'SPELL: Self-Play [1] shows that one model can play three roles.'
    >>> name_the_subject("[1] Plays three roles.", src), name_the_subject("[1] SPELL: Self-Play.", src)
    ('SPELL: Self-Play [1] plays three roles.', '[1] SPELL: Self-Play.')
    >>> name_the_subject("The paper proposes self-play for long documents [1].", src)
    'SPELL: Self-Play proposes self-play for long documents [1].'
    >>> name_the_subject('The paper "SPELL" proposes self-play [1].', src)
    'The paper "SPELL" proposes self-play [1].'
    >>> name_the_subject("[1]", src)  # a bare citation names the paper
    'SPELL: Self-Play [1].'
    """
    by_n = {s.n: s for s in sources}
    bare = _BARE_CITATION.fullmatch(draft)
    if bare and int(bare.group(1)) in by_n:
        return f"{by_n[int(bare.group(1))].paper.title} [{bare.group(1)}]."

    def named(match: re.Match) -> str:
        src = by_n.get(int(match.group(2)))
        verb = match.group(3)
        if src is None or verb.lower() == src.paper.title.split(" ", 1)[0].lower():  # "[1] Transformers learn …": a title
            return match.group(0)
        return f"{match.group(1)}{src.paper.title} [{src.n}] {verb[0].lower()}{verb[1:]}"

    draft = _CITED_SUBJECT.sub(named, draft)

    def titled(match: re.Match) -> str:
        src = by_n.get(int(match.group(2)))
        sentence = re.split(r"(?<=[.!?])\s|\n", draft[match.end() :], maxsplit=1)[0]
        if src is None or mentions(sentence, src.paper):  # 'The paper "Learning from Future" …' names it already
            return match.group(0)
        return f"{match.group(1)}{src.paper.title}"

    return _PAPER_SUBJECT.sub(titled, draft)


_PREAMBLE = re.compile(
    r"^\s*(?:\[\d+\]\s*)?(?:(?:the|this) source (?:above )?(?:states|says|shows|reports|mentions) that|according to the source,?)\s*",
    re.IGNORECASE,
)
# "The source above evaluates …", "the source [2] reports …": the prompts' word for a paper, as the subject of a
# statement (not "The source above is about …", "The source for this is [1]", "The source does not …": those say
# nothing about the paper, and the critique reads them as the prompt's words)
_SOURCE_SUBJECT = re.compile(
    r"\b(?:the|this) source(?: above)?(?:\s*\[(\d+)\])?(?=\s+(?!(?:is|was|are|number|for|does|do|did|not|above)\b)[a-z]+\b)",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+(?:\s*\[\d+\])*)?|[\s\S]")  # every character in one piece
_CITED = re.compile(r"\[(\d+)\]")


_CITATION = re.compile(r"\s*\[\d+\]")

# the small model sometimes repeats the side rule's first sentence back
_ECHO = re.compile(r"^\s*(?:\[\d+\]\s*)?the source (?:above )?is about [^.]{1,120}?(?: only)?\.\s*(?:\[\d+\]\s*)?", re.IGNORECASE)


def drop_preamble(text: str) -> str:
    """A drafted sentence without "The source states that" in front.

    >>> drop_preamble("The source states that SPELL reaches 7.6 points [1].")
    'SPELL reaches 7.6 points [1].'
    >>> drop_preamble("The source above is about GRAO only. GRAO gains 17.65% over DPO. [1]")
    'GRAO gains 17.65% over DPO. [1]'
    >>> drop_preamble("The source above is about GRAO. [1]")
    ''
    """
    rest = _PREAMBLE.sub("", _ECHO.sub("", text, count=1), count=1)
    return rest[:1].upper() + rest[1:] if rest != text else text



def name_the_source(draft: str, sources: Sequence[Source], default: int | None = None) -> str:
    """A draft whose sentences call a paper "the source" (the prompts' word) with the paper named instead: "The
    source states that X" becomes "X", and "The source [2] reports X" names paper 2. The paper is the one the
    phrase or its sentence cites, else ``default`` (a comparison side's own paper).

    >>> from paperchat.rag.corpus import Paper
    >>> src = [Source(n=2, paper=Paper(id="f", title="FooNet: Sparse Audio", abstract="x"), excerpt=[])]
    >>> name_the_source("The source above evaluates two speech sets. [2]", src)
    'FooNet evaluates two speech sets. [2]'
    >>> name_the_source("It is fast [2]. The source [2] reports a 3% gain.", src)
    'It is fast [2]. FooNet [2] reports a 3% gain.'
    >>> name_the_source("To denoise, the source introduces sparse heads.", src, default=2)
    'To denoise, FooNet introduces sparse heads.'
    >>> name_the_source("The source above is about FooNet only.", src, default=2)  # says nothing of the paper
    'The source above is about FooNet only.'
    >>> lines = "FooNet has two parts:", "- a 3.5 kHz filter", "- ...a gate! [2]"
    >>> name_the_source(chr(10).join(lines), src) == chr(10).join(lines)  # the rest kept as written, line by line
    True
    """
    by_n = {s.n: s for s in sources}

    def named(sentence: str) -> str:
        cited = [int(n) for n in _CITED.findall(sentence) if int(n) in by_n]
        rest = _PREAMBLE.sub("", sentence.lstrip(), count=1)
        if rest != sentence.lstrip():
            return sentence[: len(sentence) - len(sentence.lstrip())] + rest[:1].upper() + rest[1:]

        def name(match: re.Match) -> str:
            n = int(match.group(1)) if match.group(1) and int(match.group(1)) in by_n else None
            n = n or (cited[0] if cited else default)
            if n not in by_n:
                return match.group(0)
            return short_name(by_n[n].paper.title) + (f" [{n}]" if match.group(1) else "")

        return _SOURCE_SUBJECT.sub(name, sentence)

    return "".join(named(m.group(0)) for m in _SENTENCE.finditer(draft))


def sources_text(sources: Sequence[Source], listing: bool = True) -> str:
    """The numbered sources as the model sees them: title, chosen sentences, and (``listing``) the listing's fields."""
    return prompts.sources_block(
        [(s.n, s.paper.title, [*s.excerpt, *filter(None, [listing_sentence(s.paper) if listing else ""])]) for s in sources]
    )


class Drafter:
    """Drafts answers with the model, as :class:`Status` and :class:`Token` events (generators that return the draft)."""

    def __init__(self, settings: Settings, layout: str, planner: Planner):
        self.settings = settings
        self.layout = layout
        self.planner = planner

    def write(self, llm: LLM, plan: Plan, question: str, shown: str, timings: Timings, started: float):
        """The draft of ``plan`` for ``question`` (its sources shown as ``shown``): the plan's own answer, one per
        comparison side, or one prompt. Returns (draft, usage, the sides' (draft, question, sources) parts)."""
        if plan.draft is not None:  # answered from the listing / the search itself
            timings.first_token = time.perf_counter() - started
            yield Token(plan.draft)
            return plan.draft, Usage(), []
        if plan.shape == "comparison" and plan.side_of:
            yield Status("draft", "Drafting each side from its own paper…")
            return (yield from self.sides(llm, plan, question, timings, started))
        yield Status("draft", f"Drafting from {len(plan.sources)} papers…")
        process = self.settings.answer.process_rules and asks_process(question) and not two_asks(question)
        rules = prompts.PROCESS_RULES if process else None
        draft, usage = yield from self.one(
            llm, shown, question, rules, timings, started, citation_answers=plan.shape == "which-paper"
        )
        return draft, usage, []

    def one(
        self,
        llm: LLM,
        shown: str,
        question: str,
        rules: str | None,
        timings: Timings,
        started: float,
        citation_answers: bool = False,
    ):
        """Stream the model's draft as Token events; returns the draft and the last usage. With ``citation_answers``
        (a which-paper question) a draft that is only a citation ("[2]") names its answer and is not asked again."""
        messages = [Message(r, c) for r, c in prompts.draft_messages(shown, question, self.layout, rules)]
        request = Request(
            messages,
            max_tokens=self.settings.model.max_answer_tokens,
            temperature=self.settings.model.temperature,
            seed=self.settings.model.seed,
        )
        draft, usage = yield from self.stream(llm, request, timings, started)
        if not states_something(draft) and not (citation_answers and _BARE_CITATION.fullmatch(draft)):
            # A draft with no statement (the small model sometimes replies with a bare "[1]", or names its
            # sources as nouns: "The datasets are [1] and [2]."): ask once more, for the sentence of the
            # sources that answers the question.
            yield Status("draft", "Looking for the sentence that answers it…")
            retry = [Message(r, c) for r, c in prompts.extract_messages(shown, question, self.layout)]
            draft, usage = yield from self.stream(
                llm, Request(retry, max_tokens=request.max_tokens, temperature=0.0, seed=request.seed), timings, started
            )
        return draft, usage

    def sides(self, llm: LLM, plan: Plan, question: str, timings: Timings, started: float):
        """A comparison drafted one side at a time, each from its own paper alone (so facts cannot swap sides)."""
        by_n = {s.n: s for s in plan.sources}
        parts: list[tuple[str, str, str]] = []  # (draft, the question it answers, the sources it saw)
        total = Usage()
        split: dict[str, str] = {}
        sides = list(plan.side_of)
        if self.settings.answer.model_side_questions and len(sides) == 2 and not asks_each_side(question, sides):
            # one ask of both sides: the model rewrites it for each (a question with an ask for each side keeps its
            # clauses: the model merges the two asks into one)
            yield Status("draft", "Asking the question of each side…")
            split, usage = split_sides(llm, question, sides)
            total.add(usage)
            total.generation_seconds += usage.generation_seconds
        for side, n in plan.side_of.items():
            if parts:
                yield Token("\n")
            rules = prompts.SIDE_RULES.format(side=side, n=n)
            asked = (
                split.get(side) or plan.side_questions.get(side)
                or strip_names(question, [s for s in plan.sides if s != side])
            )
            shown = sources_text([by_n[n]], listing=asks_listing(question))
            part, usage = yield from self.one(llm, shown, asked, rules, timings, started)
            part = drop_preamble(part)  # "The source above is about X only. [1]" echoes the rules and states nothing
            part = name_the_source(part, [by_n[n]], default=n)  # "The source above evaluates …" names its paper
            if not states_something(part) or restates(_CITATION.sub("", part), asked):
                # twice no statement (a bare "[1]"), or one that only says the question back ("X uses a bigger
                # dataset"): the sentence of the side's own paper that best matches its question stands in, for the
                # critique to check like any draft (else the side reads "not stated")
                yield Status("draft", f"No statement for {side}: checking the best-matching sentence of its abstract…")
                part = self._best_sentence(by_n[n], asked) or part
            parts.append((part, asked, shown))
            total.add(usage)
            total.generation_seconds += usage.generation_seconds
        return "\n".join(p for p, _, _ in parts), total, parts

    def _best_sentence(self, src: Source, asked: str) -> str | None:
        """The sentence of ``src``'s paper that best matches ``asked``, cited (None when there is none)."""
        hit = Hit(paper=src.paper, chunk=src.chunk or "", chunk_id=f"{src.paper.id}:side", score=0.0)
        best = self.planner.evidence(asked, [hit], limit=1)
        return f"{best[0].excerpt[0]} [{src.n}]" if best and best[0].excerpt else None

    @staticmethod
    def stream(llm: LLM, request: Request, timings: Timings, started: float):
        """Stream one model call as Token events, noting the first token's time; returns its text and usage."""
        collected = Collected(llm.stream(request))
        for piece in collected:
            if timings.first_token is None:
                timings.first_token = time.perf_counter() - started
            yield Token(piece)
        return collected.completion.text.strip(), collected.completion.usage
