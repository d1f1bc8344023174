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

from paperchat.rag.answer import Answer, Citation, Timings
from paperchat.rag.corpus import normalize_text
from paperchat.rag.critique import Critic, Source, no_critique
from paperchat.rag.errors import EvalInputError, PaperchatError
from paperchat.rag.finish import citations, finish
from paperchat.rag.pipeline import Pipeline
from paperchat.rag.shapes import classify
from paperchat.rag.settings import Settings
from paperchat.rag.text import split_sentences

from . import metrics
from .pipelines import BUILDERS, as_eval
from .planted import REWORDED_FIELDS, Planted, flagged, plant
from .questions import Problem, QuestionRow, load_questions

log = logging.getLogger(__name__)

PIPELINES = tuple(BUILDERS)


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
    """The scores of one answer.

    An unanswerable row is answered right by a refusal, a withheld answer (paperchat's "not
    supported"), or, for a false-premise row with ``corrects``, by stating the true fact with the
    false one only denied (``metrics.corrects_premise``; ``corrected`` says which).
    """
    cited = [c.title for c in answer.citations]
    corrected = None
    if row.answerable:
        correct = metrics.keywords_present(answer.answer, row.keywords)
    else:
        correct = metrics.refused(answer.answer, answer.verdict if answer.pipeline == "paperchat" else None)
        corrects = row.extra.get("corrects") or []
        if corrects:
            corrected = not correct and metrics.corrects_premise(answer.answer, corrects, row.extra.get("premise") or [])
            correct = correct or corrected
    scores = {
        "correct": float(correct),
        "recall@1": metrics.recall_at(retrieved, row.papers, 1),
        "recall@5": metrics.recall_at(retrieved, row.papers, 5),
        "citation_precision": metrics.citation_precision(cited, row.papers) if row.answerable else None,
    }
    if corrected is not None:
        scores["corrected"] = corrected  # a false-premise row answered with the true fact
    return scores


def planted_checks(pipeline: Pipeline, row: QuestionRow, critic: Critic) -> list[dict]:
    """Run the critique on the planted variants of the row's reference answer, and on its reworded
    and terse correct answers (answerable rows whose answer the model drafts: :func:`model_drafted`; see
    ``reworded_checks``)."""
    if not row.answerable or not model_drafted(pipeline, row):
        return []
    return _generated_checks(pipeline, row, critic) + reworded_checks(pipeline, row, critic)


def model_drafted(pipeline: Pipeline, row: QuestionRow) -> bool:
    """Whether paperchat has the model draft the row's answer: a listing fact or a list is written from the records
    and the abstracts' own sentences, and no model-written claim of it ever reaches the critique's re-reading."""
    return pipeline.plan(row.question, classify(row.question)).draft is None


def _generated_checks(pipeline: Pipeline, row: QuestionRow, critic: Critic) -> list[dict]:
    """Wrong variants of the reference answer, against the sources the pipeline retrieves (rows with their paper
    retrieved)."""
    if not row.answer or len(row.papers) > 1:
        # the generator cites one paper; answers drawn from several are checked through `reworded` instead
        return []
    hits = pipeline.retriever.search(row.question, k=pipeline.settings.answer.sources)
    sources = pipeline.evidence(row.question, hits)
    want = {normalize_text(t) for t in row.papers}
    true = [s.n for s in sources if normalize_text(s.paper.title) in want]
    if not true:
        return []
    other = next((s.n for s in sources if s.n not in true), None)
    text = pipeline.sources_text(sources)
    return [_check(critic, planted, sources, text, row.question) for planted in plant(row.answer, row.id, true[0], other)]


def expected_sources(pipeline: Pipeline, row: QuestionRow) -> list[Source] | None:
    """The row's papers, taken from the index by title, as sources [1], [2], ... in the order of
    ``papers``, each with its whole abstract as the excerpt; None when one is not in the index."""
    by_title = {normalize_text(p.title): p for p in pipeline.retriever.papers()}
    papers = [by_title.get(normalize_text(t)) for t in row.papers]
    if not papers or any(p is None for p in papers):
        return None
    return [Source(n=i, paper=p, excerpt=split_sentences(p.abstract)) for i, p in enumerate(papers, start=1)]


def reworded_checks(pipeline: Pipeline, row: QuestionRow, critic: Critic) -> list[dict]:
    """The row's correct answers in other words (``reworded``, ``terse``), checked against its own papers.

    Anything the critique removes from them is a false alarm: they are right and cite the right paper.
    """
    texts = [(kind, row.extra.get(kind)) for kind in REWORDED_FIELDS]
    texts = [(kind, t) for kind, t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        return []
    sources = expected_sources(pipeline, row)
    if sources is None:
        log.warning("%s: a paper of the row is not in the index; its reworded answers are not checked", row.id)
        return []
    text = pipeline.sources_text(sources)
    return [
        _check(critic, Planted(kind, t.strip(), 1, 1), sources, text, row.question) for kind, t in texts
    ]


def _check(critic: Critic, planted: Planted, sources: Sequence[Source], text: str, question: str) -> dict:
    # the answer is checked as the pipeline checks an answer to this shape of question ("DreamTuner [1]." answers
    # a which-paper question)
    critique = critic.check(planted.text, sources, text, question=question, shape=classify(question).shape)
    return {
        "kind": planted.kind, "must_flag": planted.must_flag, "flagged": flagged(planted, critique),
        "text": planted.text, "verdicts": [c.verdict for c in critique.claims], "answer": critique.answer,
        "reasons": [r for c in critique.claims if c.verdict == "unsupported" for r in c.reasons],
    }


def same_draft(paperchat: object, plain: object) -> bool:
    """Whether the two pipelines draft alike (same index, model, prompt layout, evidence and settings),
    so that paperchat's draft is the no-critique pipeline's."""
    return (
        isinstance(paperchat, Pipeline) and isinstance(plain, Pipeline) and paperchat.critique and not plain.critique
        and paperchat.retriever is plain.retriever and paperchat.llm is plain.llm and paperchat.layout == plain.layout
        and paperchat.evidence_sentences == plain.evidence_sentences and paperchat.settings == plain.settings
    )


def answer_from_record(record: dict) -> Answer:
    """The parts of paperchat's Answer that a result record keeps (enough for ``derive_no_critique``)."""
    numbers = record.get("citation_numbers") or []
    return Answer(
        question=record["question"], standalone_question=record.get("standalone_question") or record["question"],
        answer=record["answer"], verdict=record["verdict"], draft=record["draft"], claims=[],
        citations=[Citation(n=n, title=t, paper_id="", abstract="") for n, t in zip(numbers, record["citations"])],
        timings=Timings(**record["timings"]), backend=record.get("backend", ""), model=record.get("model", ""),
    )


def derive_no_critique(pipeline: Pipeline, answer: Answer) -> Answer | None:
    """What the no-critique pipeline shows for ``answer``'s question, made from paperchat's own draft.

    The no-critique pipeline is paperchat up to the draft (same retrieval, evidence, prompt,
    temperature and seed), then ``no_critique(draft, sources)``. The sources are found again the
    way ``Pipeline.run`` found them (deterministic); if paperchat's citations do not match them,
    the derivation is refused (None) and the caller drafts again.
    """
    plan = pipeline.plan(answer.standalone_question, classify(answer.standalone_question))
    sources = plan.sources
    by_n = {s.n: normalize_text(s.paper.title) for s in sources}
    if any(by_n.get(c.n) != normalize_text(c.title) for c in answer.citations):
        return None
    result = no_critique(answer.draft, sources)
    if plan.refusal:
        result.verdict = "refused"
    text, rows = finish(plan, result, sources)
    timings = answer.timings.model_copy(
        update={"critique": 0.0, "critique_prompt_tokens": 0, "critique_cached_tokens": 0,
                "total": round(max(0.0, answer.timings.total - answer.timings.critique), 3)}
    )
    return answer.model_copy(
        update={"answer": text, "verdict": result.verdict, "citations": citations(result, sources),
                "claims": result.claims, "removed": 0, "timings": timings, "pipeline": "no-critique", "rows": rows}
    )


class Runner:
    """Drives the pipelines over a question set and writes the results.

    With ``derive_no_critique`` (the default) and both paperchat and no-critique asked for, the
    no-critique record of a question is made from paperchat's own draft (``derive_no_critique``)
    instead of drafting again, and says so (``"derived_from": "paperchat"``); its timings are
    paperchat's without the critique.
    """

    def __init__(
        self, settings: Settings, pipelines: dict[str, object], out: Path, *, planted: bool = True,
        derive_no_critique: bool = True,
    ):
        self.settings = settings
        self.pipelines = pipelines
        self.out = Path(out)
        self.planted = planted
        self.derive = derive_no_critique and same_draft(pipelines.get("paperchat"), pipelines.get("no-critique"))

    def run(self, rows: Sequence[QuestionRow], progress: Callable[[int, int, str], None] | None = None) -> list[dict]:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "results.jsonl"
        records = [r for r in read_results(path) if not r.get("error")]  # failed rows are tried again
        done = {(r["id"], r["pipeline"]) for r in records}
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            with open(path, "a", encoding="utf-8") as fh:
                fh.write("\n")  # a crash tore the last line: start the next record on a fresh one
        # pipeline by pipeline: a pipeline must not find the next one's prompt already in the model's cache
        order = list(self.pipelines)
        if self.derive:  # paperchat first: its drafts give the no-critique records
            order = ["paperchat", "no-critique"] + [n for n in order if n not in ("paperchat", "no-critique")]
        todo = [(row, name) for name in order for row in rows if (row.id, name) not in done]
        total = len(rows) * len(self.pipelines)
        finished = total - len(todo)
        with open(path, "a", encoding="utf-8") as fh:

            def keep(record: dict) -> None:
                nonlocal finished
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                fh.flush()
                records.append(record)
                finished += 1
                if progress:
                    progress(finished, total, f"{record['pipeline']}:{record['id']}")

            for row, name in todo:
                if self.derive and name == "no-critique":
                    derived = self._derived(row, records)
                    if derived is not None:
                        keep(derived)
                        continue
                keep(self._one(row, name))
        wanted = {row.id for row in rows}
        return [r for r in records if r["id"] in wanted and r["pipeline"] in self.pipelines]

    def _derived(self, row: QuestionRow, records: Sequence[dict]) -> dict | None:
        """The no-critique record of ``row`` made from paperchat's record of it (None: draft anew)."""
        source = next((r for r in records if r["id"] == row.id and r["pipeline"] == "paperchat" and not r.get("error")), None)
        if source is None:
            return None
        derived = derive_no_critique(self.pipelines["paperchat"], answer_from_record(source))
        if derived is None:
            log.warning("%s: paperchat's sources could not be found again; no-critique drafts anew", row.id)
            return None
        return self._record(row, "no-critique", derived, source["retrieved"], derived_from="paperchat")

    def _base(self, row: QuestionRow, name: str) -> dict:
        return {
            "id": row.id, "pipeline": name, "question": row.question, "type": row.type,
            "answerable": row.answerable, "keywords": row.keywords, "papers": row.papers, "extra": row.extra,
        }

    def _record(self, row: QuestionRow, name: str, answer: Answer, retrieved: list[str], derived_from: str | None = None) -> dict:
        record = self._base(row, name)
        record.update(
            answer=answer.answer, draft=answer.draft, verdict=answer.verdict, standalone_question=answer.standalone_question,
            citations=[c.title for c in answer.citations], citation_numbers=[c.n for c in answer.citations], retrieved=retrieved,
            claims=[c.model_dump(include={"text", "verdict", "sources", "reasons"}) for c in answer.claims],
            timings=answer.timings.model_dump(), scores=score(row, answer, retrieved),
            backend=answer.backend, model=answer.model,
        )
        if derived_from:
            record["derived_from"] = derived_from
        return record

    def _one(self, row: QuestionRow, name: str) -> dict:
        run = as_eval(self.pipelines[name])
        started = time.perf_counter()
        try:
            answer: Answer = run.ask(row.question, row.history) if row.history else run.ask(row.question)
            retrieved = run.retrieved_titles(row.question, answer, 5)
            record = self._record(row, name, answer, retrieved)
            pipeline = run.critiqued
            if self.planted and pipeline is not None:
                record["planted"] = planted_checks(pipeline, row, pipeline.critic())
        except PaperchatError as err:
            record = self._base(row, name)
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
    """The named pipelines (see :data:`paperchat.eval.pipelines.BUILDERS`) over one index and one model."""
    from paperchat.rag.services import build_llm, build_retriever

    unknown = [n for n in names if n not in PIPELINES]
    if unknown:
        raise EvalInputError(f"Unknown pipeline(s) {', '.join(unknown)}; choose from {', '.join(PIPELINES)}.")
    retriever = build_retriever(settings)
    retriever.snapshot()  # fail early, with a clear message, if there is no index
    llm = build_llm(settings)
    return {name: BUILDERS[name](settings, retriever, llm) for name in names}


def main(args) -> int:
    """Entry point of ``paperchat eval`` (``args`` from the CLI parser)."""
    from tqdm import tqdm

    from .report import write_reports

    from paperchat.rag.services import settings_from_env

    settings = settings_from_env(getattr(args, "data_dir", None))
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

    derive = not getattr(args, "redraft_no_critique", False)
    records = Runner(settings, pipelines, out, planted=not args.no_planted, derive_no_critique=derive).run(rows, progress)
    bar.close()
    summary = {
        "questions_file": str(args.questions),
        "questions": len(rows),
        "skipped_rows": [str(p) for p in problems],
        "pipelines": summarize(records, names),
        "derived": {name: src for name, src in {r["pipeline"]: r.get("derived_from") for r in records}.items() if src},
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
            f"{name:12s} accuracy {o['accuracy']}  withheld (unanswerable) {o['unanswerable_withheld']}  "
            f"badge precision {o['badge_precision']}  recall@5 {o['recall@5']}  "
            f"citation precision {o['citation_precision']}  total p50 {o['total_p50']} s"
        )
    reworded = summary["pipelines"].get("paperchat", {}).get("overall", {}).get("reworded_false_alarm_rate")
    if reworded is not None:
        print(f"critique false alarms on reworded correct answers: {reworded}")
    for name, src in summary["derived"].items():
        print(f"{name} was scored from {src}'s drafts (not drafted again; --redraft-no-critique to draft it)")
    print(f"results in {out}/ (report.html, report.md, summary.json, results.jsonl)")
    failures = gate(summary["pipelines"], thresholds, "paperchat" if "paperchat" in names else names[0])
    for failure in failures:
        print(f"fail-under: {failure}", file=sys.stderr)
    return 1 if failures else 0


__all__ = ["Problem", "Runner", "main", "read_results", "score", "summarize"]


def run_tool(main: Callable[[list[str] | None], int], name: str, argv: list[str] | None = None) -> int:
    """Run an eval tool's ``main``, a missing index or model file reported as a sentence, not a traceback."""
    try:
        return main(argv)
    except PaperchatError as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 2
