"""Scoring: pure functions over answers and result records."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from rag.corpus import normalize_text
from rag.critique import is_refusal


def keywords_present(answer: str, keywords: Sequence[str]) -> bool:
    """Whether every keyword occurs in the answer, ignoring case.

    >>> keywords_present("SPARK reaches 67.5 F1 on ProcessBench [1].", ["67.5", "processbench"])
    True
    >>> keywords_present("SPARK does well.", ["67.5"])
    False
    """
    text = answer.casefold()
    return all(k.casefold() in text for k in keywords)


def refused(answer: str, verdict: str | None = None) -> bool:
    """Whether an answer declines to answer (a refusal sentence, or a critique verdict saying so).

    >>> refused("The provided abstracts do not answer this question."), refused("SPELL uses self-play [1].")
    (True, False)
    """
    if verdict in ("refused", "not supported"):
        return True
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


def summarize(records: Sequence[dict]) -> dict:
    """Metrics of one pipeline's result records (see ``eval.runner`` for the record fields)."""
    ok = [r for r in records if not r.get("error")]
    answerable = [r for r in ok if r["answerable"]]
    unanswerable = [r for r in ok if not r["answerable"]]
    planted = [p for r in ok for p in r.get("planted", [])]
    must = [p for p in planted if p["must_flag"]]
    correct = [p for p in planted if not p["must_flag"]]
    correct_total = sum(r["scores"]["correct"] for r in ok)
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
    """``summarize`` for each question type present."""
    types = sorted({r.get("type") or "" for r in records} - {""})
    return {t: summarize([r for r in records if r.get("type") == t]) for t in types}
