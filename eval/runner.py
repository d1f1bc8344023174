"""``paperchat eval``: run a question set through several pipelines and score them side by side.

Every (question, pipeline) result is appended to ``results.jsonl`` as soon as it is
done, so a crash keeps what was finished and a re-run skips it. ``summary.json``,
``report.md`` and ``report.html`` are rewritten at the end from all results.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rag.corpus import normalize_text
from rag.critique import Critic
from rag.errors import EvalInputError, PaperchatError
from rag.pipeline import Answer, Pipeline
from rag.settings import Settings

from . import metrics
from .planted import flagged, plant
from .questions import Problem, QuestionRow, load_questions

log = logging.getLogger(__name__)

PIPELINES = ("paperchat", "no-critique", "baseline")


def read_results(path: Path) -> list[dict]:
    """Records already in ``results.jsonl``; a torn last line (a crash mid-write) is ignored."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").split("\n"):  # not splitlines(): U+2028 may sit inside a record
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def score(row: QuestionRow, answer: Answer, retrieved: Sequence[str]) -> dict:
    """The scores of one answer."""
    cited = [c.title for c in answer.citations]
    if row.answerable:
        correct = metrics.keywords_present(answer.answer, row.keywords)
    else:
        correct = metrics.refused(answer.answer, answer.verdict if answer.pipeline == "paperchat" else None)
    return {
        "correct": float(correct),
        "recall@1": metrics.recall_at(retrieved, row.papers, 1),
        "recall@5": metrics.recall_at(retrieved, row.papers, 5),
        "citation_precision": metrics.citation_precision(cited, row.papers) if row.answerable else None,
    }


def planted_checks(pipeline: Pipeline, row: QuestionRow, critic: Critic) -> list[dict]:
    """Run the critique on wrong variants of the reference answer (answerable rows with their paper retrieved)."""
    if not row.answerable or not row.answer:
        return []
    hits = pipeline.retriever.search(row.question, k=pipeline.settings.answer.sources)
    sources = pipeline.evidence(row.question, hits)
    want = {normalize_text(t) for t in row.papers}
    true = [s.n for s in sources if normalize_text(s.paper.title) in want]
    if not true:
        return []
    other = next((s.n for s in sources if s.n not in true), None)
    text = pipeline.sources_text(sources)
    out = []
    for planted in plant(row.answer, row.id, true[0], other):
        critique = critic.check(planted.text, sources, text, question=row.question)
        out.append(
            {"kind": planted.kind, "must_flag": planted.must_flag, "flagged": flagged(planted, critique),
             "text": planted.text, "verdicts": [c.verdict for c in critique.claims]}
        )
    return out


class Runner:
    """Drives the pipelines over a question set and writes the results."""

    def __init__(self, settings: Settings, pipelines: dict[str, object], out: Path, *, planted: bool = True):
        self.settings = settings
        self.pipelines = pipelines
        self.out = Path(out)
        self.planted = planted

    def run(self, rows: Sequence[QuestionRow], progress: Callable[[int, int, str], None] | None = None) -> list[dict]:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "results.jsonl"
        records = [r for r in read_results(path) if not r.get("error")]  # failed rows are tried again
        done = {(r["id"], r["pipeline"]) for r in records}
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            with open(path, "a", encoding="utf-8") as fh:
                fh.write("\n")  # a crash tore the last line: start the next record on a fresh one
        # pipeline by pipeline: a pipeline must not find the next one's prompt already in the model's cache
        todo = [(row, name) for name in self.pipelines for row in rows if (row.id, name) not in done]
        total = len(rows) * len(self.pipelines)
        finished = total - len(todo)
        with open(path, "a", encoding="utf-8") as fh:
            for row, name in todo:
                record = self._one(row, name)
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                fh.flush()
                records.append(record)
                finished += 1
                if progress:
                    progress(finished, total, f"{name}:{row.id}")
        wanted = {row.id for row in rows}
        return [r for r in records if r["id"] in wanted and r["pipeline"] in self.pipelines]

    def _one(self, row: QuestionRow, name: str) -> dict:
        pipeline = self.pipelines[name]
        record = {
            "id": row.id, "pipeline": name, "question": row.question, "type": row.type,
            "answerable": row.answerable, "keywords": row.keywords, "papers": row.papers, "extra": row.extra,
        }
        started = time.perf_counter()
        try:
            answer: Answer = pipeline.ask(row.question)
            if name == "baseline":
                retrieved = pipeline.retrieve_titles(row.question, 5)
            else:
                retrieved = [h.paper.title for h in pipeline.retriever.search(answer.standalone_question, k=5)]
            record.update(
                answer=answer.answer, draft=answer.draft, verdict=answer.verdict,
                citations=[c.title for c in answer.citations], retrieved=retrieved,
                claims=[c.model_dump(include={"text", "verdict", "sources", "reasons"}) for c in answer.claims],
                timings=answer.timings.model_dump(), scores=score(row, answer, retrieved),
                backend=answer.backend, model=answer.model,
            )
            if self.planted and name == "paperchat":
                judge = pipeline.llm if self.settings.answer.model_judge else None
                record["planted"] = planted_checks(pipeline, row, Critic(judge, layout=pipeline.layout))
        except PaperchatError as err:
            record.update(error=str(err), timings={"total": time.perf_counter() - started},
                          scores={"correct": 0.0, "recall@1": None, "recall@5": None, "citation_precision": None})
        return record


def summarize(records: Sequence[dict], pipelines: Sequence[str]) -> dict:
    """Metrics per pipeline, overall and by question type."""
    return {
        name: {
            "overall": metrics.summarize([r for r in records if r["pipeline"] == name]),
            "by_type": metrics.by_type([r for r in records if r["pipeline"] == name]),
        }
        for name in pipelines
    }


def parse_fail_under(specs: Sequence[str]) -> dict[str, float]:
    """``["accuracy=0.8"]`` -> ``{"accuracy": 0.8}`` (raises EvalInputError on a bad spec).

    >>> parse_fail_under(["accuracy=0.8", "recall@5=0.9"])
    {'accuracy': 0.8, 'recall@5': 0.9}
    """
    out = {}
    for spec in specs:
        name, _, value = spec.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not name.strip() or number != number:
            raise EvalInputError(f"--fail-under takes METRIC=NUMBER, e.g. accuracy=0.8, not {spec!r}.")
        out[name.strip()] = number
    return out


def gate(summary: dict, thresholds: dict[str, float], pipeline: str = "paperchat") -> list[str]:
    """Metrics of ``pipeline`` below their thresholds, as sentences."""
    overall = summary.get(pipeline, {}).get("overall", {})
    failures = []
    for name, minimum in thresholds.items():
        if not name or name not in overall:
            failures.append(f"unknown metric '{name}' (known: {', '.join(k for k in overall if not isinstance(overall[k], dict))})")
            continue
        value = overall[name]
        if value is None or value < minimum:
            failures.append(f"{pipeline} {name} = {value} is below {minimum}")
    return failures


def build_pipelines(settings: Settings, names: Sequence[str]) -> dict[str, object]:
    """The named pipelines over one index and one model."""
    from rag.services import build_llm, build_retriever

    from .baseline import BaselinePipeline

    unknown = [n for n in names if n not in PIPELINES]
    if unknown:
        raise EvalInputError(f"Unknown pipeline(s) {', '.join(unknown)}; choose from {', '.join(PIPELINES)}.")
    retriever = build_retriever(settings)
    retriever.snapshot()  # fail early, with a clear message, if there is no index
    llm = build_llm(settings)
    out: dict[str, object] = {}
    for name in names:
        if name == "baseline":
            out[name] = BaselinePipeline(retriever, llm, settings.answer.max_question_chars)
        else:
            out[name] = Pipeline(settings, retriever, llm, critique=(name == "paperchat"))
    return out


def main(args) -> int:
    """Entry point of ``paperchat eval`` (``args`` from the CLI parser)."""
    from tqdm import tqdm

    from .report import write_reports

    settings = Settings(**({"data_dir": args.data_dir} if getattr(args, "data_dir", None) else {}))
    rows, problems = load_questions(Path(args.questions))
    for problem in problems:
        print(f"skipped {args.questions} {problem}", file=sys.stderr)
    if args.limit:
        rows = rows[: args.limit]
    names = [n.strip() for n in args.pipelines.split(",") if n.strip()]
    thresholds = parse_fail_under(args.fail_under or [])
    out = Path(args.out)
    started = time.perf_counter()
    pipelines = build_pipelines(settings, names)
    bar = tqdm(total=len(rows) * len(names), desc="evaluating", unit="answer", file=sys.stderr)

    def progress(done: int, total: int, label: str) -> None:
        bar.n = done
        bar.set_postfix_str(label)
        bar.refresh()

    records = Runner(settings, pipelines, out, planted=not args.no_planted).run(rows, progress)
    bar.close()
    summary = {
        "questions_file": str(args.questions),
        "questions": len(rows),
        "skipped_rows": [str(p) for p in problems],
        "pipelines": summarize(records, names),
        "model": next((r.get("model") for r in records if r.get("model")), ""),
        "backend": next((r.get("backend") for r in records if r.get("backend")), ""),
        "wall_seconds_this_run": round(time.perf_counter() - started, 1),
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_reports(out, summary, records, names)
    for name in names:
        o = summary["pipelines"][name]["overall"]
        print(
            f"{name:12s} accuracy {o['accuracy']}  refusal {o['refusal_accuracy']}  recall@5 {o['recall@5']}  "
            f"citation precision {o['citation_precision']}  total p50 {o['total_p50']} s"
        )
    print(f"results in {out}/ (report.html, report.md, summary.json, results.jsonl)")
    failures = gate(summary["pipelines"], thresholds, "paperchat" if "paperchat" in names else names[0])
    for failure in failures:
        print(f"fail-under: {failure}", file=sys.stderr)
    return 1 if failures else 0


__all__ = ["Problem", "Runner", "main", "read_results", "score", "summarize"]
