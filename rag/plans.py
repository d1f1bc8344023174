"""How each shape of question is answered: which papers, which sentences, and the answer itself when no model is needed.

A listing fact is written from the paper's record; a list names each matching paper with its
matching sentence (:mod:`paperchat.rag.list_search`); a comparison finds each side's own paper;
a question no paper found comes close to is refused at once; the rest get the best-matching
sentences (:mod:`paperchat.rag.evidence`) for the model to draft from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import prompts
from .answer import Related
from .critique import Source, off_subject
from .evidence import on_subject, pick_evidence, relevance, unrelated
from .list_search import list_matches
from .listing import FIELD_NAMES, compare_listing, display_name, listing_sentence, mentions, metadata_claim, short_name
from .referents import Referent, mask_titles, referents, without
from .retrieval import Hit, Retriever
from .settings import Settings
from .shapes import QuestionShape, asks_process, classify, listing_fields
from .sides import clause_questions, comparison_sides, side_questions
from .text import INJECTION, content_words, fold, name_in, names, proper_nouns, split_sentences


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


def keeps_ask(side_question: str, others: Sequence[str], question: str, sides: Sequence[str], least: int) -> bool:
    """Whether a side's own question still asks what the comparison asks: it holds at least ``least`` (all, when
    fewer) of the question's words that name no side and that any side's question (``others``) kept. A side
    question rebuilt from the wrong clause, such as "What is FooNet?" next to "What is BarNet: what latency does
    it measure?", has lost the ask.

    >>> q, sides = "FooNet vs BarNet: what latency does each one measure on phones?", ["FooNet", "BarNet"]
    >>> keeps_ask("What is FooNet?", ["What is BarNet: what latency does it measure on phones?"], q, sides, 2)
    False
    >>> keeps_ask("What is BarNet: what latency does it measure on phones?", ["What is FooNet?"], q, sides, 2)
    True
    """
    named = set(content_words(" ".join(sides)))
    kept = set(content_words(" ".join([side_question, *others])))
    ask = {w for w in content_words(question) if w not in named and w in kept}
    return len(ask & set(content_words(side_question))) >= min(least, len(ask))


# "which model / method …": the noun may name a paper's contribution, or a thing a named paper uses
_THING_ASKED = re.compile(r"\b(?:which|what) (?:\w+ )?(?:model|method|framework|system|approach)\b", re.IGNORECASE)


def asks_a_thing_of(question: str, refs: Sequence[Referent]) -> bool:
    """Whether a question read as which-paper ("Which model …?") asks a thing of one paper it names by the paper's
    own name ("Which model does FooNet distil into?"): it is a question about that paper, not for one.

    >>> from paperchat.rag.corpus import Paper
    >>> foo = Referent("FooNet", 0, 6, Hit(paper=Paper(id="f", title="FooNet: X", abstract=""), chunk="", chunk_id="f:0", score=1.0), True)
    >>> asks_a_thing_of("Which model does FooNet distil into?", [foo]), asks_a_thing_of("Which paper extends FooNet?", [foo])
    (True, False)
    """
    return len(refs) == 1 and refs[0].named and bool(_THING_ASKED.search(question))


def strip_names(question: str, sides: Sequence[str]) -> str:
    """The question without the names of the sides compared.

    >>> strip_names("Does SPARK or SPELL score higher?", ["SPARK", "SPELL"])
    'Does or score higher?'
    """
    for side in sides:
        question = re.sub(re.escape(side), " ", question, flags=re.IGNORECASE)
    return " ".join(question.split())


class Planner:
    """Plans questions against ``retriever`` with ``settings.answer`` (``evidence_sentences`` overrides its count)."""

    def __init__(self, settings: Settings, retriever: Retriever, evidence_sentences: int | None = None):
        self.settings = settings
        self.retriever = retriever
        self.evidence_sentences = evidence_sentences or settings.answer.evidence_sentences
        self.keep_ask = settings.answer.side_question_words

    def evidence(self, question: str, hits: Sequence[Hit], limit: int | None = None) -> list[Source]:
        """Numbered sources holding the (``limit``, default ``evidence_sentences``) sentences that best match the question;
        for a question that asks two things (:func:`two_asks`) or how something works (:func:`asks_process`), all of
        the best-matching paper's sentences."""
        return pick_evidence(
            self.retriever.meaning, question, hits, count=limit or self.evidence_sentences,
            margin=self.settings.answer.evidence_margin, whole_best=limit is None,
            always_whole=self.settings.answer.whole_paper
            or (self.settings.answer.whole_paper_for_process and asks_process(question)),
        )

    def unrelated(self, question: str, hits: Sequence[Hit]) -> bool:
        """Whether no paper of ``hits`` is about what ``question`` asks (see :func:`evidence.unrelated`)."""
        return unrelated(self.retriever.meaning, question, hits, self.settings.answer.min_relevance)

    def relevance(self, question: str, hits: Sequence[Hit]) -> float:
        """How close the closest title or abstract sentence of ``hits`` is to ``question`` (MiniLM cosine)."""
        return relevance(self.retriever.meaning, question, hits)

    def plan(self, question: str, shape: QuestionShape) -> Plan:
        """Which papers, which sentences, and (for listing fields and lists) the answer itself."""
        k = self.settings.answer.sources
        if shape.shape == "list":
            return self._list(question)
        refs = self.referents(question)
        masked = mask_titles(question, refs)
        if masked != question:  # a title's own words ("More than", "v.s.") do not make the question a comparison
            shape = classify(masked)
        if shape.shape == "which-paper" and asks_a_thing_of(masked, refs):
            shape = QuestionShape("factoid")
        # a question that refers to two papers asks something of each, however it is worded
        refs = refs if shape.shape in ("factoid", "comparison", "metadata") else []
        if shape.shape == "metadata" and shape.field and len(refs) < 2:
            return self._metadata(question, shape)
        if shape.shape == "comparison" or len(refs) >= 2:
            plan = self._comparison(question, shape.field, refs)
            if plan is not None:
                return plan
        hits = self.retriever.search(question, k=k)
        kind = shape.shape if shape.shape != "comparison" else "factoid"
        if kind == "factoid" and len(refs) == 1 and refs[0].named and self.settings.answer.named_paper_alone:
            # a question about the one paper it names by that paper's own name ("How does FooNet …?") is answered
            # from that paper alone: another paper's sentences only give the small model something else to cite
            hits = [h for h in hits if h.paper.id == refs[0].hit.paper.id] or [refs[0].hit]
        if hits and self.unrelated(question, hits):
            # nothing found is about what was asked ("Which river is the longest in Europe?"): no draft to wait for
            return Plan(kind, [], draft=prompts.REFUSAL, refusal=True)
        return Plan(kind, self.evidence(question, hits))

    def _metadata(self, question: str, shape: QuestionShape) -> Plan:
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

    def _list(self, question: str) -> Plan:
        ranked = list_matches(question, self.retriever, self.settings.answer)
        if not ranked:
            return Plan("list", [], draft=prompts.REFUSAL)
        sources = [Source(n=i, paper=h.paper, excerpt=[sent], chunk=h.chunk) for i, (_, h, sent) in enumerate(ranked, 1)]
        lines = [f"{display_name(src.paper)}: {src.excerpt[0].rstrip()} [{src.n}]" for src in sources]
        return Plan("list", sources, draft="\n".join(lines))

    def referents(self, question: str) -> list[Referent]:
        """The papers ``question`` refers to by name or description (:func:`referents.referents`)."""
        return referents(question, lambda text, k: self.retriever.search(text, k=k), self.settings.answer.description_fit)

    def _comparison(self, question: str, field: str | None = None, refs: Sequence[Referent] = ()) -> Plan | None:
        if len(refs) >= 2:
            return self._compared(question, field, refs[:2])
        sides = comparison_sides(question)
        if len(sides) != 2 or self._within_one(sides, question):
            return None
        if len(refs) == 1 and not any(fold(side) in fold(refs[0].words) or fold(refs[0].words) in fold(side) for side in sides):
            # the question refers to one paper and compares two things that are neither of them a paper (its data
            # format and a benchmark, say): it is a question about that paper
            return None
        sources: list[Source] = []
        missing: list[str] = []
        side_of: dict[str, int] = {}
        own = side_questions(question)
        asked = {
            side: q for side, q in zip(sides, own)
            if keeps_ask(q, [o for o in own if o is not q], question, sides, self.keep_ask)
        }
        first, second = (self._side_paper(side, question, []) for side in sides)
        if first is not None and second is not None and first.paper.id == second.paper.id:
            # both sides are best read as one paper ("a method that pits a speaker against a listener"): the
            # question describes one paper twice, and is answered as a question about it
            return None
        for side in sides:
            hit = self._side_paper(side, question, [s.paper.id for s in sources])
            if hit is None:
                missing.append(side)
                continue
            # the side is drafted from its own question, so its evidence is chosen for that question
            own = asked.get(side) or strip_names(question, [s for s in sides if s != side])
            sources.append(Source(n=len(sources) + 1, paper=hit.paper, excerpt=self._side_excerpt(own, hit), chunk=hit.chunk))
            side_of[side] = sources[-1].n
        if missing and sources and all(name_in(m, sources[0].paper.abstract) for m in missing):
            # "How much does FooNet improve on BarNet?": the other side is a baseline
            # inside the one paper, so this is a question about that paper
            return None
        plan = Plan("comparison", sources, sides=sides, missing=missing, side_of=side_of, side_questions=asked)
        if field in ("authors", "upvotes", "date", "links") and len(sources) == 2:
            # listing fields are compared from the records themselves, not by the model
            return self._listing_comparison(plan, field) or plan
        return plan

    def _within_one(self, sides: Sequence[str], question: str) -> bool:
        """Whether both sides are names one paper found for the question uses (its benchmark and its baseline, say):
        what is compared is inside that paper, so the question is about it, not a comparison of two papers."""
        if not all(names(side) or proper_nouns(side) for side in sides):
            return False
        return any(
            all(name_in(side, f"{h.paper.title} {h.paper.abstract}") for side in sides)
            for h in self.retriever.search(question, k=3)
        )

    def _compared(self, question: str, field: str | None, refs: Sequence[Referent]) -> Plan:
        """The comparison of the two papers ``refs``: each side drafted from its own paper, asked the question
        without the other side (or the clause of the question that is its own, when that keeps the ask)."""
        sides = [r.words for r in refs]
        clauses = clause_questions(question)
        sources, side_of, asked = [], {}, {}
        for n, ref in enumerate(refs, 1):
            other = refs[1] if n == 1 else refs[0]
            own = next((q for s, q in clauses.items() if fold(s) in fold(ref.words) or fold(ref.words) in fold(s)), None)
            others = [q for q in clauses.values() if q is not own]
            # a clause that still names the other side ("A and B both …; what does each …") is no side's own
            if own is None or other.words in own or not keeps_ask(own, others, question, sides, self.keep_ask):
                own = without(question, other)
            asked[ref.words] = own
            sources.append(Source(n=n, paper=ref.hit.paper, excerpt=self._side_excerpt(own, ref.hit), chunk=ref.hit.chunk))
            side_of[ref.words] = n
        plan = Plan("comparison", sources, sides=sides, side_of=side_of, side_questions=asked)
        if field in ("authors", "upvotes", "date", "links"):
            return self._listing_comparison(plan, field) or plan
        return plan

    def _listing_comparison(self, plan: Plan, field: str) -> Plan | None:
        """A comparison of a listing field, written from the two records themselves (None if one lacks it)."""
        a, b = plan.sources
        claims = [metadata_claim(src.paper, field, src.n) for src in plan.sources]
        if not all(claims):
            return None
        a.excerpt, b.excerpt = [listing_sentence(a.paper)], [listing_sentence(b.paper)]
        compared = compare_listing(a.paper, b.paper, field, 1, 2)
        plan.draft = " ".join([*claims, *([compared] if compared else [])])
        return plan

    def _side_excerpt(self, asked: str, hit: Hit) -> list[str]:
        """The sentences one side is drafted from: its whole abstract when short enough, else those best for ``asked``."""
        whole = [s for s in split_sentences(hit.paper.abstract) if not INJECTION.search(s)]
        if len(whole) <= self.settings.answer.side_sentences:
            return whole  # the side's whole abstract: a side's answer is often worded unlike its question
        picked = self.evidence(asked, [hit], limit=self.settings.answer.side_sentences)
        return picked[0].excerpt if picked else whole[:3]

    def _side_paper(self, side: str, question: str, taken: Sequence[str]) -> Hit | None:
        """The paper one side of a comparison is about: the one it names, else the best match of its description."""
        if names(side) or proper_nouns(side):
            hits = [h for h in self.retriever.search(f"{side} {question}", k=5) if mentions(side, h.paper) or name_in(side, h.paper.title)]
            hits = hits or [h for h in self.retriever.search(side, k=3) if name_in(side, f"{h.paper.title} {h.paper.abstract}")]
            # "the VLM self-correction paper": no paper has that name, but its description finds one that uses
            # the side's name words (VLM) somewhere in its abstract
            hits = hits or [h for h in self.retriever.search(side, k=3) if on_subject(side, h.paper)]
        else:
            hits = self.retriever.search(side, k=3)
        # "SCoRe" is that paper's name, not the word "score" in another title
        exact = [h for h in hits if re.search(rf"(?<!\w){re.escape(side)}(?!\w)", f"{h.paper.title} {h.paper.abstract}")]
        return next((h for h in [*exact, *hits] if h.paper.id not in taken), None)
