"""The critique's records and claims: a numbered ``Source``, the verdict on one claim (``ClaimCheck``), the
critique of a draft (``Critique``); a draft split into claims, refusals, citations placed, withholding."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pydantic import BaseModel, Field
from typing import Literal

from .. import prompts
from ..corpus import Paper
from ..shapes import listing_sentence
from ..text import fold, split_sentences

ClaimVerdict = Literal["supported", "corrected", "unsupported", "refusal"]

Verdict = Literal["supported", "partially supported", "not supported", "refused"]

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



_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)]|\(\d+\))\s+(.*\S)\s*$")


def joined_lists(draft: str) -> str:
    r"""A draft whose lists ("X has three parts:" then one item a line) are each one line: the lead-in with its items,
    so each item is read as what the lead-in says it is, not as a sentence of its own.

    >>> print(joined_lists("FooNet has two parts:\n1. A sparse encoder [1].\n2. A tiny decoder [1].\nIt is fast [1]."))
    FooNet has two parts: A sparse encoder; A tiny decoder [1].
    It is fast [1].
    """
    lines = draft.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        items = []
        j = i + 1
        while line.rstrip().endswith(":") and j < len(lines) and (m := _ITEM.match(lines[j])):
            items.append(m.group(1))
            j += 1
        if not items:
            out.append(line)
            i += 1
            continue
        cited = [c for item in items for c in _CITATION.findall(item)]
        parts = [_CITATION.sub("", item).strip().rstrip(" .;") for item in items]
        marks = " ".join(dict.fromkeys(f"[{a or b}]" for a, b in cited))
        out.append(f"{line.rstrip()} {'; '.join(parts)}" + (f" {marks}." if marks else "."))
        i = j
    return "\n".join(out)


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
    for line in joined_lists(draft.replace("\r", "")).split("\n"):
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



def is_refusal(text: str) -> bool:
    """Whether a sentence says the sources do not answer.

    >>> is_refusal(prompts.REFUSAL), is_refusal("The abstracts do not mention the learning rate."), is_refusal("SPELL wins.")
    (True, True, False)
    """
    return fold(prompts.REFUSAL).rstrip(".") in fold(text) or bool(_REFUSAL_HINTS.search(text))

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



def withhold(claims: Sequence[ClaimCheck], why: str) -> None:
    """Remove ``claims`` from the answer: they do not answer the question, for the reason ``why``."""
    for c in claims:
        c.verdict = "unsupported"
        c.reasons.append(f"does not answer the question: {why}")



#: Why a claim that only says the question back is withheld.
RESTATES = "does not answer the question: it only restates it"


def removed_statement(check: ClaimCheck, question: str = "") -> bool:
    """Whether ``check`` removed a statement that a next sentence could point back to (a removed
    fragment such as "It is [1]." states nothing, so "It surpasses …" after it points at the paper; nor does a
    claim that only says back a ``question`` of one sentence, which asks and states nothing: "They show …" after
    it points at the paper it named; a question with a sentence before its ask may state a premise, and a claim
    saying that back states it)."""
    asks_only = bool(question) and not re.search(r"[.?!]\s+\S", question.strip())
    nothing = ("not a complete sentence", "too short", *((RESTATES,) if asks_only else ()))
    return check.verdict == "unsupported" and not any(r.startswith(nothing) for r in check.reasons)



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
