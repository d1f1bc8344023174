"""The self-critique pass: check every claim of a draft against the abstracts it cites.

Order of checks for each claim (a sentence of the draft):

1. **Deterministic** (a small model agrees with hallucinations, so these come first and
   cannot be overruled): citation numbers must exist; every number and every model or
   benchmark name in the claim must appear in a cited abstract; most of the claim's
   content words must appear there too. A claim whose facts sit in a *different* source
   is re-cited to it ("corrected"). A claim with no citation gets the source that holds
   its facts, or is unsupported; the refusal sentence needs no citation.
2. **Model judgement** (optional): for claims that pass, the model quotes the supporting
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
from .corpus import Paper
from .errors import PaperchatError
from .models import LLM, Message, Request
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
    r"(?:\(\s*)?(?:\bsources?\s*)?\[\s*(?:sources?\s*)?(\d+(?:\s*[,;]\s*(?:sources?\s*)?\d+)*)\s*\](?:\s*\))?",
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
        return f"{self.paper.title}. {self.paper.abstract}"


class ClaimCheck(BaseModel):
    """The verdict on one claim of the draft."""

    text: str = Field(description="The claim, citations removed.")
    cited: list[int] = Field(default_factory=list, description="Sources the draft cited.")
    sources: list[int] = Field(default_factory=list, description="Sources that support it, after correction.")
    verdict: ClaimVerdict = "unsupported"
    reasons: list[str] = Field(default_factory=list)
    support: str | None = Field(None, description="The abstract sentence that supports the claim.")
    lexical_support: float = 0.0
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
    """
    claims: list[tuple[str, list[int]]] = []
    for line in draft.replace("\r", "").split("\n"):
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", line).strip()
        if not line:
            continue
        for sentence in split_sentences(line):
            cited = [int(x) for m in _CITATION.finditer(sentence) for x in re.findall(r"\d+", m.group(1))]
            text = _CITATION.sub("", sentence)
            text = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split())).strip()
            if not re.search(r"[A-Za-z0-9]", text):
                if claims:
                    claims[-1][1].extend(c for c in cited if c not in claims[-1][1])
                continue
            claims.append((text, list(dict.fromkeys(cited))))
    return claims


def is_refusal(text: str) -> bool:
    """Whether a sentence says the sources do not answer.

    >>> is_refusal(prompts.REFUSAL), is_refusal("The abstracts do not mention the learning rate."), is_refusal("SPELL wins.")
    (True, True, False)
    """
    return fold(prompts.REFUSAL).rstrip(".") in fold(text) or bool(_REFUSAL_HINTS.search(text))


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


def missing_facts(claim: str, source_text: str) -> list[str]:
    """Numbers and names of the claim that the source does not contain.

    >>> missing_facts("It reaches 67.5 F1 on ProcessBench with 13 GPUs.", "achieving 67.5 F1 on ProcessBench")
    ['13', 'GPUs']
    """
    missing = [n for n in numbers(claim) if not number_in(n, source_text)]
    missing += [n for n in names(claim) + proper_nouns(claim) if not name_in(n, source_text) and n not in missing]
    return missing


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


def off_subject(question: str, paper: Paper) -> str | None:
    """Why a claim from ``paper`` cannot answer ``question``: a name the question asks about is not in it.

    >>> p = Paper(id="m", title="Momentum-GS: Gaussian Self-Distillation", abstract="Blocks are bounded by GPUs.")
    >>> off_subject("How many GPUs were used to train AlphaLLM?", p)
    'the question is about AlphaLLM, which the cited abstract does not mention'
    >>> off_subject("How does Momentum-GS use GPUs?", p) is None
    True
    """
    text = f"{paper.title}. {paper.abstract}"
    asked = [n for n in dict.fromkeys(names(question) + proper_nouns(question)) if n.upper() not in GENERIC_ACRONYMS]
    missing = [n for n in asked if not name_in(n, text)]
    if missing:
        return f"the question is about {', '.join(missing)}, which the cited abstract does not mention"
    return None


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
        return "it gives no number, and the question asks for one"
    focus = focus_words(question, paper.title)
    if not focus:
        return None
    sentences = split_sentences(f"{paper.title}. {paper.abstract}")
    for value in values:
        for sentence in sentences:
            present = number_in(value, sentence) if value[0].isdigit() else fold(value) in fold(sentence)
            if present and focus & set(content_words(sentence)):
                return None
    return f"the abstract does not give {', '.join(values)} as the {' / '.join(sorted(focus))} the question asks about"


def best_sentence(claim: str, paper: Paper) -> tuple[str | None, float]:
    """The abstract sentence sharing the most content words with the claim, and that share."""
    words = set(content_words(claim))
    best, score = None, 0.0
    for sentence in split_sentences(paper.abstract):
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
    for sentence in split_sentences(paper.abstract):
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
    calls: int = field(default=0, init=False)

    def check(
        self,
        draft: str,
        sources: Sequence[Source],
        sources_text: str = "",
        on_claim: Callable[[ClaimCheck], None] | None = None,
        question: str = "",
    ) -> Critique:
        """Check every claim of ``draft`` against ``sources`` (and whether it answers ``question``)."""
        started = time.perf_counter()
        self.calls = 0
        by_n = {s.n: s for s in sources}
        checks: list[ClaimCheck] = []
        for text, cited in split_claims(draft):
            check = self._check_claim(text, cited, by_n, sources_text, question)
            checks.append(check)
            if on_claim:
                on_claim(check)
        return self._repair(checks, time.perf_counter() - started)

    # -- one claim -------------------------------------------------------------------

    def _check_claim(
        self, text: str, cited: list[int], by_n: dict[int, Source], sources_text: str, question: str = ""
    ) -> ClaimCheck:
        check = ClaimCheck(text=text, cited=cited)
        if is_refusal(text):
            check.verdict = "refusal"
            return check
        if len(content_words(text)) < 2:
            check.reasons.append("too short to be a statement the sources could support")
            return check
        bad = [n for n in cited if n not in by_n]
        if bad:
            check.reasons.append(f"cites source {', '.join(map(str, bad))}, which does not exist")
        valid = [n for n in cited if n in by_n]

        def fits(n: int) -> tuple[list[str], float]:
            src = by_n[n].text
            return missing_facts(text, src), lexical_support(text, src)

        chosen: list[int] = []
        if valid:
            missing_sets = {n: fits(n) for n in valid}
            together = " ".join(by_n[n].text for n in valid)
            missing = missing_facts(text, together)
            support = lexical_support(text, together)
            if not missing and support >= self.low:
                chosen = [n for n in valid if missing_sets[n][1] >= self.low or not missing_sets[n][0]] or valid
            elif missing:
                check.reasons.append(f"{', '.join(missing)} not in the cited abstract")
            else:
                check.reasons.append(f"only {support:.0%} of its words are in the cited abstract")
        elif not cited:
            check.reasons.append("no citation")
        if not chosen:
            # re-cite: the one source that holds all the facts and most of the words
            ranked = sorted(
                ((fits(n), n) for n in by_n if n not in valid),
                key=lambda item: (len(item[0][0]), -item[0][1]),
            )
            if ranked and not ranked[0][0][0] and ranked[0][0][1] >= self.low:
                chosen = [ranked[0][1]]
                check.reasons.append(f"re-cited to source {chosen[0]}, which contains it")
        if not chosen:
            check.verdict = "unsupported"
            return check
        check.sources = chosen
        joined = " ".join(by_n[n].text for n in chosen)
        check.lexical_support = round(lexical_support(text, joined), 3)
        part, part_support = weakest_clause(text, joined)
        if part is not None and part_support < self.clause_low:
            check.verdict = "unsupported"
            check.reasons.append(f'"{part.strip(" .")}" is not in the cited abstract')
            return check
        if question:
            why = off_subject(question, by_n[chosen[0]].paper) or answers_quantity(text, question, by_n[chosen[0]].paper)
            if why:
                check.verdict = "unsupported"
                check.reasons.append(f"does not answer the question: {why}")
                return check
        sentence, _ = best_sentence(text, by_n[chosen[0]].paper)
        check.support = sentence
        check.verdict = "supported" if set(chosen) <= set(valid) and valid else "corrected"
        if self.llm is not None:
            self._judge(check, by_n[chosen[0]], sources_text)
        return check

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
        if check.lexical_support >= self.high:
            return  # the claim is the source's own words; a small model's doubt cannot remove it
        if verdict != "supported":
            check.verdict = "unsupported"
            check.reasons.append("the model judged it unsupported by the source")
        elif not verified and check.lexical_support < 0.7:
            check.verdict = "unsupported"
            check.reasons.append("the model's supporting quote is not in the abstract")

    # -- the whole answer ------------------------------------------------------------

    def _repair(self, checks: list[ClaimCheck], seconds: float) -> Critique:
        kept = [c for c in checks if c.kept]
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
