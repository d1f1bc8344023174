"""Write ``eval/RESULTS.md`` from the manifest of cited runs and each run's own ``summary.json``.

``python -m paperchat.eval.results_page`` reads ``eval/results/runs.json`` (one entry per cited run:
set, directory, commit, date, whether it is the set's first run after the set was written, a note)
and writes the page: first runs on untuned sets first, then the current figures per set. The page
is never edited by hand; ``tests/test_results_page.py`` checks that the committed page is what this
command writes.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from paperchat.rag.errors import EvalInputError

from .runner import run_tool

COMMAND = "python -m paperchat.eval.results_page"
MANIFEST = Path("eval/results/runs.json")
PAGE = Path("eval/RESULTS.md")
FIELDS = ("set", "dir", "commit", "date", "first_untuned", "note")

# (summary key, column label); a rate is shown with three decimals, seconds with one.
COLUMNS = (
    ("accuracy", "answerable correct"),
    ("unanswerable_withheld", "unanswerable withheld"),
    ("badge_precision", "badge precision"),
    ("citation_precision", "citation precision"),
    ("reworded_false_alarm_rate", "false alarm on reworded"),
    ("first_token_p50", "first token p50 s"),
    ("total_p50", "total p50 s"),
    ("total_p95", "total p95 s"),
)
SECONDS = {"first_token_p50", "total_p50", "total_p95"}

INTRO = (
    "Figures of the embedded Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, llama.cpp on 2 CPU cores, no GPU). "
    "The machine's speed changed between runs, so timings compare only within one run (its pipelines "
    "share it). **no-critique** is scored from paperchat's own drafts; **baseline** is llama-index's stock "
    "query engine over the same index and model, and shows no badge: its \"badge precision\" is the share "
    "of its non-refusal answers that are right. How the sets, metrics and protocol work: "
    "[docs/evaluation.md](../docs/evaluation.md)."
)
FIRST_RUNS = (
    "A set's first run after it was written is the figure to expect on questions nobody tuned for: its "
    "failures were read and fixed afterwards, so later runs on the same set are no longer independent."
)


def load_manifest(path: Path) -> list[dict]:
    """The cited runs, each entry checked for the fields the page needs."""
    try:
        runs = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalInputError(f"The run manifest {path} does not exist. Run this from the repository root, "
                             "or pass --manifest with the path of runs.json.") from None
    except json.JSONDecodeError as err:
        raise EvalInputError(f"The run manifest {path} is not valid JSON ({err.msg}, line {err.lineno}). "
                             "Fix the file and run the command again.") from None
    if not isinstance(runs, list):
        raise EvalInputError(f"The run manifest {path} must be a JSON list of runs; it holds a {type(runs).__name__}.")
    for i, run in enumerate(runs):
        missing = [f for f in FIELDS if not isinstance(run, dict) or f not in run]
        if missing:
            raise EvalInputError(f"Run {i + 1} of {path} lacks {', '.join(missing)}. "
                                 f"Every run needs: {', '.join(FIELDS)}.")
    return runs


def load_summary(results: Path, run: dict) -> dict:
    """The run's own ``summary.json`` (written by ``paperchat eval --out``)."""
    path = results / run["dir"] / "summary.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalInputError(f"The run {run['dir']} has no summary.json at {path}. Cite a folder written by "
                             "`paperchat eval ... --out`, or remove the run from the manifest.") from None


def _cell(key: str, value) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if key in SECONDS else f"{value:.3f}"


def _row(prefix: Sequence[str], overall: dict) -> str:
    return "| " + " | ".join([*prefix, *(_cell(k, overall.get(k)) for k, _ in COLUMNS)]) + " |"


def _header(prefix: Sequence[str]) -> list[str]:
    labels = [*prefix, *(label for _, label in COLUMNS)]
    return ["| " + " | ".join(labels) + " |", "|" + "---|" * len(labels)]


def first_runs_section(runs: Sequence[dict], summaries: dict[str, dict]) -> list[str]:
    """One row per set's first untuned run, oldest first, for every pipeline of that run."""
    lines = ["## First runs on untuned sets", "", FIRST_RUNS, "", *_header(["set", "run (commit, date)", "pipeline"])]
    for run in sorted((r for r in runs if r["first_untuned"]), key=lambda r: r["date"]):
        for name, metrics in summaries[run["dir"]]["pipelines"].items():
            where = f"`{run['dir']}/` ({run['commit']}, {run['date']})"
            lines.append(_row([run["set"], where, name], metrics["overall"]))
    return lines


def set_section(name: str, runs: Sequence[dict], summaries: dict[str, dict]) -> list[str]:
    """The set's newest cited run: its note and one row per pipeline."""
    run = max(runs, key=lambda r: r["date"])
    summary = summaries[run["dir"]]
    lines = [f"### {name} (`{summary['questions_file']}`, {summary['questions']} questions)", "",
             f"`{run['dir']}/` at {run['commit']}, {run['date']}, model {summary['model']} "
             f"({summary['backend']}): {run['note']}", "", *_header(["pipeline"])]
    lines += [_row([p], m["overall"]) for p, m in summary["pipelines"].items()]
    return [*lines, ""]


def render(runs: Sequence[dict], summaries: dict[str, dict]) -> str:
    """The whole page, from the manifest's runs and their summaries (keyed by directory)."""
    lines = ["# paperchat evaluation results", "",
             f"Generated by `{COMMAND}` from `{MANIFEST}` and each cited run's `summary.json`; "
             "do not edit by hand. Each run's own `report.md` (by question type, planted errors) is in its folder.",
             "", INTRO, "", *first_runs_section(runs, summaries), "", "## Current figures per set", ""]
    for name in dict.fromkeys(r["set"] for r in runs):
        lines += set_section(name, [r for r in runs if r["set"] == name], summaries)
    return "\n".join(lines).rstrip("\n") + "\n"


def build(manifest: Path) -> str:
    """Read the manifest and the runs it cites; return the page."""
    runs = load_manifest(manifest)
    summaries = {r["dir"]: load_summary(manifest.parent, r) for r in runs}
    return render(runs, summaries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help="runs.json listing the cited runs")
    parser.add_argument("--out", type=Path, default=PAGE, help="page to write")
    args = parser.parse_args(argv)
    args.out.write_text(build(args.manifest), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


def run(argv: list[str] | None = None) -> int:
    """``main`` with a bad manifest reported as a sentence, not a traceback."""
    return run_tool(main, "results_page", argv)


if __name__ == "__main__":
    raise SystemExit(run())
