"""The answering pipeline: question -> retrieval -> evidence -> draft -> self-critique -> answer.

:meth:`Pipeline.run` yields events as it goes (status lines, the draft's tokens, then
the finished :class:`Answer`), so front ends can stream; :meth:`Pipeline.ask` returns
just the answer.

Its parts live beside it: the question's cleaning in :mod:`paperchat.rag.question`, the plan per
question shape in :mod:`paperchat.rag.plans` (with :mod:`paperchat.rag.evidence` and
:mod:`paperchat.rag.list_search`), the draft in :mod:`paperchat.rag.drafting`, the answer's text and
rows in :mod:`paperchat.rag.finish`, and the records it returns in :mod:`paperchat.rag.answer`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence

from . import prompts
from .answer import Answer, AnswerRow, Citation, Done, Event, Related, Status, Timings, Token
from .critique import Critic, Critique, Source, no_critique
from .drafting import Drafter, name_cited_objects, name_the_source, name_the_subject, sources_text
from .evidence import related_sentences
from .finish import citations, finish
from .followup import resolve_position
from .models import LLM, Message, Request, Usage
from .plans import Plan, Planner, strip_names
from .question import check_question, clean_history
from .retrieval import Hit, Retriever
from .settings import Settings
from .shapes import QuestionShape, asks_listing, classify, listing_fields
from .text import names, proper_nouns
from .kinds import NameKinds
from .verify import Rereader

log = logging.getLogger(__name__)

# the records and the question check stay importable from here, where the edges imported them before the split
__all__ = [
    "Answer", "AnswerRow", "Citation", "Done", "Event", "Pipeline", "Related", "Status", "Timings", "Token",
    "check_question", "clean_history",
]


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


def critique_question(plan: Plan, question: str) -> str:
    """The question the critique checks the draft of ``plan`` against ('' when claims need not answer it)."""
    # each side of a comparison is checked against its own paper, so the other side's name is not asked of it
    asked = strip_names(question, plan.sides) if plan.sides else question
    if plan.shape == "list":
        asked = ""  # the listed sentences are the abstracts' own; which papers match was decided by the plan
    if plan.draft is not None and (plan.shape == "comparison" or len(listing_fields(question)) > 1):
        asked = ""  # one claim per field (or side) asked, each written from the record (and checked against it)
    return asked


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
        self.planner = Planner(settings, retriever, evidence_sentences)
        self.drafter = Drafter(settings, self.layout, self.planner)
        self.name = "paperchat" if self.critique else "no-critique"
        self._kinds: dict[str, dict[str, str]] = {}  # each paper's names typed by the pipeline's model, kept

    @property
    def evidence_sentences(self) -> int:
        """Best-matching sentences shown to the model (``answer.evidence_sentences`` unless given)."""
        return self.planner.evidence_sentences

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

    def plan(self, question: str, shape: QuestionShape) -> Plan:
        """Which papers, which sentences, and (for listing fields and lists) the answer itself."""
        return self.planner.plan(question, shape)

    def evidence(self, question: str, hits: Sequence[Hit], limit: int | None = None) -> list[Source]:
        """Numbered sources holding the (``limit``, default ``evidence_sentences``) sentences that best match the question;
        for a question that asks two things (:func:`two_asks`), all of the best-matching paper's sentences."""
        return self.planner.evidence(question, hits, limit)

    def unrelated(self, question: str, hits: Sequence[Hit]) -> bool:
        """Whether no paper of ``hits`` is about what ``question`` asks: no name the question uses ("SPARK",
        "GPT-4o"; not plain capitalised words) is in them, and no title or sentence of theirs comes within
        ``answer.min_relevance`` of it (a name found keeps the question, whatever its language or wording)."""
        return self.planner.unrelated(question, hits)

    def relevance(self, question: str, hits: Sequence[Hit]) -> float:
        """How close the closest title or abstract sentence of ``hits`` is to ``question`` (MiniLM cosine)."""
        return self.planner.relevance(question, hits)

    def sources_text(self, sources: Sequence[Source], listing: bool = True) -> str:
        """The numbered sources as the model sees them: title, chosen sentences, and (``listing``) the listing's fields."""
        return sources_text(sources, listing)

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
        kinds = NameKinds(model, self._kinds if model is self.llm else None) if reread else None
        return Critic(
            model if judge else None, layout=self.layout, embedder=self.retriever.meaning, rereader=rereader, kinds=kinds,
            disabled=frozenset(self.settings.answer.disabled_checks), restated_share=self.settings.answer.restated_share,
            reanswer_sentences=self.settings.answer.reanswer_sentences,
            process_sentences=self.settings.answer.process_sentences,
        )

    def related(self, question: str, sources: Sequence[Source], limit: int = 2) -> list[Related]:
        """What the sources do state about the thing asked, for a withheld or refused answer."""
        return related_sentences(self.retriever.meaning, question, sources, limit)

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
        # the listing's fields only for a question that may be about them: the prompt's length sets the first token's time
        shown = self.sources_text(plan.sources, listing=asks_listing(standalone))

        t = time.perf_counter()
        draft, usage, side_drafts = yield from self.drafter.write(llm, plan, standalone, shown, timings, started)
        timings.draft = time.perf_counter() - t
        timings.count(usage)
        # a which-paper draft's subject is often just its citation ("[1] shows …"): the cited paper is the answer
        to_check = name_cited_objects(draft, plan.sources)  # "… is proposed in [2]." names what [2] is
        to_check = name_the_source(to_check, plan.sources)  # "The source [2] reports …" names paper 2
        if plan.shape == "which-paper":
            to_check = name_the_subject(to_check, plan.sources)

        t = time.perf_counter()
        result = yield from self._checked(llm, plan, standalone, to_check, side_drafts, shown, timings)
        if plan.refusal:
            result.verdict = "refused"
        answer_text, rows = finish(plan, result, plan.sources)
        related = plan.related or (self.related(standalone, plan.sources) if result.verdict in ("refused", "not supported") else [])
        timings.critique = time.perf_counter() - t
        timings.total = time.perf_counter() - started
        for name in ("rewrite", "retrieval", "draft", "critique", "total"):
            setattr(timings, name, round(getattr(timings, name), 3))
        if timings.first_token is not None:
            timings.first_token = round(timings.first_token, 3)
        info = self.llm.describe()
        yield Done(
            Answer(
                question=question, standalone_question=standalone, answer=answer_text, verdict=result.verdict,
                citations=citations(result, plan.sources), claims=result.claims, draft=draft, removed=result.removed,
                timings=timings, backend=str(info.get("backend", "")), model=str(info.get("model", "")),
                pipeline=self.name, shape=plan.shape, rows=rows, related=related,
            )
        )

    def _checked(
        self,
        llm: _UsageTap,
        plan: Plan,
        question: str,
        to_check: str,
        side_drafts: list[tuple[str, str, str]],
        shown: str,
        timings: Timings,
    ):
        """The critique of the draft (``to_check``, or each side of ``side_drafts``), with a Status event when it
        runs; returns the :class:`Critique`, and notes the critique's prompt tokens in ``timings``."""
        if not self.critique:
            return no_critique(to_check, plan.sources)
        yield Status("critique", "Checking every claim against the abstracts…")
        before = (llm.usage.prompt_tokens, llm.usage.cached_tokens)
        # answers written from the listing or from the abstracts' own sentences (lists) have nothing to re-read
        from_model = plan.draft is None and plan.shape != "list"
        critic = self.critic(judge=None if plan.draft is None else False, llm=llm, reread=None if from_model else False)
        if side_drafts:  # each side is checked against the question asked of it, with the sources it saw
            result: Critique = critic.check_parts(side_drafts, plan.sources)
        else:
            asked = critique_question(plan, question)
            result = critic.check(to_check, plan.sources, shown, question=asked, shape=plan.shape)
        timings.critique_prompt_tokens = llm.usage.prompt_tokens - before[0]
        timings.critique_cached_tokens = llm.usage.cached_tokens - before[1]
        return result

    def ask(self, question: object, history: Sequence[tuple[str, str]] = ()) -> Answer:
        """Answer ``question`` and return the finished :class:`Answer`."""
        for event in self.run(question, history):
            if isinstance(event, Done):
                return event.answer
        raise RuntimeError("the pipeline ended without an answer")  # pragma: no cover
