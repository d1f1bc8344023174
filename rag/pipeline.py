"""The answering pipeline: question -> retrieval -> evidence -> draft -> self-critique -> answer.

:meth:`Pipeline.run` yields events as it goes (status lines, the draft's tokens, then
the finished :class:`Answer`), so front ends can stream; :meth:`Pipeline.ask` returns
just the answer.

Context shape, chosen by measurement (README, "How answers are made"): rather than
whole abstracts, the model sees the sentences of the top papers that best match the
question (MiniLM similarity plus word overlap), grouped under each paper's title in
their original order. On the public question set the chosen 8 sentences still hold
every answer keyword 98% of the time, at a third of the tokens of three full abstracts,
so the draft starts three times sooner on a CPU. The critique still checks claims
against the *full* abstracts.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from . import prompts
from .critique import (
    GENERIC_ACRONYMS,
    ClaimCheck,
    Critic,
    Critique,
    Source,
    Verdict,
    cite,
    no_critique,
    off_subject,
    paper_sentences,
    states_something,
)
from .errors import QuestionError, QuestionTooLongError
from .followup import resolve_position
from .verify import Rereader
from .models import LLM, Collected, Message, Request, TokenCounts, Usage
from .retrieval import Hit, Retriever
from .settings import Settings
from .shapes import (
    FIELD_NAMES,
    alias,
    asks_introduced,
    QuestionShape,
    asks_listing,
    classify,
    compare_listing,
    compound_parts,
    comparison_sides,
    side_questions,
    display_name,
    focus_overlap,
    introducing,
    listing_fields,
    listing_sentence,
    lone_word_in,
    mentions,
    metadata_claim,
    short_name,
    topic_of,
    topic_parts,
    topic_phrases,
    two_asks,
)
from .text import INJECTION, content_words, fold, name_in, names, proper_nouns, split_sentences

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffe\uffff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
#: Longest earlier turn kept when rewriting a follow-up.
MAX_TURN_CHARS = 4000
#: A sentence shown as "what the abstracts do state" must be at least this close to the question (MiniLM cosine).
RELATED_MIN_SIMILARITY = 0.35
#: Weight of the share of a list topic's words found in a paper, added to its MiniLM similarity.
LIST_COVERAGE_WEIGHT = 0.25
#: Added to a sentence that introduces something when the question asks what a paper introduces
#: (half of what a sentence holding every word of the question gains).
INTRODUCING_WEIGHT = 0.25


def clean_history(history: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    r"""Earlier turns as (role, text) with unknown roles dropped and text cleaned and capped.

    >>> clean_history([("user", "hi\x00 there"), ("system", "x"), ("assistant", "yes")])
    [('user', 'hi there'), ('assistant', 'yes')]
    """
    out = []
    for turn in history:
        if len(turn) != 2 or turn[0] not in ("user", "assistant") or not isinstance(turn[1], str):
            continue
        text = " ".join(_CONTROL.sub(" ", _SURROGATE.sub("\ufffd", turn[1])).split())[:MAX_TURN_CHARS]
        out.append((turn[0], text))
    return out
#: Characters that are letters or symbols to Unicode but print as nothing (Hangul fillers, the blank braille cell).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5")


def check_question(question: object, max_chars: int) -> str:
    """The question cleaned of control characters and extra spaces; raises QuestionError if unusable.

    >>> check_question("  What is\\x00 SPELL?\\n", 100)
    'What is SPELL?'
    """
    if isinstance(question, bytes):
        question = question.decode("utf-8", errors="replace")
    if not isinstance(question, str):
        raise QuestionError('The question must be text. Send it as a string, e.g. {"question": "What is SPELL?"}.')
    text = " ".join(_CONTROL.sub(" ", _SURROGATE.sub("\ufffd", question)).split())
    if not any(unicodedata.category(ch)[0] not in "CZ" and ch not in _BLANK_LETTERS for ch in text):  # only invisible left
        text = ""
    if not text:
        raise QuestionError('The question is empty. Type a question about the papers, e.g. "What does SPELL propose?".')
    if len(text) > max_chars:
        raise QuestionTooLongError(len(text), max_chars)
    return text


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


Shape = Literal["factoid", "which-paper", "list", "comparison", "metadata"]


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


class _UsageTap(LLM):
    """Wraps an LLM to add up the usage of every call made through it."""

    def __init__(self, inner: LLM):
        self.inner = inner
        self.backend = inner.backend
        self.model = inner.model
        self.usage = Usage()

    def stream(self, request: Request):
        for item in self.inner.stream(request):
            if isinstance(item, Usage):
                self.usage.add(item)
            yield item

    def describe(self) -> dict:
        return self.inner.describe()


class Pipeline:
    """Answers questions from the index with ``llm``; ``critique=False`` gives the no-critique variant."""

    def __init__(
        self,
        settings: Settings,
        retriever: Retriever,
        llm: LLM,
        *,
        critique: bool | None = None,
        layout: str | None = None,
        evidence_sentences: int | None = None,
    ):
        self.settings = settings
        self.retriever = retriever
        self.llm = llm
        self.critique = settings.answer.critique if critique is None else critique
        self.layout = layout or settings.answer.prompt_layout
        self.evidence_sentences = evidence_sentences or settings.answer.evidence_sentences
        self.evidence_margin = settings.answer.evidence_margin
        self.name = "paperchat" if self.critique else "no-critique"

    # -- stages ---------------------------------------------------------------------

    def standalone(self, question: str, history: Sequence[tuple[str, str]], llm: LLM | None = None) -> str:
        """``question`` rewritten to stand alone, using the last turns of ``history``."""
        turns = list(history)[-2 * self.settings.answer.history_turns :]
        if not turns:
            return question
        resolved = resolve_position(question, turns)
        if resolved is not None:  # "the second one" of a listed answer: its title makes the question stand alone
            return resolved
        messages = [Message(r, c) for r, c in prompts.rewrite_messages(turns, question)]
        try:
            text = (llm or self.llm).complete(Request(messages, max_tokens=60, temperature=0.0)).text
        except Exception as err:  # a failed rewrite must not lose the question
            log.warning("question rewrite failed (%s); searching with the conversation appended", err)
            text = ""
        text = " ".join(text.strip().strip('"').split())
        last_user = next((c for r, c in reversed(turns) if r == "user"), "")
        if not text or len(text) > 3 * len(question) + 200 or not re.search(r"[A-Za-z]", text):
            return f"{question} (context: {last_user})" if last_user else question
        # the small model sometimes replaces a name by a description ("the self-play framework"):
        # keep the names the conversation was about, since retrieval needs them
        mentioned = [n for n in names(last_user) + proper_nouns(last_user) if n.casefold() not in text.casefold()]
        if mentioned and not any(n.casefold() in text.casefold() for n in names(last_user) + proper_nouns(last_user)):
            text = f"{text} (about {', '.join(dict.fromkeys(mentioned))})"
        return text

    def evidence(self, question: str, hits: Sequence[Hit], limit: int | None = None) -> list[Source]:
        """Numbered sources holding the (``limit``, default ``evidence_sentences``) sentences that best match the question;
        for a question that asks two things (:func:`two_asks`), all of the best-matching paper's sentences."""
        embedder = self.retriever.embedder
        q_vec = embedder.embed([question])[0]
        q_words = set(content_words(question))
        # "What does SINC introduce …?" is answered where the paper introduces something ("we propose …, that
        # introduces a meta-model"), whatever else the sentence shares with the question
        asks_new = asks_introduced(question)
        candidates: list[tuple[float, int, int, str]] = []
        for rank, hit in enumerate(hits):
            sentences = [s for s in split_sentences(hit.paper.abstract) if not INJECTION.search(s)]
            if not sentences:
                continue
            vectors = embedder.embed(sentences)
            title_words = set(content_words(hit.paper.title))
            for i, (sentence, vec) in enumerate(zip(sentences, vectors)):
                words = title_words | set(content_words(sentence))
                overlap = len(q_words & words) / max(1, len(q_words))
                score = float(np.dot(vec, q_vec)) + 0.5 * overlap - 0.05 * rank
                if asks_new and introducing(sentence):
                    score += INTRODUCING_WEIGHT
                candidates.append((score, rank, i, sentence))
        ranked = sorted(candidates, key=lambda c: -c[0])
        # sentences far below the best match rarely hold the answer, and each costs the model time to read
        chosen = [c for c in ranked[: limit or self.evidence_sentences] if c[0] >= ranked[0][0] - self.evidence_margin]
        if ranked and limit is None and two_asks(question):
            # the second ask's sentence is often worded unlike the question ("beyond plain step-by-step optimization"
            # for "surpass plain gradient descent"): the paper that best answers the first ask is shown whole
            best = ranked[0][1]
            chosen += [c for c in candidates if c[1] == best and c not in chosen]
        sources: list[Source] = []
        for rank, hit in enumerate(hits):
            picked = sorted((i, s) for _, r, i, s in chosen if r == rank)
            if picked:
                sources.append(Source(n=len(sources) + 1, paper=hit.paper, excerpt=[s for _, s in picked], chunk=hit.chunk))
        return sources

    def sources_text(self, sources: Sequence[Source], listing: bool = True) -> str:
        """The numbered sources as the model sees them: title, chosen sentences, and (``listing``) the listing's fields."""
        return prompts.sources_block(
            [(s.n, s.paper.title, [*s.excerpt, *filter(None, [listing_sentence(s.paper) if listing else ""])]) for s in sources]
        )

    def critic(self, *, judge: bool | None = None, llm: LLM | None = None, reread: bool | None = None) -> Critic:
        """The critique as this pipeline runs it: the model (``llm``, default the pipeline's) judges claims when
        ``judge`` is True, not when False, and as ``answer.model_judge`` says when None ('auto': only a model
        served by Ollama judges: the embedded 1.5B removed 1 of 119 claims it judged, one the meaning check removes too);
        the model re-reads kept claims' numbers and names when ``reread`` is True (None: ``answer.reread``)."""
        model = llm or self.llm
        if judge is None:
            mode = self.settings.answer.model_judge
            judge = mode == "always" or (mode == "auto" and model.describe().get("backend") == "ollama")
        reread = self.settings.answer.reread if reread is None else reread
        rereader = Rereader(model, max_blanks=self.settings.answer.reread_blanks) if reread else None
        return Critic(model if judge else None, layout=self.layout, embedder=self.retriever.embedder, rereader=rereader)

    # -- plans per question shape ------------------------------------------------------

    def plan(self, question: str, shape: QuestionShape) -> Plan:
        """Which papers, which sentences, and (for listing fields and lists) the answer itself."""
        k = self.settings.answer.sources
        if shape.shape == "metadata" and shape.field:
            return self._plan_metadata(question, shape)
        if shape.shape == "list":
            return self._plan_list(question)
        if shape.shape == "comparison":
            plan = self._plan_comparison(question, shape.field)
            if plan is not None:
                return plan
        hits = self.retriever.search(question, k=k)
        kind = shape.shape if shape.shape != "comparison" else "factoid"
        if hits and self.unrelated(question, hits):
            # nothing found is about what was asked ("Which river is the longest in Europe?"): no draft to wait for
            return Plan(kind, [], draft=prompts.REFUSAL, refusal=True)
        return Plan(kind, self.evidence(question, hits))

    def unrelated(self, question: str, hits: Sequence[Hit]) -> bool:
        """Whether no paper of ``hits`` is about what ``question`` asks: no name the question uses ("SPARK",
        "GPT-4o"; not plain capitalised words) is in them, and no title or sentence of theirs comes within
        ``answer.min_relevance`` of it (a name found keeps the question, whatever its language or wording)."""
        if any(name_in(n, f"{h.paper.title} {h.paper.abstract}") for n in names(question) for h in hits):
            return False
        return self.relevance(question, hits) < self.settings.answer.min_relevance

    def relevance(self, question: str, hits: Sequence[Hit]) -> float:
        """How close the closest title or abstract sentence of ``hits`` is to ``question`` (MiniLM cosine)."""
        embedder = self.retriever.embedder
        texts = [t for h in hits for t in (h.paper.title, *split_sentences(h.paper.abstract))]
        return float(np.max(embedder.embed(texts) @ embedder.embed([question])[0])) if texts else 0.0

    def _plan_metadata(self, question: str, shape: QuestionShape) -> Plan:
        hits = self.retriever.search(question, k=self.settings.answer.sources)
        asked = " ".join(dict.fromkeys(names(question) + proper_nouns(question)))
        if asked:  # the paper's name alone finds it when the field's words pull the search elsewhere
            hits += [h for h in self.retriever.search(asked, k=3) if all(h.paper.id != x.paper.id for x in hits)]
        named = [h for h in hits if mentions(question, h.paper)]
        hit = named[0] if named else (hits[0] if hits and not off_subject(question, hits[0].paper) else None)
        if hit is None:
            return Plan("metadata", self.evidence(question, hits), draft=prompts.REFUSAL)
        source = Source(n=1, paper=hit.paper, excerpt=[listing_sentence(hit.paper) or hit.paper.title], chunk=hit.chunk)
        claim = metadata_claim(hit.paper, shape.field, 1)
        related = [Related(n=1, title=hit.paper.title, sentence=listing_sentence(hit.paper))] if listing_sentence(hit.paper) else []
        if claim is None:
            note = prompts.NOT_LISTED.format(field=FIELD_NAMES[shape.field], name=short_name(hit.paper.title))
            return Plan("metadata", [source], draft=note, related=related, refusal=True)
        # "How many upvotes has it got, and when was it posted?": every field asked is answered
        more = [metadata_claim(hit.paper, f, 1) for f in listing_fields(question) if f != shape.field]
        return Plan("metadata", [source], draft=" ".join([claim, *filter(None, more)]))

    def _plan_list(self, question: str) -> Plan:
        chosen: dict[str, tuple[float, Hit, str]] = {}
        # "X or Y" asks for the papers of either topic: each part is matched on its own
        parts = topic_parts(topic_of(question))
        for topic in parts:
            # a question about one word ("segmentation") lists the papers using it; a part of "X or Y" is no topic alone
            for score, hit, sentence in self._list_matches(topic, lone_word=len(parts) == 1):
                if hit.paper.id not in chosen or chosen[hit.paper.id][0] < score:
                    chosen[hit.paper.id] = (score, hit, sentence)
        ranked = sorted(chosen.values(), key=lambda c: -c[0])[: self.settings.answer.list_max]
        if not ranked:
            return Plan("list", [], draft=prompts.REFUSAL)
        sources = [Source(n=i, paper=h.paper, excerpt=[sent], chunk=h.chunk) for i, (_, h, sent) in enumerate(ranked, 1)]
        lines = [f"{display_name(src.paper)}: {src.excerpt[0].rstrip()} [{src.n}]" for src in sources]
        return Plan("list", sources, draft="\n".join(lines))

    def _list_matches(self, topic: str, lone_word: bool = False) -> list[tuple[float, Hit, str]]:
        """Papers that match one topic of a list question: (score, hit, the sentence that matches best)."""
        asked = [n for n in names(topic) + lone_proper_nouns(topic) if n.upper() not in GENERIC_ACRONYMS]
        if asked:  # a named benchmark, model or method: every paper that names it, nothing else
            found = []
            for paper in self.retriever.papers():
                said = [s for s in split_sentences(paper.abstract) if not INJECTION.search(s) and any(names_version(n, s) for n in asked)]
                if said:
                    found.append((2.0, Hit(paper=paper, chunk=paper.abstract, chunk_id=f"{paper.id}:name", score=0.0), said[0]))
            return found
        hits = self.retriever.search(topic, k=self.settings.answer.list_candidates)
        phrases, loose = self._topic_phrases(topic, lone_word)
        hits += self._stating(phrases, loose, {h.paper.id for h in hits})
        if not hits:
            return []
        embedder = self.retriever.embedder
        q = embedder.embed([topic])[0]
        scored = []
        for hit in hits:
            sentences = [s for s in split_sentences(hit.paper.abstract) if not INJECTION.search(s)]
            vectors = embedder.embed([hit.paper.title, *sentences])
            sims = vectors @ q
            best = int(np.argmax(sims[1:])) + 1 if len(sims) > 1 else 0
            # a paper matches when its title or a sentence of its abstract is close to the topic,
            # and more so when it uses the topic's own words
            coverage = focus_overlap(topic, f"{hit.paper.title} {hit.paper.abstract}")
            score = float(max(sims)) + LIST_COVERAGE_WEIGHT * coverage
            scored.append((score, hit, sentences[best - 1] if best else hit.paper.title))
        if not scored:
            return []
        top = max(score for score, _, _ in scored)
        # a paper that states the topic's distinctive phrase is listed even when no abstract is close overall
        scored = _phrase_matches(phrases, loose, scored, max(top, self.settings.answer.list_min_similarity))
        floor = max(self.settings.answer.list_min_similarity, top - self.settings.answer.list_margin)
        return [c for c in scored if c[0] >= floor]

    def _topic_phrases(self, topic: str, lone_word: bool = False) -> tuple[list[str], set[str]]:
        """The phrases a paper of the topic may state (:func:`topic_phrases`), and the hyphenated ones among them
        that at most one paper writes as such: those are also stated by a paper that has each of their parts as a
        word of its own ("the teacher is updated with the past student" is a teacher-student setup)."""
        phrases = topic_phrases(topic, lone_word)
        compounds = [ph for ph in phrases if compound_parts(ph)]
        if not compounds:
            return phrases, set()
        texts = [f"{p.title} {p.abstract}" for p in self.retriever.papers()]
        return phrases, {ph for ph in compounds if sum(name_in(ph, t) for t in texts) <= 1}

    def _stating(self, phrases: Sequence[str], loose: set[str], seen: set[str]) -> list[Hit]:
        """Papers not in ``seen`` that state a distinctive phrase of the topic word for word ("self-play"):
        ranking can miss them when the phrase's words are common ("self" starts many titles)."""
        papers = self.retriever.papers()
        texts = {p.id: f"{p.title} {p.abstract}" for p in papers}
        found: dict[str, Hit] = {}
        for phrase in phrases:
            key = fold(phrase)
            # a substring test first (cheap); a loose term is stated in other words, so it is read whole
            stating = [p for p in papers if (phrase in loose or key in fold(texts[p.id])) and _states(phrase, loose, texts[p.id])]
            if len(stating) > self.settings.answer.list_max:
                continue  # a phrase this common names no particular papers
            for p in stating:
                if p.id not in seen and p.id not in found:
                    found[p.id] = Hit(paper=p, chunk=p.abstract, chunk_id=f"{p.id}:phrase", score=0.0)
        return list(found.values())

    def _plan_comparison(self, question: str, field: str | None = None) -> Plan | None:
        sides = comparison_sides(question)
        if len(sides) != 2:
            return None
        sources: list[Source] = []
        missing: list[str] = []
        side_of: dict[str, int] = {}
        asked = dict(zip(sides, side_questions(question)))
        for side in sides:
            hit = self._side_paper(side, question, [s.paper.id for s in sources])
            if hit is None:
                missing.append(side)
                continue
            # the side is drafted from its own question, so its evidence is chosen for that question
            own = asked.get(side) or strip_names(question, [s for s in sides if s != side])
            whole = [s for s in split_sentences(hit.paper.abstract) if not INJECTION.search(s)]
            if len(whole) <= self.settings.answer.side_sentences:
                excerpt = whole  # the side's whole abstract: a side's answer is often worded unlike its question
            else:
                picked = self.evidence(own, [hit], limit=self.settings.answer.side_sentences)
                excerpt = picked[0].excerpt if picked else whole[:3]
            sources.append(Source(n=len(sources) + 1, paper=hit.paper, excerpt=excerpt, chunk=hit.chunk))
            side_of[side] = sources[-1].n
        if missing and sources and all(name_in(m, sources[0].paper.abstract) for m in missing):
            # "How much does FooNet improve on BarNet?": the other side is a baseline
            # inside the one paper, so this is a question about that paper
            return None
        if field in ("authors", "upvotes", "date", "links") and len(sources) == 2:
            # listing fields are compared from the records themselves, not by the model
            a, b = sources
            a.excerpt, b.excerpt = [listing_sentence(a.paper)], [listing_sentence(b.paper)]
            claims = [metadata_claim(src.paper, field, src.n) for src in sources]
            compared = compare_listing(a.paper, b.paper, field, 1, 2)
            if all(claims):
                draft = " ".join([*claims, *([compared] if compared else [])])
                return Plan("comparison", sources, draft=draft, sides=sides, missing=missing, side_of=side_of)
        return Plan("comparison", sources, sides=sides, missing=missing, side_of=side_of, side_questions=asked)

    def _side_paper(self, side: str, question: str, taken: Sequence[str]) -> Hit | None:
        """The paper one side of a comparison is about: the one it names, else the best match of its description."""
        if names(side) or proper_nouns(side):
            hits = [h for h in self.retriever.search(f"{side} {question}", k=5) if mentions(side, h.paper) or name_in(side, h.paper.title)]
            hits = hits or [h for h in self.retriever.search(side, k=3) if name_in(side, f"{h.paper.title} {h.paper.abstract}")]
        else:
            hits = self.retriever.search(side, k=3)
        # "SCoRe" is that paper's name, not the word "score" in another title
        exact = [h for h in hits if re.search(rf"(?<!\w){re.escape(side)}(?!\w)", f"{h.paper.title} {h.paper.abstract}")]
        return next((h for h in [*exact, *hits] if h.paper.id not in taken), None)

    # -- drafting ---------------------------------------------------------------------

    def _draft(
        self,
        llm: LLM,
        sources_text: str,
        question: str,
        rules: str | None,
        timings: Timings,
        started: float,
        citation_answers: bool = False,
    ):
        """Stream the model's draft as Token events; returns the draft and the last usage. With ``citation_answers``
        (a which-paper question) a draft that is only a citation ("[2]") names its answer and is not asked again."""
        messages = [Message(r, c) for r, c in prompts.draft_messages(sources_text, question, self.layout, rules)]
        request = Request(
            messages,
            max_tokens=self.settings.model.max_answer_tokens,
            temperature=self.settings.model.temperature,
            seed=self.settings.model.seed,
        )
        draft, usage = yield from self._stream(llm, request, timings, started)
        if not states_something(draft) and not (citation_answers and _BARE_CITATION.fullmatch(draft)):
            # A draft with no statement (the small model sometimes replies with a bare "[1]", or names its
            # sources as nouns: "The datasets are [1] and [2]."): ask once more, for the sentence of the
            # sources that answers the question.
            yield Status("draft", "Looking for the sentence that answers it…")
            retry = [Message(r, c) for r, c in prompts.extract_messages(sources_text, question, self.layout)]
            draft, usage = yield from self._stream(
                llm, Request(retry, max_tokens=request.max_tokens, temperature=0.0, seed=request.seed), timings, started
            )
        return draft, usage

    def _draft_sides(self, llm: LLM, plan: Plan, question: str, timings: Timings, started: float):
        """A comparison drafted one side at a time, each from its own paper alone (so facts cannot swap sides)."""
        by_n = {s.n: s for s in plan.sources}
        parts: list[tuple[str, str, str]] = []  # (draft, the question it answers, the sources it saw)
        total = Usage()
        for side, n in plan.side_of.items():
            if parts:
                yield Token("\n")
            rules = prompts.SIDE_RULES.format(side=side, n=n)
            asked = plan.side_questions.get(side) or strip_names(question, [s for s in plan.sides if s != side])
            shown = self.sources_text([by_n[n]], listing=asks_listing(question))
            part, usage = yield from self._draft(llm, shown, asked, rules, timings, started)
            part = drop_preamble(part)  # "The source above is about X only. [1]" echoes the rules and states nothing
            if not states_something(part):
                # twice no statement (a bare "[1]"): the sentence of the side's own paper that best matches its
                # question stands in, for the critique to check like any draft (else the side reads "not stated")
                yield Status("draft", f"No statement for {side}: checking the best-matching sentence of its abstract…")
                src = by_n[n]
                hit = Hit(paper=src.paper, chunk=src.chunk or "", chunk_id=f"{src.paper.id}:side", score=0.0)
                best = self.evidence(asked, [hit], limit=1)
                if best and best[0].excerpt:
                    part = f"{best[0].excerpt[0]} [{n}]"
            parts.append((part, asked, shown))
            total.add(usage)
            total.generation_seconds += usage.generation_seconds
        return "\n".join(p for p, _, _ in parts), total, parts

    @staticmethod
    def _stream(llm: LLM, request: Request, timings: Timings, started: float):
        collected = Collected(llm.stream(request))
        for piece in collected:
            if timings.first_token is None:
                timings.first_token = time.perf_counter() - started
            yield Token(piece)
        return collected.completion.text.strip(), collected.completion.usage

    # -- the whole run --------------------------------------------------------------

    def check(self, question: object) -> str:
        """``question`` as :meth:`run` takes it (cleaned), or QuestionError: edges call it to refuse before queueing."""
        return check_question(question, self.settings.answer.max_question_chars)

    def run(self, question: object, history: Sequence[tuple[str, str]] = ()) -> Iterator[Event]:
        """Answer ``question``, yielding progress; the last event is :class:`Done`. Raises PaperchatError."""
        started = time.perf_counter()
        question = self.check(question)
        history = clean_history(history)
        timings = Timings()
        llm = _UsageTap(self.llm)

        t = time.perf_counter()
        standalone = question
        if history:
            yield Status("rewrite", "Reading the conversation…")
            standalone = self.standalone(question, history, llm)
            timings.rewrite = time.perf_counter() - t

        yield Status("retrieval", "Searching the papers…")
        t = time.perf_counter()
        plan = self.plan(standalone, classify(standalone))
        timings.retrieval = time.perf_counter() - t
        sources = plan.sources
        # the listing's fields only for a question that may be about them: the prompt's length sets the first token's time
        sources_text = self.sources_text(sources, listing=asks_listing(standalone))

        t = time.perf_counter()
        usage = Usage()
        side_drafts: list[tuple[str, str, str]] = []
        if plan.draft is not None:  # answered from the listing / the search itself
            draft = plan.draft
            timings.first_token = time.perf_counter() - started
            yield Token(draft)
        elif plan.shape == "comparison" and plan.side_of:
            yield Status("draft", "Drafting each side from its own paper…")
            draft, usage, side_drafts = yield from self._draft_sides(llm, plan, standalone, timings, started)
        else:
            yield Status("draft", f"Drafting from {len(sources)} papers…")
            draft, usage = yield from self._draft(
                llm, sources_text, standalone, None, timings, started, citation_answers=plan.shape == "which-paper"
            )
        timings.draft = time.perf_counter() - t
        timings.count(usage)
        # a which-paper draft's subject is often just its citation ("[1] shows …"): the cited paper is the answer
        to_check = name_the_subject(draft, sources) if plan.shape == "which-paper" else draft

        t = time.perf_counter()
        if self.critique:
            yield Status("critique", "Checking every claim against the abstracts…")
            before = (llm.usage.prompt_tokens, llm.usage.cached_tokens)
            # answers written from the listing or from the abstracts' own sentences (lists) have nothing to re-read
            from_model = plan.draft is None and plan.shape != "list"
            critic = self.critic(judge=None if plan.draft is None else False, llm=llm, reread=None if from_model else False)
            # each side of a comparison is checked against its own paper, so the other side's name is not asked of it
            asked = strip_names(standalone, plan.sides) if plan.sides else standalone
            if plan.shape == "list":
                asked = ""  # the listed sentences are the abstracts' own; which papers match was decided by the plan
            if plan.draft is not None and (plan.shape == "comparison" or len(listing_fields(standalone)) > 1):
                asked = ""  # one claim per field (or side) asked, each written from the record (and checked against it)
            if side_drafts:  # each side is checked against the question asked of it, with the sources it saw
                result = critic.check_parts(side_drafts, sources)
            else:
                result = critic.check(to_check, sources, sources_text, question=asked, shape=plan.shape)
            timings.critique_prompt_tokens = llm.usage.prompt_tokens - before[0]
            timings.critique_cached_tokens = llm.usage.cached_tokens - before[1]
        else:
            result = no_critique(to_check, sources)
        if plan.refusal:
            result.verdict = "refused"
        answer_text, rows = finish(plan, result, sources)
        related = plan.related or (self.related(standalone, sources) if result.verdict in ("refused", "not supported") else [])
        timings.critique = time.perf_counter() - t
        timings.total = time.perf_counter() - started
        for name in ("rewrite", "retrieval", "draft", "critique", "total"):
            setattr(timings, name, round(getattr(timings, name), 3))
        if timings.first_token is not None:
            timings.first_token = round(timings.first_token, 3)
        info = self.llm.describe()
        yield Done(
            Answer(
                question=question,
                standalone_question=standalone,
                answer=answer_text,
                verdict=result.verdict,
                citations=_citations(result, sources),
                claims=result.claims,
                draft=draft,
                removed=result.removed,
                timings=timings,
                backend=str(info.get("backend", "")),
                model=str(info.get("model", "")),
                pipeline=self.name,
                shape=plan.shape,
                rows=rows,
                related=related,
            )
        )

    def related(self, question: str, sources: Sequence[Source], limit: int = 2) -> list[Related]:
        """What the sources do state about the thing asked, for a withheld or refused answer."""
        out: list[Related] = []
        embedder = self.retriever.embedder
        q = embedder.embed([question])[0]
        for src in sources:
            if len(out) >= limit or not on_subject(question, src.paper):
                continue
            sentences = [s for s in paper_sentences(src.paper) if not INJECTION.search(s)]
            if not sentences:
                continue
            sims = embedder.embed(sentences) @ q
            i = int(np.argmax(sims))
            if sims[i] >= RELATED_MIN_SIMILARITY:
                out.append(Related(n=src.n, title=src.paper.title, sentence=sentences[i]))
        return out

    def ask(self, question: object, history: Sequence[tuple[str, str]] = ()) -> Answer:
        """Answer ``question`` and return the finished :class:`Answer`."""
        for event in self.run(question, history):
            if isinstance(event, Done):
                return event.answer
        raise RuntimeError("the pipeline ended without an answer")  # pragma: no cover


# a draft that is only a citation: "[2]", "[2]." or "Source [2]"
_BARE_CITATION = re.compile(r"\s*(?:source\s*)?\[(\d+)\]\W*", re.IGNORECASE)
# "[1] shows …" / "[1] Reduces …": a citation followed by a verb (not by a name)
_CITED_SUBJECT = re.compile(r"(^|(?<=[.!?]\s)|\n)\s*\[(\d+)\]\s+([a-z][\w\-]*|[A-Z][a-z]+s\b)")
_PAPER_SUBJECT = re.compile(
    r"(^|(?<=[.!?]\s)|\n)\s*(?:the|this) (?:paper|work|study|article)\b(?=[^.\n]*?\[(\d+)\])", re.IGNORECASE
)


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


# the small model sometimes repeats the side rule's first sentence back
_ECHO = re.compile(r"^\s*the source (?:above )?is about [^.]{1,120}? only\.\s*", re.IGNORECASE)


def drop_preamble(text: str) -> str:
    """A drafted sentence without "The source states that" in front.

    >>> drop_preamble("The source states that SPELL reaches 7.6 points [1].")
    'SPELL reaches 7.6 points [1].'
    >>> drop_preamble("The source above is about GRAO only. GRAO gains 17.65% over DPO. [1]")
    'GRAO gains 17.65% over DPO. [1]'
    """
    rest = _PREAMBLE.sub("", _ECHO.sub("", text, count=1), count=1)
    return rest[:1].upper() + rest[1:] if rest != text else text


def lone_proper_nouns(text: str) -> list[str]:
    """Capitalised words of ``text`` that name something alone (a model family such as "Qwen"), not as part of a
    run of capitalised words ("Monte Carlo Tree Search" is a phrase, read as one).

    >>> lone_proper_nouns("distil it into Llama students"), lone_proper_nouns("apply Proximal Policy Optimization")
    (['Llama'], [])
    """
    return [p for p in proper_nouns(text) if not re.search(rf"[A-Z][\w\-]*\s+{p}\b|\b{p}\s+[A-Z]", text)]


def names_version(name: str, text: str) -> bool:
    """Whether ``text`` names ``name`` as a word, or a version of it ("Qwen" in "Qwen2.5-Math-7B" or "Qwen-2.5-7B").

    >>> names_version("Qwen", "on Qwen2.5-Math-7B and Qwen-2.5-7B"), names_version("Qwen", "QwenLM"), names_version("GPT-4", "GPT-4o")
    (True, False, False)
    """
    return re.search(rf"(?<![\w-]){re.escape(name)}(?:-?\d[\w.\-]*)?(?!\w)", text) is not None


def _states(phrase: str, loose: set[str], text: str) -> bool:
    """Whether ``text`` states ``phrase``: word for word, or, for a term in ``loose``, each of its parts as a word."""
    if name_in(phrase, text):
        return True
    return phrase in loose and all(lone_word_in(part, text) for part in compound_parts(phrase))


def _phrase_matches(
    phrases: Sequence[str], loose: set[str], scored: list[tuple[float, Hit, str]], top: float
) -> list[tuple[float, Hit, str]]:
    """Candidates that state a distinctive phrase of the topic ("tree search") rank with the best match,
    with the sentence that states it; a phrase that most candidates share ("language models") counts for nothing."""
    texts = [f"{h.paper.title} {h.paper.abstract}" for _, h, _ in scored]
    phrases = [
        ph for ph in phrases
        if 0 < sum(_states(ph, loose, t) for t in texts) <= max(1, len(texts) // 2)
    ]
    out = []
    for (score, hit, sentence), text in zip(scored, texts):
        said = [ph for ph in phrases if _states(ph, loose, text)]
        if said:
            stating = [s for s in split_sentences(hit.paper.abstract) if any(_states(ph, loose, s) for ph in said)]
            score, sentence = max(score, top), (stating[0] if stating else sentence)
        out.append((score, hit, sentence))
    return out


def strip_names(question: str, sides: Sequence[str]) -> str:
    """The question without the names of the sides compared.

    >>> strip_names("Does SPARK or SPELL score higher?", ["SPARK", "SPELL"])
    'Does or score higher?'
    """
    for side in sides:
        question = re.sub(re.escape(side), " ", question, flags=re.IGNORECASE)
    return " ".join(question.split())


def on_subject(question: str, paper) -> bool:
    """Whether ``paper`` is about something the question names (or the question names nothing).

    >>> from paperchat.rag.corpus import Paper
    >>> p = Paper(id="f", title="FooNet: Sparse Audio", abstract="FooNet denoises field recordings.")
    >>> on_subject("What SNR does FooNet reach on BarBench?", p), on_subject("Who painted the Mona Lisa?", p)
    (True, False)
    """
    asked = [n for n in dict.fromkeys(names(question) + proper_nouns(question))]
    return not asked or any(name_in(n, f"{paper.title} {paper.abstract}") for n in asked)


@dataclass
class Plan:
    """How one question will be answered: its sources, and the answer when no model is needed."""

    shape: str
    sources: list[Source]
    draft: str | None = None
    sides: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    side_of: dict[str, int] = field(default_factory=dict)  # comparison side -> its source number
    side_questions: dict[str, str] = field(default_factory=dict)  # comparison side -> the question asked of it alone
    related: list[Related] = field(default_factory=list)
    refusal: bool = False


def finish(plan: Plan, result: Critique, sources: Sequence[Source]) -> tuple[str, list[AnswerRow]]:
    """The answer text and its rows, shaped for the question from the checked claims."""
    kept = [c for c in result.claims if c.kept]
    by_n = {s.n: s for s in sources}
    answer = plan.draft if plan.refusal and plan.draft else result.answer
    rows: list[AnswerRow] = []
    if plan.shape == "which-paper" and kept:
        cited = [n for c in kept for n in c.sources if n in by_n]
        if cited and not any(mentions(answer, by_n[n].paper) for n in cited):
            answer = f'The paper is "{by_n[cited[0]].paper.title}" [{cited[0]}]. {answer}'
        for n in dict.fromkeys(cited):  # the abstract's name for its method, when the title lacks it: "… From Data (PIT)"
            paper, other = by_n[n].paper, alias(by_n[n].paper)
            if other and paper.title in answer and not name_in(other, answer):
                quoted = f'"{paper.title}"' if f'"{paper.title}"' in answer else paper.title
                answer = answer.replace(quoted, f"{quoted} ({other})", 1)
    elif plan.shape == "list" and kept:
        for c in kept:
            if not c.sources or c.sources[0] not in by_n:
                continue
            src = by_n[c.sources[0]]
            same = next((r for r in rows if r.sources[0] == src.n), None)
            if same is not None:  # a line the critique re-cited to a paper already listed joins that paper's row
                same.text = f"{same.text} {cite(c.text, c.sources)}"
                continue
            rows.append(AnswerRow(label=src.paper.title, text=cite(c.text, c.sources), sources=c.sources))
        names_ = "; ".join(f"{display_name(by_n[r.sources[0]].paper)} [{r.sources[0]}]" for r in rows)
        answer = f"{len(rows)} paper{'s' if len(rows) != 1 else ''} match: {names_}."
    elif plan.shape == "comparison":
        for side in plan.sides:
            src = by_n.get(plan.side_of[side]) if side in plan.side_of else None
            claims = [c for c in kept if src is not None and src.n in c.sources]
            text = " ".join(cite(c.text, c.sources) for c in claims)
            rows.append(
                AnswerRow(label=side, text=text or prompts.SIDE_MISSING, sources=[src.n] if src and claims else [], missing=not claims)
            )
        gaps = [r.label for r in rows if r.missing]
        if gaps and kept:
            answer = f"{answer} {prompts.SIDE_NOT_STATED.format(side=' and '.join(gaps))}"
    return answer, rows


def _citations(result: Critique, sources: Sequence[Source]) -> list[Citation]:
    by_n = {s.n: s for s in sources}
    used: dict[int, list[str]] = {}
    for claim in result.claims:
        if not claim.kept:
            continue
        for n in claim.sources:
            support = used.setdefault(n, [])
            if claim.support and claim.support not in support:
                support.append(claim.support)
    out = []
    for n in sorted(used):
        src = by_n.get(n)
        if src is None:
            continue
        out.append(Citation(n=n, **src.paper.shown(), chunk=src.chunk, supporting=used[n]))
    return out
