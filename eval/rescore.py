"""Score a recorded evaluation run again with the current metrics, without answering anything again.

    python -m paperchat.eval.rescore eval/results/<run>

When a metric is fixed after a run, the recorded answers are scored again: ``results.jsonl`` keeps
the answers, ``summary.json`` and the reports are rewritten, and the summary the run wrote is kept
as ``summary.recorded.json`` (once). Each record whose score changed is printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import metrics
from .report import write_reports
from .runner import read_results, summarize


def rescored(record: dict) -> dict:
    """``record`` with its ``correct`` (and ``corrected``) score computed again from its answer."""
    scores = dict(record["scores"])
    answer, extra = record.get("answer") or "", record.get("extra") or {}
    if record.get("error"):
        return record
    if record["answerable"]:
        scores["correct"] = float(metrics.keywords_present(answer, record["keywords"]))
    else:
        refused = metrics.refused(answer, record.get("verdict") if record["pipeline"] == "paperchat" else None)
        correct = refused
        if extra.get("corrects"):
            scores["corrected"] = not refused and metrics.corrects_premise(answer, extra["corrects"], extra.get("premise") or [])
            correct = refused or scores["corrected"]
        scores["correct"] = float(correct)
    return {**record, "scores": scores}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run's folder (holding results.jsonl and summary.json)")
    args = parser.parse_args(argv)
    records = read_results(args.run / "results.jsonl")
    summary_path = args.run / "summary.json"
    if not records or not summary_path.exists():
        parser.error(f"{args.run} holds no results.jsonl and summary.json of a `paperchat eval` run")
    summary = json.loads(summary_path.read_text())
    kept = args.run / "summary.recorded.json"
    if not kept.exists():
        kept.write_text(json.dumps(summary, indent=2))
    again = [rescored(r) for r in records]
    for before, after in zip(records, again):
        if before["scores"].get("correct") != after["scores"].get("correct"):
            print(f"  {after['pipeline']} {after['id']} {after['type']}: {before['scores']['correct']:.0f} -> {after['scores']['correct']:.0f}")
    names = list(summary["pipelines"])
    summary["pipelines"] = summarize(again, names)
    summary["rescored"] = "scored again from the recorded answers with the metrics of a later commit"
    summary_path.write_text(json.dumps(summary, indent=2))
    (args.run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in again))
    write_reports(args.run, summary, again, names)
    for name in names:
        o = summary["pipelines"][name]["overall"]
        print(f"{name:12s} accuracy {o['accuracy']}  withheld (unanswerable) {o['unanswerable_withheld']}  badge precision {o['badge_precision']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
