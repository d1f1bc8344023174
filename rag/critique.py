"""The self-critique pass: check every claim of a draft against the abstracts it cites.

Order of checks for each claim (a sentence of the draft):

1. **Deterministic** (a small model agrees with hallucinations, so these come first and
   cannot be overruled): citation numbers must exist; every number and every model or
   benchmark name in the claim must appear in a cited abstract; most of the claim's
   content words must appear there too. A claim whose facts sit in a *different* source
   is re-cited to it ("corrected"). A claim with no citation gets the source that holds
   its facts, or is unsupported; the refusal sentence needs no citation. A description
   (no numbers) not mostly in the source's words needs a source sentence close in
   meaning (MiniLM cosine, ``SEMANTIC_FLOOR``).
2. **Model judgement** (optional; ``answer.model_judge``): for claims that pass, the model quotes the supporting
   sentence and says supported/unsupported, as JSON constrained by a schema. The quote
   must really be in the abstract; a claim the model rejects, or supports only with an
   unverifiable quote, is unsupported unless nearly all of it is in the source verbatim.
3. **Repair**: unsupported claims are removed from the answer; if none remain, the
   answer is the refusal. Nothing unsupported is ever shown as checked.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from . import prompts
from .corpus import Paper, extract_urls
from .embeddings import Embedder
from .errors import PaperchatError
from .models import LLM, Message, Request
from .shapes import alias, asked_sides, focus_overlap, listing_sentence, mentions, short_name, two_asks
from .verify import Rereader
from .text import (
    clauses,
    content_words,
    fold,
    name_in,
    names,
    number_in,
    numbers,
    proper_nouns,
    quantities,
    split_sentences,
    STOPWORDS,
)

log = logging.getLogger(__name__)

ClaimVerdict = Literal["supported", "corrected", "unsupported", "refusal"]
Verdict = Literal["supported", "partially supported", "not supported", "refused"]

#: Below this share of its content words found in a source, a claim is not supported by it.
LOW_SUPPORT = 0.5
#: A part of a claim (between commas or joining words) with less support than this is invented.
CLAUSE_SUPPORT = 0.4
#: At or above this share, the words are the source's own: the model cannot veto the claim.
HIGH_SUPPORT = 0.9
#: A claim with facts and fewer content words than this is read together with its question.
SHORT_CLAIM_WORDS = 6
#: With this share of its words in the source and its facts in one sentence there, the model cannot veto a claim.
FACTS_SUPPORT = 0.75
#: A claim in other words is supported when a source sentence is this close in meaning (MiniLM cosine).
SEMANTIC_SUPPORT = 0.62
#: A part of a claim in other words is not invented when a source sentence is this close in meaning.
SEMANTIC_CLAUSE = 0.5
#: A claim with no numbers (a description, which no number check guards) and not mostly in the source's
#: words (below FACTS_SUPPORT) needs a sentence of a cited abstract at least this close in meaning: else it
#: says something the abstract does not, in the abstract's words.
SEMANTIC_FLOOR = 0.55
#: A claim that shares no word with the question and is less alike in meaning (MiniLM cosine) answers something else
#: (the relevance gate's floor, ``answer.min_relevance``, for the question against the papers).
UNRELATED_CLAIM = 0.25
_ELSEWHERE = "it is about something else"
_NO_NUMBER = "it gives no number, and the question asks for one"
#: A which-paper claim is withheld when another source fits the question's description by this much more.
DESCRIPTION_MARGIN = 0.1
_WHICH_PAPER_LEAD = re.compile(
    r"^\s*(?:(?:which|what)\s+(?:paper|work|study|article|method|model|framework|system|approach)s?\s+"
    r"|(?:is there|do you know|i remember|there's|there is)\s+(?:a|any|the|one)\s+"
    r"(?:paper|work|study|article|method|model|framework|system|approach)\s+(?:that|which|where|in which)?\s*)"
    r"(?:in the collection\s+)?",
    re.IGNORECASE,
)
# "… what's it called?": the ask after the description
_NAME_ASK = re.compile(r"[?.]?\s*(?:so\s+)?what(?:'s| is| was) (?:it|this|that|the method|the paper) called\s*\??\s*$"
                       r"|[?.]?\s*what(?:'s| is) its name\s*\??\s*$", re.IGNORECASE)


def description_of(question: str) -> str:
    """What a which-paper question says of the paper, without the asking around it.

    >>> description_of("do you know a model which spots cracks in old bridges? what is it called?")
    'spots cracks in old bridges'
    >>> description_of("Which paper trains judges?")
    'trains judges?'
    """
    return _NAME_ASK.sub("", _WHICH_PAPER_LEAD.sub("", question)).strip()

#: Questions that ask for a quantity: a claim answering one must give a number, about the thing asked.
QUANTITY_QUESTION = re.compile(
    r"\b(how (many|much|large|big|long|often|fast|far)|by how|what (\S+ ){0,3}(rates?|sizes?|scores?|accuracy|"
    r"percentage|percent|number|count|f1|bleu|gains?|improvements?|resolution|age|speed-?up|pass@\S+))\b",
    re.IGNORECASE,
)
#: Field-wide acronyms that name no particular paper: a question using them is not "about" them.
GENERIC_ACRONYMS = frozenset(
    "LLM LLMS VLM VLMS LVLM LVLMS MLLM MLLMS LM LMS AI RL RLHF NLP ML DL GPU GPUS CPU CPUS SOTA QA".split()
)
_GENERIC_QUESTION_WORDS = (
    "what which how many much large big long does did do use used report reports reported achieve achieves "
    "reach reaches give gives get gets make makes need needs show shows number kind type compared compare value "
    "paper method approach model models study"
)

_CITATION = re.compile(
    r"(?:\(\s*)?(?:\bsources?\s*)?\[\s*(?:sources?\s*)?(\d+(?:\s*[,;]\s*(?:sources?\s*)?\d+)*)\s*\](?:\s*\))?"
    r"|\((?:sources?\s*)?(\d{1,2}(?:\s*[,;]\s*\d{1,2})*)\)(?!\s*\w+\s*\()",  # "(1)" as the small model writes it
    re.IGNORECASE,
)
_REFUSAL_HINTS = re.compile(
    r"(do(?:es)? not (?:answer|say|mention|contain|provide|specify|state|include|give)|not (?:mentioned|provided|"
    r"specified|stated|given|available)|no information|cannot (?:answer|be answered|determine)|unable to answer|"
    r"is not (?:clear|known) from)",
    re.IGNORECASE,
)


@dataclass
class Source:
    """A numbered source: the paper, the excerpt the model saw, the chunk that matched."""

    n: int
    paper: Paper
    excerpt: list[str]
    chunk: str = ""

    @property
    def text(self) -> str:
        """Everything the source states: title, abstract and the listing's fields."""
        return " ".join(x for x in (f"{self.paper.title}.", self.paper.abstract, listing_sentence(self.paper)) if x)


class ClaimCheck(BaseModel):
    """The verdict on one claim of the draft."""

    text: str = Field(description="The claim, citations removed.")
    cited: list[int] = Field(default_factory=list, description="Sources the draft cited.")
    sources: list[int] = Field(default_factory=list, description="Sources that support it, after correction.")
    verdict: ClaimVerdict = "unsupported"
    reasons: list[str] = Field(default_factory=list)
    support: str | None = Field(None, description="The abstract sentence that supports the claim.")
    lexical_support: float = 0.0
    closest: float | None = Field(None, description="Meaning similarity of the closest cited sentence, when too low (the meaning check).")
    model_verdict: str | None = None
    model_quote: str | None = None
    quote_verified: bool | None = None

    @property
    def kept(self) -> bool:
        return self.verdict in ("supported", "corrected")


class Critique(BaseModel):
    """The critique of one draft."""

    claims: list[ClaimCheck]
    verdict: Verdict
    answer: str
    removed: int = 0
    seconds: float = 0.0
    model_calls: int = 0


def split_claims(draft: str) -> list[tuple[str, list[int]]]:
    """Sentences of a draft with the source numbers each cites; bare citations join the sentence before.

    >>> split_claims("SPELL uses self-play [1]. It beats RL [1, 2].\\n[3]")
    [('SPELL uses self-play.', [1]), ('It beats RL.', [1, 2, 3])]
    >>> split_claims("SPARK reaches 67.5 F1 (Source [2]).")
    [('SPARK reaches 67.5 F1.', [2])]
    >>> split_claims("DreamTuner (1) personalizes diffusion from one photo.")
    [('DreamTuner personalizes diffusion from one photo.', [1])]
    >>> split_claims("SPaR reports IFEval [1]; the judges use AlpacaEval [2].")
    [('SPaR reports IFEval.', [1]), ('The judges use AlpacaEval.', [2])]
    """
    claims: list[tuple[str, list[int]]] = []
    for line in draft.replace("\r", "").split("\n"):
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", line).strip()
        if not line:
            continue
        # "SPaR reports IFEval [1]; the judges use AlpacaEval [2].": a citation closes a claim; each part is a sentence
        parts = [re.split(r"(?<=\])\s*;\s+", whole) for whole in split_sentences(line)]
        for sentence in (
            (p[:1].upper() + p[1:] if i else p) + ("." if i < len(split) - 1 else "")
            for split in parts for i, p in enumerate(split)
        ):
            cited = [int(x) for m in _CITATION.finditer(sentence) for x in re.findall(r"\d+", m.group(1) or m.group(2))]
            text = _CITATION.sub("", sentence)
            text = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split())).strip()
            if not re.search(r"[A-Za-z0-9]", text):
                if claims:
                    claims[-1][1].extend(c for c in cited if c not in claims[-1][1])
                continue
            claims.append((text, list(dict.fromkeys(cited))))
    return claims


def states_something(draft: str) -> bool:
    """Whether the draft holds one complete statement (not only citations or fragments that name
    sources as nouns, such as "The two datasets are [1] and [2].").

    >>> states_something("[1]"), states_something("The two datasets are [1] and [2]."), states_something("SPELL uses self-play [1].")
    (False, False, True)
    """
    return any(fragment(text) is None and len(content_words(text)) >= 2 for text, _ in split_claims(draft))


def is_refusal(text: str) -> bool:
    """Whether a sentence says the sources do not answer.

    >>> is_refusal(prompts.REFUSAL), is_refusal("The abstracts do not mention the learning rate."), is_refusal("SPELL wins.")
    (True, True, False)
    """
    return fold(prompts.REFUSAL).rstrip(".") in fold(text) or bool(_REFUSAL_HINTS.search(text))


#: What the drafting prompts tell the model: a claim made of these words repeats the instructions, not a source.
_INSTRUCTION_WORDS = frozenset(content_words(" ".join(
    (prompts.SYSTEM, prompts.DRAFT_RULES, prompts.DRAFT_RULES_SYSTEM, prompts.SIDE_RULES, prompts.EXTRACT_RULES)
)))


def echoes_instructions(claim: str, source_text: str) -> bool:
    """Whether a claim repeats the drafting instructions: most of its words are the prompts' own, and the cited
    source holds less than half of them.

    >>> echoes_instructions("Answer the question for FooNet in one or two complete sentences.", "FooNet denoises audio.")
    True
    >>> echoes_instructions("FooNet answers questions in two sentences.", "FooNet answers questions in two sentences.")
    False
    """
    words = content_words(claim)
    said = [w for w in words if w in _INSTRUCTION_WORDS]
    return len(said) >= 3 and len(said) >= 0.6 * len(words) and lexical_support(claim, source_text) < 0.5


def lexical_support(claim: str, source_text: str) -> float:
    """Share of the claim's content words that occur in the source.

    >>> lexical_support("SPELL improves long-context reasoning", "SPELL is a self-play method that improves long-context reasoning.")
    1.0
    """
    words = content_words(claim)
    if not words:
        return 1.0
    have = set(content_words(source_text))
    return sum(w in have for w in words) / len(words)


_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")


def month_in(word: str, text: str) -> bool:
    """Whether ``word`` occurs in ``text``, a month name also matching its abbreviation.

    >>> month_in("September", "listed on Sep 12, 2018"), month_in("Sept", "September 2018"), month_in("May", "in 2020")
    (True, True, False)
    """
    if name_in(word, text):
        return True
    w = word.casefold().rstrip(".")
    full = next((m for m in _MONTHS if len(w) >= 3 and m.startswith(w)), None)
    if full is None:
        return False
    return re.search(rf"\b{full[:3]}(?:{full[3:]}|t)?\.?\b", text, re.IGNORECASE) is not None


def missing_facts(claim: str, source_text: str) -> list[str]:
    """Numbers and names of the claim that the source does not contain.

    >>> missing_facts("It reaches 67.5 F1 on ProcessBench with 13 GPUs.", "achieving 67.5 F1 on ProcessBench")
    ['13', 'GPUs']
    """
    missing = [n for n in numbers(claim) if not number_in(n, source_text)]
    missing += [
        n for n in names(claim) + proper_nouns(claim)
        if not month_in(n, source_text) and not spelled_out(n, source_text) and n not in missing
    ]
    return missing


# common acronyms that an abstract may write out instead
SPELLED_OUT = {
    "LLM": "language model", "LLMS": "language model", "LM": "language model", "LMS": "language model",
    "VLM": "vision language model", "VLMS": "vision language model", "LVLM": "vision language model",
    "LVLMS": "vision language model", "RL": "reinforcement learning", "NLP": "natural language processing",
}


def spelled_out(name: str, text: str) -> bool:
    """Whether a common acronym of the claim is written out in ``text``.

    >>> spelled_out("LLMs", "large language models improve"), spelled_out("RL", "supervised fine-tuning")
    (True, False)
    """
    words = SPELLED_OUT.get(name.upper())
    return bool(words) and name_in(words, text)


def weakest_clause(claim: str, source_text: str) -> tuple[str | None, float]:
    """The part of the claim least supported by the source, and its support.

    >>> weakest_clause("SPELL uses self-play for reasoning, and it halves energy use in data centers.", "SPELL uses self-play for long-context reasoning.")
    ('it halves energy use in data centers.', 0.0)
    """
    worst, low = None, 1.0
    for part in clauses(claim):
        support = lexical_support(part, source_text)
        if support < low:
            worst, low = part, support
    return worst, low


def focus_words(question: str, title: str = "") -> set[str]:
    """What a question asks about: its content words minus question vocabulary and the paper's name.

    The name is the part of the title before a colon ("SPARK" in "SPARK: Stepwise ..."); the
    descriptive rest of the title may well be what is asked about.

    >>> sorted(focus_words("What learning rate did SPARK use?", "SPARK: Stepwise Process-Aware Rewards"))
    ['learn', 'rate']
    >>> sorted(focus_words("How much memory does Zebra Caching save?", "Zebra Caching: Striped Memory"))
    ['memori', 'save']
    """
    generic = set(content_words(_GENERIC_QUESTION_WORDS))
    name = title.split(":", 1)[0] if ":" in title else ""
    return set(content_words(question)) - generic - set(content_words(name))


def own_ask(question: str, papers: Sequence[Paper]) -> str:
    """The part of a question about two papers (:func:`~paperchat.rag.shapes.asked_sides`) that asks about the one
    paper of ``papers``, else the whole question.

    >>> p = Paper(id="f", title="FooNet: Denoising", abstract="FooNet beats BarNet by 3.27%.")
    >>> own_ask("FooNet vs QuxGAN: how much does FooNet beat BarNet, and by how much does QuxGAN help?", [p])
    'How much does FooNet beat BarNet?'
    """
    if len(papers) != 1:
        return question
    for side, asked in asked_sides(question):
        if mentions(side, papers[0]) or name_in(side, f"{papers[0].title} {papers[0].abstract}"):
            return asked
    return question


def unnamed(question: str, paper: Paper) -> list[str]:
    """The names ``question`` asks about (not field-wide acronyms) that ``paper``'s title and abstract lack.

    >>> unnamed("Did SPARK beat GPT-4 on ProcessBench?", Paper(id="s", title="SPARK", abstract="It tops ProcessBench."))
    ['GPT-4']
    """
    text = f"{paper.title}. {paper.abstract}"
    asked = [n for n in dict.fromkeys(names(question) + proper_nouns(question)) if n.upper() not in GENERIC_ACRONYMS]
    return [n for n in asked if not name_in(n, text)]


def off_subject(question: str, paper: Paper) -> str | None:
    """Why a claim from ``paper`` cannot answer ``question``: a name the question asks about is not in it.

    >>> p = Paper(id="m", title="Momentum-GS: Gaussian Self-Distillation", abstract="Blocks are bounded by GPUs.")
    >>> off_subject("On how many GPUs did FooNet train?", p)
    'the question is about FooNet, which the cited abstract does not mention'
    >>> off_subject("How does Momentum-GS use GPUs?", p) is None
    True
    """
    missing = unnamed(question, paper)
    if missing:
        return f"the question is about {', '.join(missing)}, which the cited abstract does not mention"
    return None


# "how many hidden layers and attention heads does ...": the words up to the verb
_COUNTED = re.compile(
    r"\bhow many ((?:[a-z][\w\-]*\s+){0,5}?[a-z][\w\-]*)"
    r"(?=\s+(?:do|does|did|are|were|is|was|has|have|had|can|will|would)\b)",
    re.IGNORECASE,
)


# nouns that count people: "how many people were surveyed" is answered by "412 respondents"
_PEOPLE = frozenset(content_words(
    "people persons individuals humans participants subjects users annotators volunteers respondents patients "
    "workers raters experts clinicians doctors students learners players"
))


# words that name the same figure: "what improvements does STIC report?" is answered by "performance gains of 4.0%"
_SAME_FIGURE = (
    frozenset(content_words("improvement improve gain boost increase enhancement lift rise outperform surpass")),
    frozenset(content_words("reduction reduce decrease drop fewer less saving")),
)


def answers_quantity(claim: str, question: str, paper: Paper) -> str | None:
    """For a question asking for a quantity: why the claim does not give it (None if it does).

    The claim must hold a number, and a sentence of the abstract that holds that number must
    mention something the question asks about (so "SPARK used Qwen2.5-Math-7B" does not answer
    "What learning rate did SPARK use?", nor does a number about something else).
    """
    if not QUANTITY_QUESTION.search(question):
        return None
    values = quantities(claim)
    if not values:
        return _NO_NUMBER
    focus = focus_words(question, paper.title)
    if not focus:
        return None
    for same in _SAME_FIGURE:
        if focus & same:
            focus = focus | same
    # "How many GPUs ...?": what is counted must stand next to the number in the source; it is the
    # phrase up to the verb ("how many trainable parameters does ..." counts parameters)
    counted = _COUNTED.search(question)
    if counted is None:
        counted = re.search(r"\bhow many ([a-z][\w\-]*)", question, re.IGNORECASE)
    unit = set(content_words(counted.group(1))) if counted else set()
    # "How many of FooBench's tasks are puzzles?": what is counted is the puzzles
    among = re.search(r"\bhow many of\b[^?]*?\b(?:are|were)\s+([a-z][\w\-]*)", question, re.IGNORECASE)
    if among and content_words(among.group(1)):
        unit = set(content_words(among.group(1)))
    if unit & _PEOPLE:  # "how many people": the abstract counts them as participants, users, annotators …
        unit |= _PEOPLE
    sentences = [paper.title, *paper_sentences(paper)]
    for value in values:
        for sentence in sentences:
            present = number_in(value, sentence) if value[0].isdigit() else fold(value) in fold(sentence)
            around = set(content_words(near(value, sentence)))
            if present and focus & around and (not unit or unit & set(content_words(near(value, sentence, 3)))):
                return None
    return f"the abstract does not give {', '.join(values)} as the {' / '.join(sorted(focus))} the question asks about"


def restates(claim: str, question: str) -> bool:
    """Whether the claim only repeats the question's words, adding no name, number or content word.

    >>> restates("FooNet distils into a small student.", "Which small student does FooNet distil into?")
    True
    >>> restates("FooNet distils into TinyBar-2.", "Which small student does FooNet distil into?")
    False
    """
    words = set(content_words(claim))
    asked = set(content_words(question))
    facts = [f for f in numbers(claim) + names(claim) if not name_in(f, question)]
    # stems alone would call "reflection tokens" a restatement of "to reflect": a word the question
    # has only in another form (not just a plural or verb ending) is new
    return bool(words) and words <= asked and not facts and _word_forms(claim) <= _word_forms(question)


def _word_forms(text: str) -> set[str]:
    """Content words as written, less a plural or verb ending ("trains" and "train" are one form).

    >>> sorted(_word_forms("Reflection tokens reflect the trained models; it generates processes"))
    ['generat', 'model', 'process', 'reflect', 'reflection', 'token', 'train']
    """
    words = [w for w in re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", fold(text)) if len(w) > 1 and content_words(w)]
    return {_INFLECTION.sub(_base, w) if len(w) > 3 else w for w in words}


_INFLECTION = re.compile(r"(?:sses|ss|ies|es|s|ed|ing|e)$")


def _base(ending: re.Match) -> str:
    """What an inflection ending becomes: "processes" -> "process", "studies" -> "study", "trained" -> "train"."""
    return {"sses": "ss", "ss": "ss", "ies": "y"}.get(ending.group(0), "")


def paper_sentences(paper: Paper) -> list[str]:
    """The sentences a paper's record states: the abstract's, then the listing's.

    >>> paper_sentences(Paper(id="x", title="T", abstract="It works. It is fast.", authors=3))
    ['It works.', 'It is fast.', 'Listing: 3 authors.']
    """
    listing = listing_sentence(paper)
    return split_sentences(paper.abstract) + ([listing] if listing else [])


_FRAGMENT_END = re.compile(
    r"\b(on|in|of|at|to|for|by|with|from|the|a|an|and|or|but|is|are|was|were|as|than|its|their|this|these)\W*$",
    re.IGNORECASE,
)


def fragment(claim: str) -> str | None:
    """Why ``claim`` is not a complete sentence (None when it is).

    >>> fragment("The improvement is shown on."), fragment("and are about memory."), fragment("SPELL wins.")
    ('it ends mid-sentence', 'it starts mid-sentence', None)
    >>> fragment("lists 18 authors."), fragment("iPhone apps grow."), fragment("That is SPELL."), fragment("github.com/a/b")
    ('it starts mid-sentence', None, None, None)
    """
    body = claim.strip().rstrip(".!?;:, ")
    if _FRAGMENT_END.search(body):
        return "it ends mid-sentence"
    first = body.split()[0] if body.split() else ""
    if first[:1].islower() and not any(ch.isupper() or ch.isdigit() for ch in first) and not extract_urls(first):
        return "it starts mid-sentence"
    return None


_AUTHOR_NAMES = re.compile(
    r"\b((first|last|lead|main|corresponding|senior) author|written by|authored by|co-?authored by|by researchers)\b",
    re.IGNORECASE,
)
_LISTING_NUMBER = {
    "authors": re.compile(r"(\d+)\s+(?:co-?)?authors?\b|\bauthors?\W+(?:is|are|was|were|of|:)?\s*(\d+)\b", re.I),
    "upvotes": re.compile(r"(\d+)\s+(?:up-?)?votes?\b|\bupvotes?\W+(?:is|are|was|were|of|:)?\s*(\d+)\b", re.I),
}


def listing_mismatch(claim: str, paper: Paper) -> str | None:
    """Why a claim about the listing's fields (author names, counts) contradicts ``paper``'s record.

    >>> p = Paper(id="x", title="T", abstract="We use 12 GPUs.", authors=8)
    >>> listing_mismatch("T has 12 authors.", p)
    'the listing gives 8 authors, not 12'
    >>> listing_mismatch("T has 8 authors.", p) is None, listing_mismatch("Its first author is Smith.", p)
    (True, 'the listings give no author names')
    """
    if _AUTHOR_NAMES.search(claim):
        return "the listings give no author names"
    for attr, pattern in _LISTING_NUMBER.items():
        actual = getattr(paper, attr)
        for m in pattern.finditer(claim):
            value = int(m.group(1) or m.group(2))
            if actual is None:
                return f"the listing gives no {attr}"
            if value != actual:
                return f"the listing gives {actual} {attr}, not {value}"
    return None


def wrong_subject(claim: str, chosen: Sequence[int], by_n: dict[int, Source]) -> str | None:
    """Why a claim that names one paper but takes its facts from another is wrong (swapped sides).

    >>> a = Source(1, Paper(id="a", title="SPARK: Rewards", abstract="SPARK reaches 67.5 F1."), [])
    >>> b = Source(2, Paper(id="b", title="SPELL: Self-play", abstract="SPELL reaches 60.1 F1."), [])
    >>> wrong_subject("SPARK reaches 60.1 F1.", [2], {1: a, 2: b})
    'it is about SPARK [1], but its facts are from source [2]'
    >>> wrong_subject("SPELL reaches 60.1 F1.", [2], {1: a, 2: b}) is None
    True
    """
    named = [n for n, src in by_n.items() if mentions(claim, src.paper)]
    if not named or set(named) & set(chosen):
        return None
    # a paper named only as the baseline of the chosen one is fine ("SPELL beats SPARK")
    if any(mentions(by_n[c].text, by_n[n].paper) for c in chosen for n in named):
        return None
    who = ", ".join(f"{short_name(by_n[n].paper.title)} [{n}]" for n in named)
    return f"it is about {who}, but its facts are from source {', '.join(f'[{c}]' for c in chosen)}"


_LIST_GLUE = re.compile(r"[\s,;%]*(?:and|or)?[\s,]*")


def _number_spans(text: str) -> list[tuple[str, int, int]]:
    """Each number of ``text`` with where it starts and ends.

    >>> _number_spans("from 89.17 to 92.48")
    [('89.17', 5, 10), ('92.48', 14, 19)]
    """
    spans, at = [], 0
    for value in numbers(text):
        start = text.find(value, at)
        if start < 0:
            break
        spans.append((value, start, start + len(value)))
        at = start + len(value)
    return spans


def respectively_pairs(sentence: str) -> dict[str, str]:
    """Numbers paired with the names they belong to in a "... respectively" sentence.

    Only the run of numbers listed together ("15.6% and 9.1%") is paired, so other numbers of
    the sentence ("Gemini 1.0 Pro") are not.

    >>> respectively_pairs("achieving 57.70%, 17.65% and 5.18% improvements over SFT, DPO and GRPO respectively.")
    {'57.70%': 'SFT', '17.65%': 'DPO', '5.18%': 'GRPO'}
    >>> respectively_pairs("On Gemini 1.0 Pro it improves by 15.6% and 9.1% respectively on the MATH and HumanEval benchmarks.")
    {'15.6%': 'MATH', '9.1%': 'HumanEval'}
    """
    text = sentence.replace("\\%", "%")
    if "respectively" not in text.casefold():
        return {}
    spans = _number_spans(text)
    run = spans[-1:]
    for prev in reversed(spans[:-1]):  # the numbers listed together with the last one
        if not _LIST_GLUE.fullmatch(text[prev[2] : run[0][1]]):
            break
        run.insert(0, prev)
    labels = names(text[run[-1][2] :]) if run else []
    if len(run) >= 2 and len(run) == len(labels):
        return dict(zip((v for v, _, _ in run), labels))
    return {}


def number_bound_elsewhere(claim: str, paper: Paper) -> str | None:
    """Why a number of the claim belongs to another thing in the abstract ("respectively" lists).

    >>> p = Paper(id="g", title="GRAO", abstract="GRAO achieves 57.70%, 17.65% and 5.18% gains over SFT, DPO and GRPO respectively.")
    >>> number_bound_elsewhere("GRAO improves over DPO by 57.70%.", p)
    'the abstract gives 57.70% for SFT, not for DPO'
    >>> number_bound_elsewhere("GRAO improves over DPO by 17.65%.", p) is None
    True
    """
    claim_names = set(names(claim))
    for sentence in split_sentences(paper.abstract):
        pairs = respectively_pairs(sentence)
        labels = set(pairs.values())
        for value in numbers(claim):
            for number, label in pairs.items():
                if same_number(value, number):
                    others = (claim_names & labels) - {label}
                    if others and label not in claim_names:
                        return f"the abstract gives {number} for {label}, not for {', '.join(sorted(others))}"
    return None


def rebind_number(claim: str, paper: Paper) -> tuple[str, str] | None:
    """The claim with a number that belongs to another item of a "respectively" list replaced by the
    abstract's number for the one item the claim names, and why (None: nothing to repair).

    >>> p = Paper(id="g", title="GRAO", abstract="GRAO achieves 57.70%, 17.65% and 5.18% gains over SFT, DPO and GRPO respectively.")
    >>> rebind_number("GRAO improves over DPO by 57.70%.", p)
    ('GRAO improves over DPO by 17.65%.', 'the abstract gives 57.70% for SFT and 17.65% for DPO: corrected to 17.65%')
    >>> rebind_number("GRAO improves over SFT by 57.70%.", p) is None
    True
    """
    claim_names = set(names(claim))
    values = numbers(claim)
    for sentence in split_sentences(paper.abstract):
        pairs = respectively_pairs(sentence)
        named = claim_names & set(pairs.values())
        listed = [v for v in values if any(same_number(v, n) for n in pairs)]
        if len(named) != 1 or len(listed) != 1:
            continue
        (label,) = named
        given = next(n for n in pairs if same_number(listed[0], n))
        if pairs[given] == label:
            return None
        right = next(n for n, lab in pairs.items() if lab == label)
        value = listed[0]
        # keep the claim's own way of writing a percentage ("17.65%" for "17.65\\%")
        fixed_value = right if value.endswith("%") or not right.endswith("%") else right.rstrip("%")
        fixed = re.sub(rf"(?<![\w.]){re.escape(value)}(?![\w])", fixed_value, claim, count=1)
        if fixed == claim:
            return None
        return fixed, f"the abstract gives {given} for {pairs[given]} and {right} for {label}: corrected to {right}"
    return None


def rebind_relative(claim: str, paper: Paper) -> tuple[str, str] | None:
    """The claim with its one number replaced when it calls an absolute figure "relative": the abstract's
    sentence gives the relative figure beside it ("by 23% (a 51% relative increase)"), and why.

    A number listed with others ("57.70%, 17.65% and 5.18% relative improvements") shares the qualifier.

    >>> p = Paper(id="p", title="T", abstract="It outperforms them by 23% (a 51% relative increase).")
    >>> rebind_relative("It reports a 23% relative increase.", p)
    ('It reports a 51% relative increase.', 'the abstract calls 51% the relative figure, not 23%: corrected to 51%')
    >>> rebind_relative("It reports a 51% relative increase.", p), rebind_relative("It wins by 23%.", p)
    (None, None)
    """
    values = numbers(claim)
    if "relative" not in fold(claim) or len(values) != 1:
        return None
    value = values[0]
    for sentence in paper_sentences(paper):
        text = sentence.replace("\\%", "%")
        spans = _number_spans(text)
        if not any(same_number(value, v) for v, _, _ in spans):
            continue
        relative = [v for i, (v, _, _) in enumerate(spans) if _qualified(text, spans, i, "relative")]
        if len(relative) != 1 or any(same_number(value, v) for v in relative):
            return None
        right = relative[0]
        fixed = re.sub(rf"(?<![\w.]){re.escape(value)}(?![\w])", right, claim, count=1)
        return (fixed, f"the abstract calls {right} the relative figure, not {value}: corrected to {right}") if fixed != claim else None
    return None


def _qualified(text: str, spans: list[tuple[str, int, int]], i: int, word: str) -> bool:
    """Whether the ``i``-th number of ``text`` (or the list it ends) is followed by ``word`` ("51% relative")."""
    j = i
    while j + 1 < len(spans) and _LIST_GLUE.fullmatch(text[spans[j][2] : spans[j + 1][1]]):
        j += 1  # "57.70%, 17.65% and 5.18% relative": the qualifier after the list's last number
    upto = spans[j + 1][1] if j + 1 < len(spans) else len(text)
    return bool(re.match(rf"\W{{0,3}}(?:[a-z\-]+\W+)?{word}\b", text[spans[j][2] : upto], re.IGNORECASE))


_SIZE_WORDS = {
    "larger": max, "largest": max, "bigger": max, "biggest": max,
    "smaller": min, "smallest": min,
}
_SIZE_PHRASE = re.compile(r"\b(larger|largest|bigger|biggest|smaller|smallest)\s+(?:of\s+the\s+)?[a-z][\w\-]*", re.IGNORECASE)
_MAGNITUDE = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


def magnitude(value: str) -> tuple[float, str] | None:
    """A number as written with its scale suffix read ("1B" is 1e9), and its kind ("%" or ""), or None.

    >>> magnitude("500M"), magnitude("1.5B"), magnitude("12%"), magnitude("v2")
    ((500000000.0, ''), (1500000000.0, ''), (12.0, '%'), None)
    """
    m = re.fullmatch(r"(\d+(?:[.,]\d+)*)\s*([kKmMbBtT]?)(%?)", value.strip())
    if m is None:
        return None
    return float(m.group(1).replace(",", "")) * _MAGNITUDE[m.group(2).lower()], m.group(3)


_AMOUNT = re.compile(r"(?<![\w.\-])\d+(?:[.,]\d+)*(?:\s*[kKmMbBtT](?![\w])|\s*%|(?![\w.%]))")


def _amount_spans(text: str) -> list[tuple[str, int, int]]:
    """Each amount of ``text`` (a number, with its scale suffix or percent sign) with where it starts and ends.

    >>> _amount_spans("with 500M and 1B examples, 12% of GPT-4")
    [('500M', 5, 9), ('1B', 14, 16), ('12%', 27, 30)]
    """
    return [(m.group(0), m.start(), m.end()) for m in _AMOUNT.finditer(text)]


def rebind_extreme(claim: str, paper: Paper) -> tuple[str, str] | None:
    """The claim with its one number replaced when it names "the larger/smaller X" but gives a number that
    the abstract lists together with a larger (smaller) one of the same kind, and why.

    >>> p = Paper(id="r", title="T", abstract="We use two datasets with 500M and 1B training examples respectively.")
    >>> rebind_extreme("Its larger dataset has 500M training examples.", p)
    ('Its larger dataset has 1B training examples.', 'the abstract lists 500M and 1B: the larger is 1B: corrected to 1B')
    >>> rebind_extreme("Its larger dataset has 1B training examples.", p), rebind_extreme("It uses 500M examples.", p)
    (None, None)
    """
    asked = _SIZE_PHRASE.search(claim)
    values = [v for v, _, _ in _amount_spans(claim)]
    if asked is None or len(values) != 1:
        return None
    value = values[0]
    pick = _SIZE_WORDS[asked.group(1).lower()]
    for sentence in split_sentences(paper.abstract):
        text = sentence.replace("\\%", "%")
        spans = _amount_spans(text)
        at = next((i for i, (v, _, _) in enumerate(spans) if same_number(value, v)), None)
        if at is None:
            continue
        run = [at]  # the numbers listed together with it ("500M and 1B")
        while run[0] > 0 and _LIST_GLUE.fullmatch(text[spans[run[0] - 1][2] : spans[run[0]][1]]):
            run.insert(0, run[0] - 1)
        while run[-1] + 1 < len(spans) and _LIST_GLUE.fullmatch(text[spans[run[-1]][2] : spans[run[-1] + 1][1]]):
            run.append(run[-1] + 1)
        listed = [(magnitude(spans[i][0]), spans[i][0]) for i in run]
        kinds = {m[1] for m, _ in listed if m is not None}
        if len(listed) < 2 or None in (m for m, _ in listed) or len(kinds) != 1:
            continue
        right = pick(listed, key=lambda item: item[0][0])[1]
        if same_number(right, value):
            return None
        fixed = re.sub(rf"(?<![\w.]){re.escape(value)}(?![\w])", right, claim, count=1)
        word = "larger" if pick is max else "smaller"
        shown = " and ".join(v for _, v in listed)
        return (fixed, f"the abstract lists {shown}: the {word} is {right}: corrected to {right}") if fixed != claim else None
    return None


def asked_phrase(claim: str, question: str, paper: Paper) -> bool:
    """Whether a short answer with no name or number ("Gradient-based methods") stands word for word in a sentence
    of ``paper`` that also holds a word of what the question asks about, and is not the question's own words.

    >>> p = Paper(id="s", title="SINC", abstract="SINC outperforms gradient-based methods. It uses prompts.")
    >>> asked_phrase("Gradient-based methods.", "What does it outperform?", p), asked_phrase("Prompts.", "What does it outperform?", p)
    (True, False)
    """
    phrase = fold(claim).strip(" .!?;:,")
    if not phrase or set(content_words(phrase)) <= set(content_words(question)):
        return False
    focus = focus_words(question, paper.title)
    for sentence in paper_sentences(paper):
        if re.search(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", fold(sentence)) and focus & set(content_words(sentence)):
            return True
    return False


def names_only_a_paper(claim: str, papers: Sequence[Paper]) -> bool:
    """Whether ``claim`` is no statement but the title (or short name) of one of ``papers``.

    >>> p = Paper(id="k", title="Small Nets (Often) Guess Their Own Errors", abstract="x")
    >>> names_only_a_paper("Small Nets (Often) Guess Their Own Errors.", [p]), names_only_a_paper("It guesses P(Wrong).", [p])
    (True, False)
    """
    words = set(content_words(claim))
    return bool(words) and not numbers(claim) and any(words <= set(content_words(p.title)) for p in papers)


# "What latency are devices expected …?", "Which small student does FooNet distil into?": the thing asked for
_ASKED_THING = re.compile(
    r"^\s*(?:what|which)\s+((?:[a-z][\w\-]*\s+){0,2}?[a-z][\w\-]*)\s+"
    r"(?:do|does|did|is|are|was|were|has|have|had|can|could|would|will|should)\b",
    re.IGNORECASE,
)
# heads that do not say what kind of answer is wanted
_VAGUE_HEADS = {"paper", "papers", "work", "works", "study", "studies", "article", "kind", "kinds", "type", "types",
                "way", "ways", "part", "parts", "role", "aspect", "aspects", "thing", "things", "one", "ones"}


def asked_thing(question: str) -> str | None:
    """The noun a "What/Which <noun> …?" question asks for, or None when it asks for no kind of thing.

    >>> asked_thing("What latency are edge devices expected to meet?"), asked_thing("What does FooNet introduce?")
    ('latency', None)
    >>> asked_thing("Which small student model does FooNet distil into?"), asked_thing("Which paper proposes FooNet?")
    ('model', None)
    """
    m = _ASKED_THING.search(question)
    if m is None:
        return None
    head = m.group(1).split()[-1].lower()
    return None if head in _VAGUE_HEADS or not content_words(head) else head


def gives_asked_thing(claim: str, question: str, head: str) -> bool:
    """Whether ``claim`` can be the ``head`` the question asks for: it names it (in any word form), or it
    gives a number or a name the question does not already hold.

    >>> q = "What probability are models asked to estimate?"
    >>> gives_asked_thing("They estimate the probability that answers are true.", q, "probability")
    True
    >>> gives_asked_thing("They estimate it as 0.8.", q, "probability"), gives_asked_thing("Performance improves with more samples.", q, "probability")
    (True, False)
    """
    claim = without_echo(claim, question)  # "The benchmarks used to test X were …": the head is the question's
    if names_thing(head, claim):
        return True
    return any(not name_in(f, question) for f in numbers(claim) + names(claim) + proper_nouns(claim))


def without_echo(claim: str, question: str, least: int = 5) -> str:
    """What ``claim`` adds to ``question`` when it repeats a run of at least ``least`` of its words: the claim
    without the question's words (else the claim as it is).

    >>> without_echo("The sets chosen to train the detector were drone photos.", "Which sets were chosen to train the detector?")
    'drone photos.'
    >>> without_echo("SPARK uses 47.4% accuracy.", "What accuracy does SPARK reach?")
    'SPARK uses 47.4% accuracy.'
    """
    words = claim.split()
    folded = [fold(w).strip(",.?;:") for w in words]
    asked = [fold(w).strip(",.?;:") for w in question.split()]
    runs = {tuple(asked[i : i + least]) for i in range(len(asked) - least + 1)}
    if not any(tuple(folded[i : i + least]) in runs for i in range(len(folded) - least + 1)):
        return claim
    kept = [w for w, f in zip(words, folded) if f not in set(asked) and f not in STOPWORDS]
    return " ".join(kept)


#: Share of an answer's own words that a sentence naming the thing asked for must hold for the answer to be its items.
ITEMS_SHARE = 0.6


def gives_items(claim: str, question: str, head: str, paper: Paper) -> bool:
    """Whether ``claim`` names at least two things, not in the question, that a sentence of ``paper`` gives as the
    ``head`` asked for ("questioner, responder, verifier" from "three cyclical roles-questioner, responder, and verifier").

    >>> p = Paper(id="s", title="SPELL", abstract="SPELL has three roles-questioner, responder, and verifier. The questioner asks.")
    >>> gives_items("Questioner, responder, verifier.", "What roles does SPELL play?", "role", p)
    True
    >>> gives_items("It asks questions.", "What roles does SPELL play?", "role", p)
    False
    """
    new = _word_forms(claim.replace("-", " ")) - _word_forms(question)
    for sentence in paper_sentences(paper):
        shared = new & _word_forms(sentence.replace("-", " "))
        if names_thing(head, sentence) and len(shared) >= 2 and len(shared) >= ITEMS_SHARE * len(new):
            return True
    return False


def names_thing(head: str, text: str) -> bool:
    """Whether ``text`` names ``head`` in any word form, hyphenated terms read whole and by their parts.

    >>> names_thing("role", "three cyclical roles-questioner, responder"), names_thing("factor", "two pivotal ones")
    (True, False)
    """
    return bool(_word_forms(head) & (_word_forms(text) | _word_forms(text.replace("-", " "))))


def same_number(a: str, b: str) -> bool:
    """Whether two numbers as written are the same number ("51%" and "51 %").

    >>> same_number("51%", "51 %"), same_number("5", "51")
    (True, False)
    """
    return number_in(a, b) and number_in(b, a)


def premise_check(question: str, sources: Sequence[Source]) -> ClaimCheck | None:
    """A claim correcting a number of the question that the paper it names does not give.

    Asked "What did FooCare's study of 300 patients show?" of an abstract stating "a study of
    212 patients", the answer should say so rather than let the premise stand; the right
    number is the one the abstract gives for the same thing (the word after the question's
    number, within five words, or the item of a "respectively" list the question names).

    >>> foo = Paper(id="f", title="FooCare: Triage", abstract="In a cohort study of 212 patients, we see fewer errors.")
    >>> premise_check("What did FooCare's study of 300 patients show?", [Source(1, foo, [])]).text
    "FooCare's abstract gives 212 patients, not 300."
    >>> premise_check("What did FooCare's study of 212 patients show?", [Source(1, foo, [])]) is None
    True
    """
    def named(src: Source) -> bool:
        other = alias(src.paper)
        return mentions(question, src.paper) or bool(other and name_in(other, question))

    papers = [s for s in sources if named(s)]
    if len(papers) != 1:
        return None
    source = papers[0]
    paper = source.paper
    name = short_name(paper.title) if mentions(question, paper) else alias(paper) or short_name(paper.title)
    for value in _figures(question):
        if number_in(value, source.text) or fold(value) in fold(source.text):
            continue
        before = question[: question.find(value)].split()
        if before and before[-1][:1].isupper() and len(before) > 1:
            continue  # part of a name: "Llama 2", "Gemini 1.5"
        after = question[question.find(value) + len(value):]
        unit = next(iter(content_words(" ".join(after.split()[:3]))), None)
        label = next((n for n in names(after) if not mentions(n, paper)), None)
        beside: dict[str, str] = {}  # numbers with the unit word right after them: "86 participants"
        around: dict[str, str] = {}  # numbers with the unit word within five words
        for sentence in paper_sentences(paper):
            pairs = respectively_pairs(sentence)
            for number, item in pairs.items():
                if label and item == label:
                    beside.setdefault(number, sentence)
            if pairs and label:
                continue
            for number in _figures(sentence):
                if unit and unit in content_words(_after(number, sentence, 2)):
                    beside.setdefault(number, sentence)
                elif unit and unit in content_words(near(number, sentence, 5)):
                    around.setdefault(number, sentence)
        found = beside if len(beside) == 1 else around if not beside else {}
        support = None
        if len(found) == 1:
            right, support = next(iter(found.items()))
            asked = set(content_words(" ".join(after.split()[:4])))
            tail = []  # the abstract's words for the thing counted, as far as the question uses them too
            for word in _after(right, support, 3).split():
                if not content_words(word) or not set(content_words(word)) <= asked:
                    break
                tail.append(word.strip(".,;:()"))
            shown = " ".join([right, *tail])
            text = prompts.PREMISE_CORRECTED.format(name=name, right=shown, value=value)
        else:
            text = prompts.PREMISE_UNSTATED.format(name=name, value=value)
        return ClaimCheck(
            text=text, cited=[source.n], sources=[source.n], verdict="supported", support=support,
            reasons=[f"the question's {value} is not in the abstract of {name}"],
        )
    return None


def _figures(text: str) -> list[str]:
    """The numbers of ``text``, with counts written with a suffix ("13K", "150M"), each once.

    >>> _figures("13K examples, 150M parameters and 86 participants on Qwen2.5-7B")
    ['86', '13K', '150M']
    """
    return list(dict.fromkeys(numbers(text) + [q for q in quantities(text) if q[0].isdigit()]))


def _after(value: str, sentence: str, width: int) -> str:
    """The ``width`` words after where ``value`` occurs in ``sentence`` ('' if absent).

    >>> _after("86", "a trial of 86 participants, we find", 2)
    'participants, we'
    """
    words = sentence.split()
    at = next((i for i, w in enumerate(words) if number_in(value, w) or fold(value) == fold(w).strip(".,;:()")), None)
    return "" if at is None else " ".join(words[at + 1 : at + 1 + width])


def near(value: str, sentence: str, width: int = 8) -> str:
    """The words of ``sentence`` within ``width`` words of where ``value`` occurs (the whole sentence if absent).

    >>> near("25%", "It improves self-efficacy (up to 17%) and reduces negative emotions (up to 25%).", 4)
    'negative emotions (up to 25%).'
    """
    words = sentence.split()
    key = fold(value).rstrip("%")
    hits = [i for i, w in enumerate(words) if key and number_in(key, w) or fold(value) in fold(w)]
    if not hits:
        return sentence
    return " ".join(" ".join(words[max(0, i - width) : i + width + 1]) for i in hits)


def facts_together(claim: str, paper: Paper) -> bool:
    """Whether the claim has two or more numbers or names and one sentence of the paper holds them all.

    >>> p = Paper(id="w", title="Self-J", abstract="WizardLM-13B-V1.2 rises from 89.17 to 92.48 on AlpacaEval.")
    >>> facts_together("WizardLM-13B-V1.2 goes from 89.17 to 92.48.", p), facts_together("It rises to 92.48.", p)
    (True, False)
    >>> facts_together("With Self-J, WizardLM-13B-V1.2 goes from 89.17 to 92.48.", p)
    True
    """
    # the paper's own name goes without saying in each of its sentences ("boosting WizardLM ..." in Self-J's)
    own = [n for n in (short_name(paper.title), alias(paper)) if n]
    facts = [f for f in dict.fromkeys(numbers(claim) + names(claim)) if not any(name_in(f, o) for o in own)]
    if len(facts) < 2:
        return False
    return any(
        all(number_in(f, s) if f[0].isdigit() and not names(f) else name_in(f, s) for f in facts)
        for s in paper_sentences(paper)
    )


REFERS_BACK = re.compile(
    r"^(?:this|these|that|those|such|it|its|they|their|there|thus|hence|therefore|as a result|in addition|also)\b"
    # "The code for this work is …": the subject is what the sentence before named
    r"|^(?:[\w\-]+\s+){1,4}?(?:this|these|such)\s+(?:work|method|approach|paper|model|framework|system|study|technique)s?\b",
    re.IGNORECASE,
)


def refers_back(claim: str) -> bool:
    """Whether the claim opens by pointing at what the sentence before it said.

    >>> refers_back("This approach helps in reducing the search space."), refers_back("SPELL uses self-play.")
    (True, False)
    >>> refers_back("The code for this work is available at https://github.com/x/y."), refers_back("SPELL beats this baseline.")
    (True, False)
    """
    return bool(REFERS_BACK.match(claim.strip()))


def judge_can_change(check: ClaimCheck, paper: Paper, high: float = HIGH_SUPPORT) -> bool:
    """Whether the model's judgement could still remove this claim (else asking it only costs time).

    A claim in the source's own words, or one whose two or more numbers and names stand together
    in one sentence of the source, stays whatever a small model says about it.

    >>> p = Paper(id="w", title="Self-J", abstract="WizardLM-13B-V1.2 rises from 89.17 to 92.48 on AlpacaEval.")
    >>> judge_can_change(ClaimCheck(text="WizardLM-13B-V1.2 goes from 89.17 to 92.48.", lexical_support=0.8), p)
    False
    >>> judge_can_change(ClaimCheck(text="It improves a lot.", lexical_support=0.8), p)
    True
    """
    if check.lexical_support >= high:
        return False
    return not (check.lexical_support >= FACTS_SUPPORT and facts_together(check.text, paper))


def best_sentence(claim: str, paper: Paper) -> tuple[str | None, float]:
    """The sentence of the paper's record sharing the most content words with the claim, and that share."""
    words = set(content_words(claim))
    best, score = None, 0.0
    for sentence in paper_sentences(paper):
        have = set(content_words(sentence))
        overlap = len(words & have) / len(words) if words else 0.0
        if overlap > score:
            best, score = sentence, overlap
    return best, score


def verify_quote(quote: str, paper: Paper) -> str | None:
    """The abstract sentence a model's quote reproduces (allowing small copying slips), else None.

    >>> p = Paper(id="x", title="T", abstract="We propose SPELL. It uses self-play to train.")
    >>> verify_quote("It uses self-play to train", p), verify_quote("It uses GPUs.", p)
    ('It uses self-play to train.', None)
    """
    q = fold(quote).strip(" .\"'")
    if len(q) < 8:
        return None
    for sentence in paper_sentences(paper):
        s = fold(sentence)
        if q in s or s.strip(" .") in q:
            return sentence
    words = set(content_words(quote))
    if not words:
        return None
    sentence, score = best_sentence(quote, paper)
    return sentence if score >= 0.8 and len(words) >= 4 else None


@dataclass
class Critic:
    """Checks drafts; ``llm`` is the judge model (None: deterministic checks only)."""

    llm: LLM | None = None
    layout: str = "rules_last"
    low: float = LOW_SUPPORT
    high: float = HIGH_SUPPORT
    clause_low: float = CLAUSE_SUPPORT
    judge_tokens: int = 64
    embedder: Embedder | None = None
    #: re-reads each kept claim's numbers and names from its abstract through the model (None: not done)
    rereader: Rereader | None = None
    calls: int = field(default=0, init=False)
    _vectors: dict = field(default_factory=dict, init=False, repr=False)

    def check(
        self,
        draft: str,
        sources: Sequence[Source],
        sources_text: str = "",
        on_claim: Callable[[ClaimCheck], None] | None = None,
        question: str = "",
        shape: str = "factoid",
    ) -> Critique:
        """Check every claim of ``draft`` against ``sources`` (and whether it answers ``question``, a
        question of ``shape``: see :func:`paperchat.rag.shapes.classify`)."""
        started = time.perf_counter()
        self.calls = 0
        by_n = {s.n: s for s in sources}
        checks = self._check_claims(draft, by_n, sources_text, question, on_claim, shape)
        if question and shape != "which-paper":
            self._answers_asked_thing(checks, question, by_n)
        if question:
            self._stays_on_question(checks, question)
            self._gives_asked_number(checks, question)
        premise = premise_check(question, sources) if question else None
        if premise is not None:  # the question's own false number is corrected first
            checks.insert(0, premise)
            if on_claim:
                on_claim(premise)
        return self._repair(checks, time.perf_counter() - started)

    def check_parts(self, parts: Sequence[tuple[str, str, str]], sources: Sequence[Source]) -> Critique:
        """Check a draft written in parts (the sides of a comparison): each part is ``(draft, question,
        sources_text)``, checked against the question asked of it; one verdict for the whole."""
        started = time.perf_counter()
        self.calls = 0
        by_n = {s.n: s for s in sources}
        checks = [c for draft, question, text in parts for c in self._check_claims(draft, by_n, text, question)]
        return self._repair(checks, time.perf_counter() - started)

    def _check_claims(
        self,
        draft: str,
        by_n: dict[int, Source],
        sources_text: str,
        question: str,
        on_claim: Callable[[ClaimCheck], None] | None = None,
        shape: str = "factoid",
    ) -> list[ClaimCheck]:
        checks: list[ClaimCheck] = []
        for text, cited in split_claims(draft):
            check = self._check_claim(text, cited, by_n, sources_text, question, shape)
            if check.kept and checks and _removed_statement(checks[-1]) and refers_back(text):
                # "This approach ..." after a removed claim: what it refers to is gone
                check.verdict = "unsupported"
                check.reasons.append("it refers back to a claim that was removed")
            checks.append(check)
            if on_claim:
                on_claim(check)
        return checks

    # -- one claim -------------------------------------------------------------------

    def _check_claim(
        self,
        text: str,
        cited: list[int],
        by_n: dict[int, Source],
        sources_text: str,
        question: str = "",
        shape: str = "factoid",
    ) -> ClaimCheck:
        check = ClaimCheck(text=text, cited=cited)
        if is_refusal(text):
            check.verdict = "refusal"
            return check
        why = fragment(text)
        if why:
            check.reasons.append(f"not a complete sentence: {why}")
            return check
        if any(echoes_instructions(text, by_n[n].text) for n in cited if n in by_n) or (
            not cited and echoes_instructions(text, "")
        ):
            check.reasons.append("it repeats the drafting instructions, not a source")
            return check
        has_facts = bool(numbers(text) or names(text) or quantities(text) or proper_nouns(text))
        terse = len(content_words(text)) < 2
        phrase = False
        if terse and question and not has_facts:
            # "Biomedical [1]." answers "which area was the method tested in?" when a cited abstract says it where it
            # speaks of what the question asks ("… on biomedical domain"): that sentence is its support
            phrase = has_facts = any(n in by_n and asked_phrase(text, question, by_n[n].paper) for n in cited)
        if terse and not (question and has_facts):
            check.reasons.append("too short to be a statement the sources could support")
            return check
        # a short answer ("It has 2 authors.", "Sep 12, 2018.") is read together with the question it answers
        terse = bool(question) and has_facts and len(content_words(text)) < SHORT_CLAIM_WORDS
        bad = [n for n in cited if n not in by_n]
        if bad:
            check.reasons.append(f"cites source {', '.join(map(str, bad))}, which does not exist")
        # a terse answer ("47.4% [1].") is read together with the question it answers (in a question about two
        # papers, the part asked of the cited one)
        claim = f"{own_ask(question, [by_n[n].paper for n in cited if n in by_n])} {text}" if terse and not phrase else text
        chosen = self._choose_sources(claim, text, cited, by_n, check)
        if not chosen:
            check.verdict = "unsupported"
            return check
        check.sources = chosen
        paper = by_n[chosen[0]].paper
        # naming a paper answers "which paper …?" and, row by row, "which papers …?"
        if question and shape not in ("which-paper", "list") and names_only_a_paper(text, [by_n[n].paper for n in chosen]):
            check.verdict = "unsupported"
            check.reasons.append("does not answer the question: it only names a paper")
            return check
        repaired = rebind_number(text, paper) or rebind_relative(text, paper) or rebind_extreme(text, paper)
        if repaired:  # a number given for the wrong item or as the wrong kind of figure: the right one
            claim = claim.replace(text, repaired[0]) if terse else repaired[0]
            text = check.text = repaired[0]
            check.reasons.append(repaired[1])
        why = self._meaning_problem(claim, text, chosen, by_n, check, question, shape)
        if not why and question and shape == "which-paper":
            why = self._describes(question, text, by_n[chosen[0]]) or self._fits_other_paper(question, chosen[0], by_n)
        if why:
            check.verdict = "unsupported"
            check.reasons.append(why)
            return check
        sentence, _ = best_sentence(claim, paper)
        check.support = sentence
        as_cited = set(chosen) <= {n for n in cited if n in by_n} and cited
        check.verdict = "supported" if as_cited and not repaired else "corrected"
        if self.rereader is not None and len(chosen) == 1:
            self._reread(check, paper, question, own_ask(question, [paper]) if terse else "")
            if not check.kept:
                return check
        if self.llm is not None and not terse:
            if judge_can_change(check, by_n[chosen[0]].paper, self.high):
                self._judge(check, by_n[chosen[0]], sources_text)
            else:
                check.reasons.append("kept without asking the model: the source states it in these words")
        return check

    def _reread(self, check: ClaimCheck, paper: Paper, question: str, context: str = "") -> None:
        """Re-derive the claim's numbers and names from ``paper``'s abstract (see :mod:`paperchat.rag.verify`):
        a value the abstract gives otherwise is repaired, one it does not state is withheld; a short answer is
        read after the question it answers (``context``)."""
        result = self.rereader.check(check.text, paper, given=question, context=context)
        self.calls += result.calls
        check.reasons.extend(result.reasons)
        if result.verdict == "withheld":
            check.verdict = "unsupported"
        elif result.verdict == "repaired":
            check.text = result.text
            check.verdict = "corrected"

    def _fits(self, claim: str, facts_of: str, source: Source) -> tuple[list[str], float]:
        """Facts of the claim missing from ``source``, and how much of the claim it supports."""
        support = lexical_support(claim, source.text)
        if support < self.low and self.embedder is not None and self._similar(claim, source.paper)[1] >= SEMANTIC_SUPPORT:
            support = self.low  # the same meaning in other words
        return missing_facts(facts_of, source.text), support

    def _choose_sources(
        self, claim: str, text: str, cited: list[int], by_n: dict[int, Source], check: ClaimCheck
    ) -> list[int]:
        """The cited sources that hold the claim's facts, else the one other source that does (re-cited)."""
        valid = [n for n in cited if n in by_n]
        if valid:
            fits = {n: self._fits(claim, text, by_n[n]) for n in valid}
            together = " ".join(by_n[n].text for n in valid)
            missing = missing_facts(text, together)
            support = max([lexical_support(claim, together)] + [f[1] for f in fits.values()])
            if not missing and support >= self.low:
                # keep every cited source that holds one of the claim's facts or a share of its words
                facts = numbers(text) + names(text) + proper_nouns(text)
                return [
                    n for n in valid
                    if fits[n][1] >= self.low or any(month_in(f, by_n[n].text) for f in facts) or fits[n][1] >= 0.25
                ] or valid
            if missing:
                check.reasons.append(f"{', '.join(missing)} not in the cited abstract")
            else:
                check.reasons.append(f"only {support:.0%} of its words are in the cited abstract")
        elif not cited:
            check.reasons.append("no citation")
        # re-cite: the one source that holds all the facts and most of the words; a claim that
        # names a paper can only move to that paper
        named = [n for n, src in by_n.items() if mentions(text, src.paper)]
        candidates = [n for n in (named or by_n) if n not in valid]
        ranked = sorted(((self._fits(claim, text, by_n[n]), n) for n in candidates), key=lambda i: (len(i[0][0]), -i[0][1]))
        if ranked and not ranked[0][0][0] and ranked[0][0][1] >= self.low:
            check.reasons.append(f"re-cited to source {ranked[0][1]}, which contains it")
            return [ranked[0][1]]
        return []

    def _meaning_problem(
        self, claim: str, text: str, chosen: list[int], by_n: dict[int, Source], check: ClaimCheck, question: str,
        shape: str = "factoid",
    ) -> str | None:
        """Why the claim, though its words are in the source, does not say what the source says."""
        joined = " ".join(by_n[n].text for n in chosen)
        paper = by_n[chosen[0]].paper
        check.lexical_support = round(lexical_support(claim, joined), 3)
        part, part_support = weakest_clause(text, joined)
        if part is not None and part_support < self.clause_low:
            if self.embedder is None or self._similar(part, paper)[1] < SEMANTIC_CLAUSE:
                return f'"{part.strip(" .")}" is not in the cited abstract'
        if len(content_words(text)) >= SHORT_CLAIM_WORDS:
            cosine = self._unstated(text, check.lexical_support, [by_n[n].paper for n in chosen])
            if cosine is not None:
                check.closest = round(cosine, 3)
                return f"no sentence of the cited abstract says this (the closest is {cosine:.2f} alike in meaning)"
        why = (
            wrong_subject(text, chosen, by_n)
            or listing_mismatch(text, paper)
            or number_bound_elsewhere(text, paper)
        )
        if why:
            return why
        if question and restates(text, question):
            return "does not answer the question: it only restates it"
        if question and shape != "which-paper" and self._unrelated(claim, question):
            # "how long should fresh pasta boil?" answered with a judge model's abstract
            return f"does not answer the question: {_ELSEWHERE}"
        if question:
            papers = [by_n[n].paper for n in chosen]
            # a claim citing several papers answers for them together (comparisons, lists)
            together = papers[0] if len(papers) == 1 else Paper(
                id="+".join(p.id for p in papers),
                title=" / ".join(p.title for p in papers),
                abstract=" ".join(f"{p.abstract} {listing_sentence(p)}" for p in papers),
            )
            why = off_subject(question, together)
            if why and (shape in ("comparison", "list") or two_asks(question)):
                # a question about several papers ("what did FooNet use, and which one did BarGAN use?") is
                # answered claim by claim: a name the claim's paper lacks may belong to another cited paper
                others = [src.paper for m, src in by_n.items() if m not in chosen]
                missing = unnamed(question, together)
                if all(any(not unnamed(name, p) for p in others) for name in missing):
                    why = None
            if not why and not (two_asks(question) and not quantities(text)):
                # a question that asks two things ("Which paper …, and what rate did it reach?") may get its
                # number in one claim and the rest in another: the answer as a whole must give it
                why = answers_quantity(text, question, together)
            if why:
                return f"does not answer the question: {why}"
        return None

    def _unrelated(self, text: str, question: str) -> bool:
        """Whether a claim of SHORT_CLAIM_WORDS or more, with no name or number, shares no content word with the
        question and is further from it in meaning (MiniLM cosine) than UNRELATED_CLAIM: true, perhaps, but about
        something else."""
        words = content_words(text)
        if self.embedder is None or len(words) < SHORT_CLAIM_WORDS or set(words) & set(content_words(question)):
            return False  # a short answer ("Gradient-based methods.") is no less an answer for its few words
        if numbers(text) or names(text):
            return False  # its names and numbers are checked as such ("SFT (given coverage); RLHF via …")
        vectors = self.embedder.embed([text, question])
        return float(vectors[0] @ vectors[1]) < UNRELATED_CLAIM

    @staticmethod
    def _stays_on_question(checks: list[ClaimCheck], question: str) -> None:
        """A draft that wandered off the question (a claim removed as about something else): its other claims of
        SHORT_CLAIM_WORDS or more, with no name or number, that share no word with the question go too."""
        if not any(_ELSEWHERE in r for c in checks for r in c.reasons):
            return
        asked = set(content_words(question))
        _withhold(
            [c for c in checks if c.kept and not numbers(c.text) + names(c.text)
             and len(content_words(c.text)) >= SHORT_CLAIM_WORDS and not set(content_words(c.text)) & asked],
            f"{_ELSEWHERE}, like the claim before",
        )

    @staticmethod
    def _gives_asked_number(checks: list[ClaimCheck], question: str) -> None:
        """A question that asks two things and a quantity ("Which paper …, and what rate did it reach?") may get
        the number in any claim, but the answer as a whole must give one."""
        if not (two_asks(question) and QUANTITY_QUESTION.search(question)):
            return
        kept = [c for c in checks if c.kept]
        if not any(quantities(c.text) for c in kept):
            _withhold(kept, _NO_NUMBER)

    def _answers_asked_thing(self, checks: list[ClaimCheck], question: str, by_n: dict[int, Source]) -> None:
        """Withhold an answer none of whose kept claims gives the kind of thing the question asks for
        ("What probability …?" answered with how performance improves), when the cited abstracts name it."""
        head = asked_thing(question)
        kept = [c for c in checks if c.kept]
        if head is None or not kept or any(gives_asked_thing(c.text, question, head) for c in kept):
            return
        cited = " ".join(by_n[n].paper.abstract for c in kept for n in c.sources if n in by_n)
        if not names_thing(head, cited):
            return  # the abstracts call the thing asked for by other words: the answer may too
        for c in kept:  # a claim drawn from the sentence that names the thing asked for gives it in other words
            paper = by_n[c.sources[0]].paper if c.sources and c.sources[0] in by_n else None
            closest = [best_sentence(c.text, paper)[0], self._similar(c.text, paper)[0]] if paper else []
            if any(names_thing(head, s) for s in closest if s):
                return
            if paper and gives_items(c.text, question, head, paper):
                return
        _withhold(kept, f"the answer names no {head} and gives no name or number")

    def _describes(self, question: str, text: str, source: Source) -> str | None:
        """For a which-paper claim that is only the paper's title ("[1]" drafts become one): the claim says "this
        paper is the one described", so the description must hold for that paper as any claim's words and facts
        must; why not, or None."""
        if not names_only_a_paper(text, [source.paper]):
            return None
        described = description_of(question)
        missing, support = self._fits(described, described, source)
        if missing:
            return f"the question's {', '.join(missing)} is not in the abstract of the paper named"
        if support < self.low:
            return "the abstract of the paper named does not state what the question describes"
        # a description is words that may all occur in an unrelated abstract ("a weather model that forecasts
        # rain from radar images" in a speech paper's): as for any description, its meaning must be there too
        cosine = self._unstated(described, lexical_support(described, source.text), [source.paper])
        if cosine is not None:
            return f"no sentence of the paper named says what the question describes (the closest is {cosine:.2f} alike)"
        return off_subject(question, source.paper)

    def _unstated(self, description: str, lexical: float, papers: Sequence[Paper]) -> float | None:
        """For a description (no numbers) with ``lexical`` support below FACTS_SUPPORT: the cosine of the closest
        sentence of ``papers`` when it is below SEMANTIC_FLOOR (the meaning is not there), else None."""
        if self.embedder is None or numbers(description) or quantities(description) or lexical >= FACTS_SUPPORT:
            return None
        cosine = max(self._similar(description, p)[1] for p in papers)
        return cosine if cosine < SEMANTIC_FLOOR else None

    def _fits_other_paper(self, question: str, n: int, by_n: dict[int, Source]) -> str | None:
        """For a which-paper question: why the paper a claim names is not the answer (another source fits the
        question's description clearly better), or None."""
        if self.embedder is None or len(by_n) < 2:
            return None
        described = description_of(question)
        q = self.embedder.embed([described])[0]
        titles = self.embedder.embed([src.paper.title for src in by_n.values()]) @ q
        fit = {m: self._description_fit(described, q, float(title), src.paper) for (m, src), title in zip(by_n.items(), titles)}
        best = max(fit, key=fit.get)
        if best != n and fit[best] - fit[n] >= DESCRIPTION_MARGIN:
            return f"the question's description fits source [{best}] better than the paper this claim names"
        return None

    def _description_fit(self, described: str, vector, title_cosine: float, paper: Paper) -> float:
        """How well ``paper`` fits a description (``vector`` its embedding): the closest sentence's (or the title's)
        cosine plus half the share of the description's content words it uses (the weights of evidence selection)."""
        vectors = self._sentence_vectors(paper)
        cosine = float((vectors @ vector).max()) if vectors is not None else 0.0
        return max(cosine, title_cosine) + 0.5 * focus_overlap(described, f"{paper.title} {paper.abstract}")

    def _sentence_vectors(self, paper: Paper):
        """The embeddings of ``paper_sentences(paper)``, computed once per paper (None without sentences or embedder)."""
        if self.embedder is None or not paper_sentences(paper):
            return None
        if paper.id not in self._vectors:
            self._vectors[paper.id] = self.embedder.embed(paper_sentences(paper))
        return self._vectors[paper.id]

    def _similar(self, text: str, paper: Paper) -> tuple[str | None, float]:
        """The sentence of ``paper`` closest in meaning to ``text`` (embedding cosine), and the cosine."""
        vectors = self._sentence_vectors(paper)
        if vectors is None:
            return None, 0.0
        sentences = paper_sentences(paper)
        sims = vectors @ self.embedder.embed([text])[0]
        i = int(sims.argmax())
        return sentences[i], float(sims[i])

    def _judge(self, check: ClaimCheck, source: Source, sources_text: str) -> None:
        messages = [Message(r, c) for r, c in prompts.judge_messages(sources_text, check.text, source.n, self.layout)]
        try:
            self.calls += 1
            reply = self.llm.complete(
                Request(messages, max_tokens=self.judge_tokens, temperature=0.0, json_schema=prompts.JUDGE_SCHEMA)
            ).json()
            verdict = str(reply.get("verdict", "")).lower()
            quote = str(reply.get("quote", ""))
        except (ValueError, AttributeError) as err:
            log.info("judge reply unusable (%s); keeping the deterministic verdict", err)
            check.reasons.append("the model's judgement was unreadable")
            return
        except PaperchatError as err:
            log.warning("judge call failed (%s); keeping the deterministic verdict", err)
            check.reasons.append("the model could not judge this claim")
            return
        check.model_verdict = verdict
        check.model_quote = quote
        verified = verify_quote(quote, source.paper) if quote else None
        check.quote_verified = verified is not None
        if verified:
            check.support = verified
        if verdict != "supported":
            check.verdict = "unsupported"
            check.reasons.append("the model judged it unsupported by the source")
        elif not verified and check.lexical_support < 0.7:
            check.verdict = "unsupported"
            check.reasons.append("the model's supporting quote is not in the abstract")

    # -- the whole answer ------------------------------------------------------------

    def _repair(self, checks: list[ClaimCheck], seconds: float) -> Critique:
        kept, seen = [], set()
        for c in checks:  # a claim the draft repeats is said once
            if c.kept and fold(c.text) not in seen:
                kept.append(c)
                seen.add(fold(c.text))
        rejected = [c for c in checks if c.verdict == "unsupported"]
        if kept:
            answer = " ".join(cite(c.text, c.sources) for c in kept)
            verdict: Verdict = "partially supported" if rejected else "supported"
        elif rejected:
            answer, verdict = f"{prompts.REFUSAL} {prompts.WITHHELD}", "not supported"
        else:
            answer, verdict = prompts.REFUSAL, "refused"
        for c in rejected:
            c.reasons.append(prompts.REMOVED_NOTE)
        return Critique(
            claims=checks,
            verdict=verdict,
            answer=answer,
            removed=len(rejected),
            seconds=round(seconds, 3),
            model_calls=self.calls,
        )


def _withhold(claims: Sequence[ClaimCheck], why: str) -> None:
    """Remove ``claims`` from the answer: they do not answer the question, for the reason ``why``."""
    for c in claims:
        c.verdict = "unsupported"
        c.reasons.append(f"does not answer the question: {why}")


def _removed_statement(check: ClaimCheck) -> bool:
    """Whether ``check`` removed a statement that a next sentence could point back to (a removed
    fragment such as "It is [1]." states nothing, so "It surpasses …" after it points at the paper)."""
    return check.verdict == "unsupported" and not any(
        r.startswith(("not a complete sentence", "too short")) for r in check.reasons
    )


def cite(text: str, sources: Sequence[int]) -> str:
    """A claim with its citations placed before the final punctuation.

    >>> cite("SPELL uses self-play.", [1, 3])
    'SPELL uses self-play [1][3].'
    """
    text = text.strip()
    end = text[-1] if text and text[-1] in ".!?" else "."
    body = text[:-1].rstrip() if text and text[-1] in ".!?" else text
    marks = "".join(f"[{n}]" for n in sources)
    return f"{body} {marks}{end}" if marks else f"{body}{end}"


def no_critique(draft: str, sources: Sequence[Source]) -> Critique:
    """A pass-through record for the ``no-critique`` pipeline: nothing checked, nothing removed."""
    claims = [ClaimCheck(text=t, cited=c, sources=c, verdict="supported", reasons=["not checked"]) for t, c in split_claims(draft)]
    verdict: Verdict = "refused" if all(is_refusal(c.text) for c in claims) else "supported"
    return Critique(claims=claims, verdict=verdict, answer=draft.strip() or prompts.REFUSAL)
