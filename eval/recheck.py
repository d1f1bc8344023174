"""The current critique on drafts a model already wrote: an evaluation's records, checked again in seconds.

``python -m paperchat.eval.recheck eval/results/questions-embedded-1.5b-dba86f4/results.jsonl`` takes each
paperchat record, plans its question again (retrieval and evidence are deterministic), checks the
recorded draft with the deterministic critique (no model judge, no re-reading: the model is not loaded;
``--reread`` loads it and re-reads claims as ``paperchat ask`` does) and scores the
new answer like ``paperchat eval``. It prints, as JSON, answerable correct, unanswerable withheld and
badge precision for the recorded answers and for the rechecked ones, then every row whose score or
badge changed. Comparison drafts are split into their sides by line; rows whose sides cannot be
recovered are left as recorded. Use it to measure a critique change on drafts nobody wrote for it,
then confirm with a full ``paperchat eval``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from paperchat.rag.critique import is_refusal
from paperchat.rag.drafting import name_the_subject
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


def recheck(pipeline, record: dict, reread: bool = False) -> dict | None:
    """``record``'s draft checked again: the new answer, verdict and scores (None: left as recorded)."""
    question = record.get("standalone_question") or record["question"]
    plan = pipeline.plan(question, classify(question))
    if plan.draft is not None:
        return None  # answered from the listing or the search: no model draft to check again
    draft = record.get("draft") or ""
    critic = pipeline.critic(judge=False, reread=reread)
    sources = plan.sources
    if plan.shape == "comparison" and plan.side_of:
        lines = [line for line in draft.split("\n") if line.strip()]
        if len(lines) != len(plan.side_of):
            return None
        parts = []
        for (side, n), line in zip(plan.side_of.items(), lines):
            asked = plan.side_questions.get(side) or strip_names(question, [s for s in plan.sides if s != side])
            parts.append((line, asked, pipeline.sources_text([s for s in sources if s.n == n])))
        result = critic.check_parts(parts, sources)
    else:
        to_check = name_the_subject(draft, sources) if plan.shape == "which-paper" else draft
        asked = strip_names(question, plan.sides) if plan.sides else question
        if plan.shape == "metadata" and len(listing_fields(question)) > 1:
            asked = ""
        result = critic.check(to_check, sources, pipeline.sources_text(sources), question=asked, shape=plan.shape)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="results.jsonl of a `paperchat eval` run")
    parser.add_argument("--reread", action="store_true", help="also re-read claims with the model (loads it; slower)")
    args = parser.parse_args(argv)
    settings = settings_from_env()
    pipeline = build_pipeline(settings, llm=build_llm(settings) if args.reread else NoModel())
    old = [r for r in read_results(Path(args.results)) if r.get("pipeline") == "paperchat" and not r.get("error")]
    new, changed = [], []
    for record in old:
        again = recheck(pipeline, record, args.reread) or record
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
