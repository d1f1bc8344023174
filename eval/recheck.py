"""The current critique on drafts a model already wrote: an evaluation's records, checked again in seconds.

``python -m paperchat.eval.recheck eval/results/questions-embedded-1.5b-dba86f4/results.jsonl`` takes each
paperchat record, plans its question again (retrieval and evidence are deterministic), checks the
recorded draft with the deterministic critique (no model judge, no re-reading: the model is not loaded;
``--reread`` loads it and re-reads claims as ``paperchat ask`` does; ``--without NAME[,NAME]`` switches
critique checks off by name) and scores the
new answer like ``paperchat eval``. It prints, as JSON, answerable correct, unanswerable withheld and
badge precision for the recorded answers and for the rechecked ones, then every row whose score or
badge changed. Comparison drafts are split into their sides by line; rows whose sides cannot be
recovered are left as recorded. Use it to measure a critique change on drafts nobody wrote for it,
then confirm with a full ``paperchat eval``. ``--ablate`` plans each question once, then checks the drafts with
every check on and once per check switched off, and prints a table of the figures and their difference.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paperchat.rag.critique import check_names, is_refusal
from paperchat.rag.drafting import name_cited_objects, name_the_source, name_the_subject
from paperchat.rag.errors import ModelUnavailableError
from paperchat.rag.finish import finish
from paperchat.rag.models import LLM
from paperchat.rag.plans import strip_names
from paperchat.rag.services import build_llm, build_pipeline, settings_from_env
from paperchat.rag.shapes import classify, listing_fields

from . import metrics
from .runner import read_results, run_tool


class NoModel(LLM):
    """The pipeline's model slot when nothing is drafted: a call is refused with an error."""

    backend = "none"
    model = "none"

    def stream(self, request):
        raise ModelUnavailableError("No model is loaded: rechecking only checks drafts already written.")


@dataclass
class Prepared:
    """A record's question planned again: what the critique checks (``parts``: a comparison's sides, each
    ``(draft, question, sources_text)``; else ``draft`` against ``asked``)."""

    record: dict
    plan: Any
    parts: list[tuple[str, str, str]] | None = None
    draft: str = ""
    asked: str = ""


def prepare(pipeline, record: dict) -> Prepared | None:
    """``record``'s question planned again (None: no model draft to check again, or its sides are lost)."""
    question = record.get("standalone_question") or record["question"]
    plan = pipeline.plan(question, classify(question))
    if plan.draft is not None:
        return None  # answered from the listing or the search: no model draft to check again
    draft = record.get("draft") or ""
    sources = plan.sources
    if plan.shape == "comparison" and plan.side_of:
        lines = [line for line in draft.split("\n") if line.strip()]
        if len(lines) != len(plan.side_of):
            return None
        parts = []
        for (side, n), line in zip(plan.side_of.items(), lines):
            asked = plan.side_questions.get(side) or strip_names(question, [s for s in plan.sides if s != side])
            line = name_the_source(line, sources, default=n)  # as the drafter names a side's paper
            parts.append((line, asked, pipeline.sources_text([s for s in sources if s.n == n])))
        return Prepared(record, plan, parts=parts)
    to_check = name_cited_objects(draft, sources)
    to_check = name_the_source(to_check, sources)
    if plan.shape == "which-paper":
        to_check = name_the_subject(to_check, sources)
    asked = strip_names(question, plan.sides) if plan.sides else question
    if plan.shape == "metadata" and len(listing_fields(question)) > 1:
        asked = ""
    return Prepared(record, plan, draft=to_check, asked=asked)


def check_again(pipeline, critic, prepared: Prepared) -> dict:
    """The prepared record's draft checked by ``critic``: the new answer, verdict and scores."""
    record, plan = prepared.record, prepared.plan
    sources = plan.sources
    if prepared.parts is not None:
        result = critic.check_parts(prepared.parts, sources)
    else:
        text = pipeline.sources_text(sources)
        result = critic.check(prepared.draft, sources, text, question=prepared.asked, shape=plan.shape)
    answer, _ = finish(plan, result, sources)
    new = {**record, "answer": answer, "verdict": result.verdict, "scores": dict(record["scores"])}
    if record["answerable"]:
        correct = metrics.keywords_present(answer, record["keywords"])
    else:
        correct = metrics.refused(answer, result.verdict)
        corrects = record.get("extra", {}).get("corrects") or []
        if corrects and not correct:
            new["scores"]["corrected"] = metrics.corrects_premise(answer, corrects, record["extra"].get("premise") or [])
            correct = new["scores"]["corrected"]
    new["scores"]["correct"] = float(correct)
    return new


def critic_for(pipeline, reread: bool = False, disabled: Iterable[str] = ()):
    """The pipeline's critique without the model judge, with the checks ``disabled`` (and the settings') off."""
    critic = pipeline.critic(judge=False, reread=reread)
    off = frozenset(disabled) | frozenset(pipeline.settings.answer.disabled_checks)
    return dataclasses.replace(critic, disabled=off)  # validated: an unknown name is refused with the known ones


def recheck(pipeline, record: dict, reread: bool = False, disabled: Iterable[str] = ()) -> dict | None:
    """``record``'s draft checked again: the new answer, verdict and scores (None: left as recorded)."""
    prepared = prepare(pipeline, record)
    return None if prepared is None else check_again(pipeline, critic_for(pipeline, reread, disabled), prepared)


def _summary(records: list[dict]) -> dict:
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    badges = [b for b in map(metrics.badge_right, records) if b is not None]
    return {
        "answerable_correct": f"{sum(r['scores']['correct'] for r in answerable):.0f}/{len(answerable)}",
        "unanswerable_withheld": f"{sum(r['scores']['correct'] for r in unanswerable):.0f}/{len(unanswerable)}",
        "badge_precision": round(sum(badges) / len(badges), 3) if badges else None,
        "badged": len(badges),
    }


def _ablation(pipeline, records: list[dict], reread: bool) -> list[tuple[str, dict]]:
    """The records rechecked with every check on, then once per check switched off: (label, summary) rows."""
    prepared = [(r, prepare(pipeline, r)) for r in records]  # planned once: only the critique differs

    def summary(disabled: tuple[str, ...]) -> dict:
        critic = critic_for(pipeline, reread, disabled)  # one critic per row: its sentence vectors are reused
        return _summary([r if p is None else check_again(pipeline, critic, p) for r, p in prepared])

    return [("all on", summary(()))] + [(name, summary((name,))) for name in check_names()]


def _delta(row: dict, base: dict) -> str:
    """How ``row`` differs from ``base``: answerable correct, unanswerable withheld, badge precision."""
    def count(text: str) -> int:
        return int(text.split("/")[0])

    parts = []
    for key, label in (("answerable_correct", "answerable"), ("unanswerable_withheld", "withheld")):
        change = count(row[key]) - count(base[key])
        if change:
            parts.append(f"{change:+d} {label}")
    if row["badge_precision"] is not None and base["badge_precision"] is not None:
        change = row["badge_precision"] - base["badge_precision"]
        if round(change, 3):
            parts.append(f"{change:+.3f} precision")
    return ", ".join(parts) or "="


def print_ablation(rows: list[tuple[str, dict]]) -> None:
    """The ablation as a Markdown table: one row per check switched off, and its difference from all on."""
    base = rows[0][1]
    print("| check off | answerable correct | unanswerable withheld | badge precision | delta vs all on |")
    print("|---|---|---|---|---|")
    for label, row in rows:
        delta = "" if label == "all on" else _delta(row, base)
        figures = f"{row['answerable_correct']} | {row['unanswerable_withheld']} | {row['badge_precision']}"
        print(f"| {label} | {figures} | {delta} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="results.jsonl of a `paperchat eval` run")
    parser.add_argument("--reread", action="store_true", help="also re-read claims with the model (loads it; slower)")
    parser.add_argument("--without", default="", metavar="NAME[,NAME]",
                        help=f"switch these critique checks off (names: {', '.join(check_names())})")
    parser.add_argument("--ablate", action="store_true",
                        help="recheck with every check on, then once per check off; print a table")
    args = parser.parse_args(argv)
    settings = settings_from_env()
    pipeline = build_pipeline(settings, llm=build_llm(settings) if args.reread else NoModel())
    old = [r for r in read_results(Path(args.results)) if r.get("pipeline") == "paperchat" and not r.get("error")]
    if args.ablate:
        print_ablation(_ablation(pipeline, old, args.reread))
        return 0
    without = [name.strip() for name in args.without.split(",") if name.strip()]
    critic_for(pipeline, args.reread, without)  # an unknown name is refused before any record is checked
    new, changed = [], []
    for record in old:
        again = recheck(pipeline, record, args.reread, without) or record
        new.append(again)
        if again["scores"]["correct"] != record["scores"]["correct"] or metrics.badge_right(again) != metrics.badge_right(record):
            changed.append((record, again))
    print(json.dumps({"recorded": _summary(old), "rechecked": _summary(new)}))
    for before, after in changed:
        print(
            f"  {before['id']} {before['type']}: {before['verdict']} {before['scores']['correct']:.0f} -> "
            f"{after['verdict']} {after['scores']['correct']:.0f}"
            f"{' (refusal)' if is_refusal(after['answer']) else ''}: {after['answer'][:160]!r}"
        )
    return 0


def run(argv: list[str] | None = None) -> int:
    """``main`` with a missing index or model file reported as a sentence, not a traceback."""
    return run_tool(main, "recheck", argv)


if __name__ == "__main__":
    raise SystemExit(run())
