"""A stand-in answering pipeline that returns structured answers (list, comparison, withheld).

It has the interface the UI uses of :class:`paperchat.rag.pipeline.Pipeline` (``settings``, ``llm``,
``name``, ``run()`` yielding Status / Token / Done, ``ask()``) and builds its answers from the
real papers of the index, so the browser shows real titles, abstracts and citation cards.
It stands in for the list / comparison flows being built in the pipeline (issue 12) and
lets the UI be tested without them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from paperchat.rag.answer import Answer, AnswerRow, Citation, Done, Event, Related, Status, Timings, Token
from paperchat.rag.corpus import Paper
from paperchat.rag.critique import ClaimCheck, cite
from paperchat.rag.models import LLM
from paperchat.rag.question import check_question
from paperchat.rag.retrieval import Retriever
from paperchat.rag.settings import Settings
from paperchat.rag import prompts
from paperchat.rag.text import split_sentences

from .fakes import ScriptedLLM

WRONG_CLAIM = "SPELL extends the context window to 128k tokens."


def comparison_summary(stated: Sequence[str], missing: Sequence[str]) -> str:
    if missing:
        return f"Only {', '.join(stated) or 'neither'} is described in the papers; nothing states {', '.join(missing)}."
    return f"{' and '.join(stated)} are compared below, each from its own paper."


def _sentence(paper: Paper, *words: str) -> str:
    sentences = split_sentences(paper.abstract)
    for word in words:
        hit = next((s for s in sentences if word.casefold() in s.casefold()), None)
        if hit:
            return hit
    return sentences[0]


def _citation(n: int, paper: Paper, sentence: str) -> Citation:
    return Citation(
        n=n, title=paper.title, paper_id=paper.id, date=paper.date, authors=paper.authors, upvotes=paper.upvotes,
        urls=paper.urls, abstract=paper.abstract, supporting=[sentence],
    )


class ShapedPipeline:
    """Answers "which papers … <keyword>" as a list, "compare A and B" as a comparison, anything else withheld."""

    name = "paperchat"

    def __init__(self, settings: Settings, retriever: Retriever, llm: LLM | None = None, *, keyword: str = "self-play"):
        self.settings = settings
        self.retriever = retriever
        self.llm = llm or ScriptedLLM(["(not used)"])
        self.keyword = keyword

    def _answer(self, question: str, **fields) -> Answer:
        rows = fields.get("rows", [])
        claims = [
            ClaimCheck(text=r.text, cited=r.sources, sources=r.sources, verdict="supported", support=r.text)
            for r in rows
            if not r.missing
        ]
        fields.setdefault("claims", claims)
        fields.setdefault("draft", fields["answer"])
        return Answer(
            question=question, standalone_question=question, timings=Timings(first_token=0.2, total=0.4),
            backend="scripted", model="scripted", **fields,
        )

    def list_answer(self, question: str) -> Answer:
        papers = [p for p in self.retriever.papers() if self.keyword in p.abstract.casefold()]
        rows, cites = [], []
        for n, paper in enumerate(papers, 1):
            sentence = _sentence(paper, self.keyword)
            rows.append(AnswerRow(label=paper.title, text=cite(sentence, [n]), sources=[n]))
            cites.append(_citation(n, paper, sentence))
        names = ", ".join(f"{p.title.split(':')[0]} [{n}]" for n, p in enumerate(papers, 1))
        text = f"{len(papers)} papers are about {self.keyword}: {names}."
        return self._answer(question, answer=text, verdict="supported", citations=cites, shape="list", rows=rows)

    def comparison_answer(self, question: str) -> Answer:
        named = re.search(r"compare (.+?) and (.+?)(?: on .*)?\??$", question, re.IGNORECASE)
        sides = [named.group(1).strip(), named.group(2).strip()] if named else []
        by_name = {p.title.split(":")[0].casefold(): p for p in self.retriever.papers()}
        rows, cites = [], []
        for side in sides:
            paper = by_name.get(side.casefold())
            if paper is None:
                rows.append(AnswerRow(label=side, text="", missing=True))
                continue
            n = len(cites) + 1
            sentence = _sentence(paper, "we propose", "we introduce", side)
            rows.append(AnswerRow(label=side, text=cite(sentence, [n]), sources=[n]))
            cites.append(_citation(n, paper, sentence))
        stated = [r.label for r in rows if not r.missing]
        missing = [r.label for r in rows if r.missing]
        text = comparison_summary(stated, missing)
        verdict = "supported" if not missing else "partially supported"
        return self._answer(question, answer=text, verdict=verdict, citations=cites, shape="comparison", rows=rows)

    def withheld_answer(self, question: str) -> Answer:
        paper = next(p for p in self.retriever.papers() if p.title.startswith("SPELL"))
        sentence = _sentence(paper, "we propose")
        claim = ClaimCheck(
            text=WRONG_CLAIM, cited=[1], sources=[], verdict="unsupported",
            reasons=["'128k' is not in source [1]", prompts.REMOVED_NOTE],
        )
        return self._answer(
            question, answer=f"{prompts.REFUSAL} {prompts.WITHHELD}", verdict="not supported", citations=[], claims=[claim],
            draft=f"{WRONG_CLAIM} [1]", removed=1, related=[Related(n=1, title=paper.title, sentence=sentence)],
        )

    def answer_for(self, question: str) -> Answer:
        q = question.casefold()
        if q.startswith("which papers"):
            return self.list_answer(question)
        if q.startswith("compare"):
            return self.comparison_answer(question)
        return self.withheld_answer(question)

    def check(self, question: object) -> str:
        return check_question(question, self.settings.answer.max_question_chars)

    def run(self, question: object, history: Sequence[tuple[str, str]] = ()) -> Iterator[Event]:
        question = self.check(question)
        yield Status("retrieval", "Searching the papers…")
        answer = self.answer_for(question)
        yield Status("draft", "Drafting…")
        for word in answer.draft.split(" "):
            yield Token(word + " ")
        yield Status("critique", "Checking every claim against the abstracts…")
        yield Done(answer)

    def ask(self, question: object, history: Sequence[tuple[str, str]] = ()) -> Answer:
        for event in self.run(question, history):
            if isinstance(event, Done):
                return event.answer
        raise RuntimeError("no answer")  # pragma: no cover
