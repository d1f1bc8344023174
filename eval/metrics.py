"""Scoring: pure functions over answers and result records."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from paperchat.rag.corpus import normalize_text
from paperchat.rag.critique import is_refusal
from paperchat.rag.text import split_sentences
from paperchat.rag.text import DASHES

#: A one-word name with two or more capitals (SPaR, MCTS, IFEval): matched as a whole word.
_ACRONYM = re.compile(r"^(?=[A-Za-z0-9]*[A-Z][A-Za-z0-9]*[A-Z])[A-Za-z0-9]{3,}$")

#: Verdicts shown with a green or amber badge.
BADGED = ("supported", "partially supported")


def normalize(text: str) -> str:
    """The text as the keyword matcher compares it: Unicode-folded, case-folded, one kind of dash.

    >>> normalize("Self\u2011RAG  Reaches\u00a067.5")
    'self-rag reaches 67.5'
    """
    return normalize_text(DASHES.sub("-", normalize_text(text)))


def keyword_in(keyword: str, text: str) -> bool:
    """Whether ``keyword`` occurs in ``text`` (both normalised, see ``normalize``).

    A keyword that starts or ends with a digit must not be part of a longer number there ("8" is
    not in "18 authors" nor in "8.5"); a word keyword must start a word (its end may run on:
    "prefer" is in "preferred"); a one-word name in capitals must be the whole word.

    >>> keyword_in("8", "It has 8 authors."), keyword_in("8", "It has 18 authors."), keyword_in("8", "8.5 points")
    (True, False, False)
    >>> keyword_in("13K", "13K examples"), keyword_in("1B", "11B tokens"), keyword_in("4.0", "gains 4.0% on average")
    (True, False, True)
    >>> keyword_in("SPaR", "SPARK reaches 67.5 F1"), keyword_in("format", "information"), keyword_in("prefer", "preferred")
    (False, False, True)
    """
    pattern = _pattern(keyword)
    return pattern is None or pattern.search(normalize(text)) is not None


def _pattern(keyword: str) -> re.Pattern | None:
    """The regular expression ``keyword_in`` looks for in normalised text (None for an empty keyword)."""
    key = normalize(keyword)
    if not key:
        return None
    before = after = ""
    if key[0].isdigit():
        before = r"(?<!\d)(?<!\d[.,])"
    elif key[0].isalpha():
        before = r"(?<![^\W_])"  # a word starts there: "format" is not in "information"
    if key[-1].isdigit():
        after = r"(?!\d)(?![.,]\d)"
    elif _ACRONYM.match(keyword.strip()):
        after = r"(?![^\W_])"  # a name in capitals ends there: "SPaR" is not in "SPARK"
    return re.compile(before + re.escape(key) + after)


def keywords_present(answer: str, keywords: Sequence[str]) -> bool:
    """Whether every keyword occurs in the answer (see ``keyword_in``).

    >>> keywords_present("SPARK reaches 67.5 F1 on ProcessBench [1].", ["67.5", "processbench"])
    True
    >>> keywords_present("SPARK does well.", ["67.5"])
    False
    """
    return all(keyword_in(k, answer) for k in keywords)


_NEGATION = re.compile(r"\b(?:not|no|never|nor|rather than|instead of|isn't|wasn't|doesn't|didn't|aren't)\b[^.;!?]{0,40}$")


def _premise_denied(key: str, text: str) -> bool:
    """Whether every mention of ``key`` in ``text`` follows a negation in its sentence ("..., not 72.3")."""
    norm, pattern = normalize(text), _pattern(key)
    starts = [m.start() for m in pattern.finditer(norm)] if pattern else []
    return all(_NEGATION.search(norm[max(0, start - 60) : start]) for start in starts)


def corrects_premise(answer: str, corrects: Sequence[str], premise: Sequence[str] = ()) -> bool:
    """Whether an answer to a false-premise question states the true fact instead of the false one:
    every ``corrects`` keyword is there, and the wrong value (``premise``) only after a negation.

    So "67.5 F1, not 72.3" corrects the premise, while "Yes, 72.3 F1, up from 67.5" confirms it
    and scores as wrong, however much true detail it adds.

    >>> corrects_premise("SPARK reaches 67.5 F1 [1].", ["67.5"], ["72.3"])
    True
    >>> corrects_premise("It reaches 67.5 F1, not 72.3 [1].", ["67.5"], ["72.3"])
    True
    >>> corrects_premise("Yes, 72.3 F1, up from 67.5 [1].", ["67.5"], ["72.3"]), corrects_premise("It does well.", ["67.5"])
    (False, False)
    >>> corrects_premise("Yes, 72.3 F1, up from 67.5 [1].", ["67.5"], "72.3")  # a premise given as a string
    False
    """
    if isinstance(corrects, str):
        corrects = [corrects]
    if isinstance(premise, str):  # one value given as a string, not a list: the value, not its characters
        premise = [premise]
    if not corrects or not keywords_present(answer, corrects):
        return False
    return all(not keyword_in(k, answer) or _premise_denied(k, answer) for k in premise)


def refused(answer: str, verdict: str | None = None) -> bool:
    """Whether an answer declines to answer (a refusal sentence, or a critique verdict saying so).

    >>> refused("The provided abstracts do not answer this question."), refused("SPELL uses self-play [1].")
    (True, False)

    An answer shown with a badge is withheld only when each of its sentences declines: one that also states
    something ("FooNet reaches 9 F1 [1]. The papers do not state this for BarNet.") is an answer:

    >>> refused("FooNet reaches 9 F1 [1]. The papers do not state this for BarNet.", "partially supported")
    False
    >>> refused("FooNet's abstract does not state 12.3 [1].", "partially supported")
    True
    """
    if verdict in ("refused", "not supported"):
        return True
    if verdict in BADGED:
        return all(is_refusal(s) for s in split_sentences(answer))
    return is_refusal(answer) or not answer.strip()


def recall_at(retrieved: Sequence[str], expected: Sequence[str], k: int) -> float | None:
    """Share of expected titles among the first ``k`` retrieved (None when nothing is expected).

    >>> recall_at(["A", "B", "C"], ["b"], 1), recall_at(["A", "B", "C"], ["b"], 5), recall_at(["A"], [], 5)
    (0.0, 1.0, None)
    """
    if not expected:
        return None
    got = {normalize_text(t) for t in retrieved[:k]}
    return sum(normalize_text(t) in got for t in expected) / len(expected)


def citation_precision(cited: Sequence[str], expected: Sequence[str]) -> float | None:
    """Share of cited papers that are expected ones (None when nothing was cited or nothing is expected).

    >>> citation_precision(["A", "B"], ["a"]), citation_precision([], ["a"])
    (0.5, None)
    """
    if not cited or not expected:
        return None
    want = {normalize_text(t) for t in expected}
    return sum(normalize_text(t) in want for t in cited) / len(cited)


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile of the values that are present, or None.

    >>> percentile([1, 2, 3, None, 4], 50)
    2.5
    """
    vals = [v for v in values if v is not None]
    return round(float(np.percentile(vals, q)), 3) if vals else None


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are present, or None.

    >>> mean([1.0, None, 0.0]), mean([None])
    (0.5, None)
    """
    vals = [v for v in values if v is not None]
    return round(float(np.mean(vals)), 4) if vals else None


#: Planted kinds that are correct answers in other words than the abstract (see ``paperchat.eval.planted``).
REWORDED_KINDS = ("reworded", "terse")


def badge_right(record: dict) -> bool | None:
    """For an answer shown with a supported or partially-supported badge: whether it is right
    (an answerable row with every keyword, or a false-premise row answered with the true fact);
    None when the answer is not shown with such a badge (withheld, refused, or a refusal sentence).
    """
    if record.get("error") or record.get("verdict") not in BADGED or refused(record.get("answer", ""), record["verdict"]):
        return None
    scores = record["scores"]
    if record["answerable"]:
        return bool(scores["correct"])
    return bool(scores.get("corrected"))


def summarize(records: Sequence[dict]) -> dict:
    """Metrics of one pipeline's result records (see ``paperchat.eval.runner`` for the record fields)."""
    ok = [r for r in records if not r.get("error")]
    answerable = [r for r in ok if r["answerable"]]
    unanswerable = [r for r in ok if not r["answerable"]]
    planted = [p for r in ok for p in r.get("planted", [])]
    must = [p for p in planted if p["must_flag"]]
    correct = [p for p in planted if not p["must_flag"] and p["kind"] not in REWORDED_KINDS]
    reworded = [p for p in planted if p["kind"] in REWORDED_KINDS]
    correct_total = sum(r["scores"]["correct"] for r in ok)
    badges = [b for b in (badge_right(r) for r in ok) if b is not None]
    return {
        "questions": len(records),
        "errors": len(records) - len(ok),
        "accuracy": mean(r["scores"]["correct"] for r in answerable),
        "refusal_accuracy": mean(r["scores"]["correct"] for r in unanswerable),
        "overall_accuracy": round(correct_total / len(ok), 4) if ok else None,
        "recall@1": mean(r["scores"]["recall@1"] for r in answerable),
        "recall@5": mean(r["scores"]["recall@5"] for r in answerable),
        "citation_precision": mean(r["scores"]["citation_precision"] for r in answerable),
        "critique_catch_rate": mean(float(p["flagged"]) for p in must) if must else None,
        "critique_false_alarm_rate": mean(float(p["flagged"]) for p in correct) if correct else None,
        "reworded_false_alarm_rate": mean(float(p["flagged"]) for p in reworded) if reworded else None,
        "reworded_checked": len(reworded),
        "false_alarm_rate_by_kind": {
            kind: mean(float(p["flagged"]) for p in reworded if p["kind"] == kind)
            for kind in sorted({p["kind"] for p in reworded})
        },
        "badge_precision": round(sum(badges) / len(badges), 4) if badges else None,
        "badged": len(badges),
        "unanswerable_withheld": mean(r["scores"]["correct"] for r in unanswerable),
        "catch_rate_by_kind": {
            kind: mean(float(p["flagged"]) for p in must if p["kind"] == kind)
            for kind in sorted({p["kind"] for p in must})
        },
        "first_token_p50": percentile((r["timings"].get("first_token") for r in ok), 50),
        "first_token_p95": percentile((r["timings"].get("first_token") for r in ok), 95),
        "total_p50": percentile((r["timings"].get("total") for r in ok), 50),
        "total_p95": percentile((r["timings"].get("total") for r in ok), 95),
        "tokens_per_second": mean(r["timings"].get("tokens_per_second") or None for r in ok),
    }


def by_type(records: Sequence[dict]) -> dict[str, dict]:
    """``summarize`` for each question type present (rows without a type are left out)."""
    types = sorted({r.get("type") or "" for r in records} - {""})
    return {t: summarize([r for r in records if r.get("type") == t]) for t in types}
