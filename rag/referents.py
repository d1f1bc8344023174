"""The papers a question refers to, and the words it refers to each with.

A question refers to a paper by one of the paper's own names (the name before its title's colon, the
name its abstract gives the method, its whole title, or a quoted part of it), or by a description
("the sparse audio denoising paper", "the study on crop disease"). Names the papers only *use* (a
benchmark, a rival model, a company) refer to no paper. A question that refers to two papers asks
something of each of them, whatever its wording: this is how a comparison is recognised and how its
two papers are found, instead of reading the sides off the sentence's grammar.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .corpus import Paper
from .listing import GENERIC_NAMES, alias, short_name
from .retrieval import Hit
from .text import content_words, fold, names, proper_nouns

#: how a question describes one paper: "the <words> paper" (or study, method, …, or a maker's noun such as
#: "synthesizer"), optionally "… paper on/about <words>"
_DESCRIBED = re.compile(
    r"\b(?:the|a|an)\s+((?:[\w\-'’/]+\s+){0,6}?[\w\-'’/]+)\s+(paper|study|work|framework|method|approach|system|model"
    r"|technique|algorithm|agent|survey|\w+(?:izer|iser|ator|ifier|oder|ector))\b"
    r"((?:\s+(?:on|about|that|which|for|where)\s+(?:(?!\s(?:and|or|vs\.?|versus|compared|with|but|both)\s)[^,;:?.]){3,80})?)",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"[\"“'‘]([^\"”'’]{6,160})[\"”'’]")
# words that describe any paper here, so they tell no paper from another
_VAGUE = frozenset(content_words("language model models large llm llms learning neural network deep data method"))


@dataclass(frozen=True)
class Referent:
    """One paper the question refers to: the question's ``words`` for it, the whole phrase that refers to it
    (``start``:``end``, "the 'FooNet' paper on audio" around the name), and the paper's hit."""

    words: str
    start: int
    end: int
    hit: Hit
    named: bool


def own_names(paper: Paper) -> list[str]:
    """The names a paper goes by: the name before its title's colon and the name its abstract gives its method.

    >>> own_names(Paper(id="x", title="FooNet: Sparse Audio Denoising", abstract="We propose FooNet."))
    ['FooNet']
    >>> own_names(Paper(id="y", title="Denoising Field Audio", abstract="We introduce Sparse Audio Denoising (SAD)."))
    ['SAD']
    """
    out = []
    if ":" in paper.title:
        out.append(short_name(paper.title))
    other = alias(paper)
    if other:
        out.append(other)
    return [n for n in out if len(n) >= 2 and n.upper() not in GENERIC_NAMES]


def find_name(name: str, question: str) -> re.Match | None:
    """Where ``name`` stands in ``question`` as a word, dashes and spaces aside, perhaps with a size after it
    ("FooNet-7B"); a name of one plain word must match its capitals ("SCoRe" is not the word "score").

    >>> find_name("Self-RAG", "How does selfRAG-13B retrieve?").group(0), find_name("SCoRe", "What score?")
    ('selfRAG', None)
    """
    squashed = re.sub(r"[\s\-_]", "", name)
    pattern = r"[\s\-_]?".join(re.escape(c) for c in squashed)
    flags = re.IGNORECASE if re.search(r"[\s\-]", name.strip()) else 0
    return re.search(rf"(?<![\w\-]){pattern}(?=-\d|(?![\w\-]))", question, flags)


def _title_part(paper: Paper, question: str, others: Sequence[Paper]) -> tuple[int, int] | None:
    """Where the question quotes a run of the paper's title without quotation marks ("how does iterative deepening
    sampling …"): the longest run of at least three words (two at the title's start) holding two telling words,
    found in no other candidate's title; None when there is none."""
    words = re.findall(r"[\w\-'’]+", paper.title)
    q = fold(question)
    if len(q) != len(question):
        return None
    for size in range(len(words), 1, -1):
        for i in range(len(words) - size + 1):
            if size < 3 and i > 0:
                continue
            run = " ".join(words[i:i + size])
            telling = [w for w in content_words(run) if w not in _VAGUE]
            if len(telling) < 2 or any(fold(run) in fold(o.title) for o in others if o.id != paper.id):
                continue
            m = re.search(rf"(?<![\w\-]){re.escape(fold(run))}(?![\w\-])", q)
            if m:
                return m.start(), m.end()
    return None


def _fits(description: str, paper: Paper, least: float) -> bool:
    """Whether at least ``least`` of the description's telling words are in the paper's title or abstract (by stem
    prefix, so "synthesis" finds "synthesizers")."""
    words = [w for w in dict.fromkeys(content_words(description)) if w not in _VAGUE]
    if len(words) < 2:
        return False
    text = set(content_words(f"{paper.title} {paper.abstract}"))
    found = sum(any(t.startswith(w[:5]) or w.startswith(t[:5]) for t in text if len(t) >= 4) for w in words)
    return found >= least * len(words)


def referents(question: str, search: Callable[[str, int], Sequence[Hit]], fit: float = 0.6) -> list[Referent]:
    """The distinct papers ``question`` refers to, in the order it refers to them; ``search(text, k)`` finds
    candidate papers; a description must share ``fit`` of its telling words with its paper.

    A name counts when it is the paper's own (a benchmark named in an abstract refers to no paper); a
    description counts when the best paper found for it carries most of its words.
    """
    candidates: dict[str, Hit] = {}
    quoted = [m for m in _QUOTED.finditer(question) if len(m.group(1).split()) >= 3]
    lookups = [question] + [n for n in dict.fromkeys(names(question) + proper_nouns(question))] + [m.group(1) for m in quoted]
    for text in lookups:
        for hit in search(text, 8 if text is question else 3):
            candidates.setdefault(hit.paper.id, hit)
    found: list[Referent] = []
    taken: list[tuple[int, int]] = []

    phrases = list(_DESCRIBED.finditer(question))

    def add(hit: Hit, start: int, end: int, named: bool) -> None:
        if any(r.hit.paper.id == hit.paper.id for r in found) or any(start < e and s < end for s, e in taken):
            return
        words = re.sub(r"^(?:the|an?)\s+", "", question[start:end].strip(" '\"‘’“”"), flags=re.IGNORECASE)
        if 0 < start and end < len(question) and question[start - 1] in "'\"‘“" and question[end] in "'\"’”":
            start, end = start - 1, end + 1  # a quoted title goes with its quotation marks
        # a name inside a description ("the FooNet paper on audio") refers with the whole phrase, as does a title's
        # words that a description leads to ("the graph paper on message passing with sparse heads", the title's
        # words running on past where the description's clause stops)
        whole = fold(question[start:end]).rstrip(".") == fold(hit.paper.title).rstrip(".")  # a whole title stands alone
        around = next(
            (m for m in phrases if m.start() <= start and (end <= m.end() or start < m.end() and not whole)), None
        )
        if around is not None:
            start, end = around.start(), max(end, around.end())
        found.append(Referent(words, start, end, hit, named))
        taken.append((start, end))

    folded_q = fold(question)
    for hit in candidates.values():
        title = fold(hit.paper.title).rstrip(".")
        at = folded_q.find(title) if len(title) >= 8 else -1
        if at >= 0 and len(folded_q) == len(question):  # fold kept the length: the offsets are the question's
            add(hit, at, at + len(title), True)
    for m in quoted:  # "the 'Free Lunch' paper": a quoted part of a title
        part = fold(m.group(1))
        owner = next((h for h in candidates.values() if part in fold(h.paper.title)), None)
        if owner is not None:
            add(owner, m.start(), m.end(), True)
    for hit in candidates.values():
        for name in own_names(hit.paper):
            m = find_name(name, question)
            if m:
                add(hit, m.start(), m.end(), True)
                break
    papers = [h.paper for h in candidates.values()]
    for hit in candidates.values():
        span = _title_part(hit.paper, question, papers)
        if span:
            add(hit, *span, True)
    for m in phrases:
        described = f"{m.group(1)} {m.group(3)}".strip()
        if any(m.start() < e and s < m.end() for s, e in taken):
            continue
        hits = [h for h in search(described, 3) if all(h.paper.id != r.hit.paper.id for r in found)]
        if hits and _fits(described, hits[0].paper, fit):
            add(hits[0], m.start(), m.end(), False)
    return sorted(found, key=lambda r: r.start)


_JOINS = r"(?:,?\s*\b(?:and(?: in)?|or|versus|vs\.?|v\.s\.|with|to|against|compared (?:with|to))\s+|,\s*)"


def without(question: str, ref: Referent) -> str:
    """``question`` with the phrase for one paper (and the word joining it to the rest) taken out, and "each" or
    "both" with it, so that the rest asks of the other paper alone.

    >>> hit = Hit(paper=Paper(id="b", title="BarGAN", abstract="x"), chunk="", chunk_id="b:0", score=0.0)
    >>> q = "Which encoders do FooNet and BarGAN each use?"
    >>> without(q, Referent("BarGAN", q.index("BarGAN"), q.index("BarGAN") + 6, hit, True))
    'Which encoders do FooNet use?'
    >>> q = "FooNet and BarGAN both denoise. What does each report: FooNet on birds, and BarGAN on bats?"
    >>> without(q, Referent("BarGAN", q.index("BarGAN"), q.index("BarGAN") + 6, hit, True))
    'FooNet denoise. What does it report: FooNet on birds?'
    >>> q = "Compare the sparse audio paper with BarGAN: what does each denoise?"
    >>> without(q, Referent("sparse audio", 8, 30, hit, False))
    'Compare BarGAN: what does it denoise?'
    """
    before, after = question[: ref.start], re.sub(r"^['’]s\b", "", question[ref.end :])
    joined = re.search(rf"{_JOINS}$", before, re.IGNORECASE)
    if joined:
        before = before[: joined.start()]
    else:
        after = re.sub(rf"^{_JOINS}", " ", after, flags=re.IGNORECASE)
    text = _drop_mentions(f"{before} {after}", ref.words)
    text = re.sub(r"\b(does|do|did|is|was|has)\s+each(?: one| of them)?\b", r"\1 it", text, flags=re.IGNORECASE)
    text = re.sub(r"\s+(?:each|both)\b|\bboth\s+", " ", text, flags=re.IGNORECASE)
    return re.sub(r"\s+([?.,;:!])", r"\1", " ".join(text.split()))


def _drop_mentions(text: str, words: str) -> str:
    """``text`` without each clause (between commas, colons or "and") that still names ``words``."""
    while True:
        at = text.find(words)
        if at < 0 or len(words) < 2:
            return text
        starts = [m.end() for m in re.finditer(r"[,;:]\s*|\s(?:and|or)\s", text[:at])]
        start = starts[-1] if starts else 0
        end_m = re.search(r",?\s+(?:and|or)\s|[,;?.!]", text[at + len(words):])
        end = at + len(words) + (end_m.start() if end_m else len(text) - at - len(words))
        cut = text[:start] + text[end:]
        cut = re.sub(r",\s*([?.!])", r"\1", re.sub(r"([:;,])\s*,?\s*(?:and|or)\s+", r"\1 ", cut))
        if cut == text:
            return text
        text = cut


def mask_titles(question: str, refs: Sequence[Referent]) -> str:
    """``question`` with each title it gives whole or in quotation marks read as "the paper", so that the title's
    own words ("More than", "v.s.", a colon) do not shape the question.

    >>> hit = Hit(paper=Paper(id="b", title="More Than Noise: Field Audio", abstract="x"), chunk="", chunk_id="b:0", score=0.0)
    >>> q = "When was 'More Than Noise: Field Audio' posted?"
    >>> mask_titles(q, [Referent("More Than Noise: Field Audio", 9, 39, hit, True)])
    'When was the paper posted?'
    """
    for ref in sorted(refs, key=lambda r: -r.start):
        whole = fold(ref.words).rstrip(".") == fold(ref.hit.paper.title).rstrip(".")
        if ref.named and len(ref.words.split()) >= 3 and (whole or question[ref.start] in "'\"‘“"):
            question = f"{question[: ref.start]}the paper{question[ref.end :]}"
    return question
