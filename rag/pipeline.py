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
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from . import prompts
from .critique import ClaimCheck, Critic, Critique, Source, Verdict, no_critique, split_claims
from .errors import QuestionError, QuestionTooLongError
from .models import LLM, Message, Request, Usage
from .retrieval import Hit, Retriever
from .settings import Settings
from .text import content_words, names, proper_nouns, split_sentences

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffe\uffff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
#: Longest earlier turn kept when rewriting a follow-up.
MAX_TURN_CHARS = 4000


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
#: Sentences of an abstract that read as instructions to a model are never shown to it.
INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,60}\b(instructions?|prompts?|rules|above|previous|everything)\b"
    r"|\bsystem prompt\b|\byou are now\b|\b(you|assistant|ai|model) (must|should) (say|reply|answer|respond|state|write)\b"
    r"|\b(respond|reply|answer) (only )?with\b",
    re.IGNORECASE,
)


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
    if not any(unicodedata.category(ch)[0] not in "CZ" for ch in text):  # only format/invisible characters left
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


class Timings(BaseModel):
    """Where the time went, in seconds, and what the model did."""

    rewrite: float = 0.0
    retrieval: float = 0.0
    first_token: float | None = None
    draft: float = 0.0
    critique: float = 0.0
    total: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    critique_prompt_tokens: int = 0
    critique_cached_tokens: int = 0
    tokens_per_second: float = 0.0


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
                self.usage.prompt_tokens += item.prompt_tokens
                self.usage.cached_tokens += item.cached_tokens
                self.usage.completion_tokens += item.completion_tokens
            yield item


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
        self.name = "paperchat" if self.critique else "no-critique"

    # -- stages ---------------------------------------------------------------------

    def standalone(self, question: str, history: Sequence[tuple[str, str]], llm: LLM | None = None) -> str:
        """``question`` rewritten to stand alone, using the last turns of ``history``."""
        turns = list(history)[-2 * self.settings.answer.history_turns :]
        if not turns:
            return question
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

    def evidence(self, question: str, hits: Sequence[Hit]) -> list[Source]:
        """Numbered sources holding the sentences that best match the question."""
        embedder = self.retriever.embedder
        q_vec = embedder.embed([question])[0]
        q_words = set(content_words(question))
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
                candidates.append((score, rank, i, sentence))
        chosen = sorted(candidates, key=lambda c: -c[0])[: self.evidence_sentences]
        sources: list[Source] = []
        for rank, hit in enumerate(hits):
            picked = sorted((i, s) for _, r, i, s in chosen if r == rank)
            if picked:
                sources.append(Source(n=len(sources) + 1, paper=hit.paper, excerpt=[s for _, s in picked], chunk=hit.chunk))
        return sources

    def sources_text(self, sources: Sequence[Source]) -> str:
        return prompts.sources_block([(s.n, s.paper.title, s.excerpt) for s in sources])

    # -- the whole run --------------------------------------------------------------

    def run(self, question: object, history: Sequence[tuple[str, str]] = ()) -> Iterator[Event]:
        """Answer ``question``, yielding progress; the last event is :class:`Done`. Raises PaperchatError."""
        started = time.perf_counter()
        question = check_question(question, self.settings.answer.max_question_chars)
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
        hits = self.retriever.search(standalone, k=self.settings.answer.sources)
        sources = self.evidence(standalone, hits)
        timings.retrieval = time.perf_counter() - t
        sources_text = self.sources_text(sources)

        yield Status("draft", f"Drafting from {len(sources)} papers…")
        t = time.perf_counter()
        messages = [Message(r, c) for r, c in prompts.draft_messages(sources_text, standalone, self.layout)]
        request = Request(
            messages,
            max_tokens=self.settings.model.max_answer_tokens,
            temperature=self.settings.model.temperature,
            seed=self.settings.model.seed,
        )
        pieces: list[str] = []
        usage = Usage()
        for item in llm.stream(request):
            if isinstance(item, Usage):
                usage = item
                continue
            if timings.first_token is None:
                timings.first_token = time.perf_counter() - started
            pieces.append(item)
            yield Token(item)
        draft = "".join(pieces).strip()
        if not split_claims(draft):
            # A draft with no statement (the small model sometimes replies with a bare "[1]"):
            # ask once more, for the sentence of the sources that answers the question.
            yield Status("draft", "Looking for the sentence that answers it…")
            retry = [Message(r, c) for r, c in prompts.extract_messages(sources_text, standalone)]
            pieces = []
            for item in llm.stream(Request(retry, max_tokens=request.max_tokens, temperature=0.0, seed=request.seed)):
                if isinstance(item, Usage):
                    usage = item
                    continue
                pieces.append(item)
                yield Token(item)
            draft = "".join(pieces).strip()
        timings.draft = time.perf_counter() - t
        timings.prompt_tokens, timings.cached_tokens = usage.prompt_tokens, usage.cached_tokens
        timings.completion_tokens = usage.completion_tokens
        timings.tokens_per_second = round(usage.tokens_per_second, 2)

        t = time.perf_counter()
        if self.critique:
            yield Status("critique", "Checking every claim against the abstracts…")
            before = (llm.usage.prompt_tokens, llm.usage.cached_tokens)
            critic = Critic(llm if self.settings.answer.model_judge else None, layout=self.layout)
            result = critic.check(draft, sources, sources_text, question=standalone)
            timings.critique_prompt_tokens = llm.usage.prompt_tokens - before[0]
            timings.critique_cached_tokens = llm.usage.cached_tokens - before[1]
        else:
            result = no_critique(draft, sources)
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
                answer=result.answer,
                verdict=result.verdict,
                citations=_citations(result, sources),
                claims=result.claims,
                draft=draft,
                removed=result.removed,
                timings=timings,
                backend=str(info.get("backend", "")),
                model=str(info.get("model", "")),
                pipeline=self.name,
            )
        )

    def ask(self, question: object, history: Sequence[tuple[str, str]] = ()) -> Answer:
        """Answer ``question`` and return the finished :class:`Answer`."""
        for event in self.run(question, history):
            if isinstance(event, Done):
                return event.answer
        raise RuntimeError("the pipeline ended without an answer")  # pragma: no cover


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
        p = src.paper
        out.append(
            Citation(
                n=n, title=p.title, paper_id=p.id, date=p.date, authors=p.authors, upvotes=p.upvotes,
                urls=p.urls, abstract=p.abstract, chunk=src.chunk, supporting=used[n],
            )
        )
    return out
