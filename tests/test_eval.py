"""The evaluation harness: scoring, question sets, the resumable runner, reports, the gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paperchat.eval import metrics
from paperchat.eval.pipelines import BUILDERS, as_eval
from paperchat.eval.questions import load_questions
from paperchat.eval.report import COLUMNS, write_reports
from paperchat.eval.runner import PIPELINES, Runner, build_pipelines, gate, parse_fail_under, read_results, summarize
from paperchat.rag import prompts
from paperchat.rag.errors import EvalInputError, ModelUnavailableError
from paperchat.rag.retrieval import Retriever

from .fakes import SPARK, SSR, ScriptedLLM, copying_reply, load_rows, make_pipelines, scripted

# Three questions: two answerable ones whose answers are in the seed abstracts, one that is not.
QUESTIONS = [
    {
        "id": "spark-f1", "question": "What F1 score does SPARK's process reward model reach on ProcessBench?",
        "answer": "It reaches 67.5 F1 on ProcessBench, compared with 66.4 for reference-guided training and 61.9 for GPT-4o.",
        "keywords": ["67.5"], "papers": [SPARK], "answerable": True, "type": "factoid", "difficulty": "easy",
    },
    {
        "id": "ssr-data", "question": "How many monolingual training examples were used to train SSR-Zero-7B?",
        "answer": "SSR-Zero-7B was trained with 13K monolingual examples.",
        "keywords": ["13K"], "papers": [SSR], "answerable": True, "type": "factoid",
    },
    {
        "id": "no-answer", "question": "What learning rate did SPARK use?",
        "answer": "", "keywords": [], "papers": [SPARK], "answerable": False, "type": "unanswerable",
    },
]


@pytest.fixture
def question_rows(tmp_path):
    return load_rows(tmp_path / "questions.jsonl", QUESTIONS)


# -- scoring --------------------------------------------------------------------------------


def test_keywords_present_needs_every_keyword_in_any_case():
    answer = "SPARK reaches 67.5 F1 on ProcessBench [1]."
    assert metrics.keywords_present(answer, ["67.5", "processbench"])
    assert metrics.keywords_present(answer, ["PROCESSBENCH"])
    assert not metrics.keywords_present(answer, ["67.5", "66.4"])
    assert not metrics.keywords_present("SPARK does well.", ["67.5"])
    assert metrics.keywords_present(answer, [])  # nothing asked, nothing missing


def test_refused_reads_refusal_sentences_and_verdicts():
    assert metrics.refused(prompts.REFUSAL)
    assert metrics.refused(f"{prompts.REFUSAL} {prompts.WITHHELD}")
    assert metrics.refused("The abstracts do not mention the learning rate.")
    assert metrics.refused("   ")
    assert metrics.refused("SPELL uses self-play [1].", verdict="not supported")
    assert metrics.refused("SPELL uses self-play [1].", verdict="refused")
    assert not metrics.refused("SPELL uses self-play [1].")
    assert not metrics.refused("SPELL uses self-play [1].", verdict="partially supported")
    assert not metrics.refused("SPELL uses self-play [1].", verdict="supported")


def test_recall_at_compares_titles_loosely_within_k():
    retrieved = ["Paper A", "Paper  B", "Paper C"]
    assert metrics.recall_at(retrieved, ["paper c", "PAPER A"], 1) == 0.5
    assert metrics.recall_at(retrieved, ["paper c", "PAPER A"], 2) == 0.5
    assert metrics.recall_at(retrieved, ["paper c", "PAPER A"], 3) == 1.0
    assert metrics.recall_at(retrieved, ["paper b"], 5) == 1.0  # whitespace folded
    assert metrics.recall_at(retrieved, ["Paper Z"], 5) == 0.0
    assert metrics.recall_at(retrieved, [], 5) is None


def test_citation_precision_is_the_share_of_citations_that_are_expected():
    assert metrics.citation_precision(["A", "B", "C", "D"], ["a", "c"]) == 0.5
    assert metrics.citation_precision(["A"], ["a", "b"]) == 1.0
    assert metrics.citation_precision(["B", "C", "D"], ["a"]) == 0.0
    assert metrics.citation_precision([], ["a"]) is None
    assert metrics.citation_precision(["A"], []) is None


def test_percentile_skips_missing_values():
    assert metrics.percentile([1, 2, 3, None, 4], 50) == 2.5
    assert metrics.percentile([1, 2, 3, None, 4], 95) == 3.85  # 3 + 0.85 * (4 - 3), linear interpolation
    assert metrics.percentile([4, 1, 3, 2], 0) == 1.0
    assert metrics.percentile([4, 1, 3, 2], 100) == 4.0
    assert metrics.percentile([None, None], 50) is None
    assert metrics.percentile([], 50) is None


def _record(rid, answerable, correct, r1, r5, cp, timings, type_, planted=(), error=None):
    rec = {
        "id": rid, "pipeline": "paperchat", "question": f"question {rid}", "answerable": answerable, "type": type_,
        "scores": {"correct": correct, "recall@1": r1, "recall@5": r5, "citation_precision": cp},
        "timings": timings, "planted": [{"kind": k, "must_flag": k != "correct", "flagged": f} for k, f in planted],
    }
    if error:
        rec["error"] = error
    return rec


HAND_RECORDS = [
    _record("r1", True, 1.0, 1.0, 1.0, 1.0, {"first_token": 0.5, "total": 2.0, "tokens_per_second": 10.0}, "factoid",
            [("correct", False), ("number", True), ("invented", False)]),
    _record("r2", True, 0.0, 0.0, 1.0, 0.5, {"first_token": 1.5, "total": 4.0, "tokens_per_second": 20.0}, "factoid",
            [("correct", True), ("number", True)]),
    _record("r3", False, 1.0, None, None, None, {"first_token": 1.0, "total": 3.0, "tokens_per_second": 0.0}, "refusal"),
    _record("r4", False, 1.0, None, None, None, {"first_token": None, "total": 1.0, "tokens_per_second": 30.0}, "refusal"),
    _record("r5", True, 0.0, None, None, None, {"total": 9.0}, "factoid", error="The model timed out."),
]


def test_summarize_hand_made_records():
    s = metrics.summarize(HAND_RECORDS)
    assert s["questions"] == 5 and s["errors"] == 1  # the error record counts as a question, not in the rates
    assert s["accuracy"] == 0.5  # answerable, no error: r1 (1) and r2 (0)
    assert s["refusal_accuracy"] == 1.0  # r3, r4
    assert s["overall_accuracy"] == 0.75  # 3 correct of 4 finished
    assert s["recall@1"] == 0.5 and s["recall@5"] == 1.0
    assert s["citation_precision"] == 0.75  # (1.0 + 0.5) / 2
    assert s["critique_catch_rate"] == 0.6667  # must-flag: r1 number (yes), r1 invented (no), r2 number (yes)
    assert s["critique_false_alarm_rate"] == 0.5  # correct variants: r1 (kept), r2 (flagged)
    assert s["catch_rate_by_kind"] == {"invented": 0.0, "number": 1.0}
    assert s["first_token_p50"] == 1.0  # of 0.5, 1.5, 1.0 (r4 has none, r5 failed)
    assert s["first_token_p95"] == 1.45  # 1.0 + 0.9 * 0.5
    assert s["total_p50"] == 2.5  # of 2, 4, 3, 1: the failed r5's 9 s is left out
    assert s["total_p95"] == 3.85
    assert s["tokens_per_second"] == 20.0  # 10, 20, 30; r3's 0 means "not measured"


def test_summarize_by_type_and_empty():
    by_type = metrics.by_type(HAND_RECORDS)
    assert sorted(by_type) == ["factoid", "refusal"]
    assert by_type["factoid"]["questions"] == 3 and by_type["factoid"]["errors"] == 1
    assert by_type["factoid"]["accuracy"] == 0.5 and by_type["factoid"]["refusal_accuracy"] is None
    assert by_type["refusal"]["refusal_accuracy"] == 1.0 and by_type["refusal"]["accuracy"] is None
    empty = metrics.summarize([])
    assert empty["questions"] == 0 and empty["accuracy"] is None and empty["overall_accuracy"] is None
    assert empty["critique_catch_rate"] is None and empty["catch_rate_by_kind"] == {}


# -- question sets --------------------------------------------------------------------------


def test_jsonl_bad_rows_are_reported_by_line_and_skipped(tmp_path):
    lines = [
        json.dumps({"id": "q1", "question": "What F1 does SPARK reach?", "keywords": ["67.5"], "papers": [SPARK],
                    "answerable": True, "type": "factoid", "source": "manual", "difficulty": 2}),
        '{"id": "q2", "question": "broken',
        json.dumps({"id": "q3", "keywords": ["x"]}),
        json.dumps({"id": "q4", "question": "Answerable, but how to score it?", "answerable": True}),
        json.dumps({"id": "q1", "question": "Same id again?", "keywords": ["x"]}),
        json.dumps({"id": "q6", "question": "Odd flag?", "keywords": ["x"], "answerable": "maybe"}),
        "",
        json.dumps({"id": "q8", "question": "What did the authors eat?", "answerable": False}),
        json.dumps({"question": "  No id here?  ", "keywords": "a|b", "answerable": "no"}),
        json.dumps(["not", "an", "object"]),
    ]
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows, problems = load_questions(path)

    assert [r.id for r in rows] == ["q1", "q8", "line9"]
    assert [r.line for r in rows] == [1, 8, 9]
    first = rows[0]
    assert first.keywords == ["67.5"] and first.papers == [SPARK] and first.answerable and first.type == "factoid"
    assert first.extra == {"source": "manual", "difficulty": 2}
    assert rows[1].answerable is False and rows[1].keywords == []
    assert rows[2].question == "No id here?" and rows[2].keywords == ["a", "b"] and rows[2].answerable is False

    got = {p.line: p.message for p in problems}
    assert sorted(got) == [2, 3, 4, 5, 6, 10]
    assert got[2].startswith("not valid JSON")
    assert "missing or empty 'question'" in got[3]
    assert "needs 'keywords'" in got[4]
    assert got[5] == "duplicate id 'q1'"
    assert "'answerable' must be true or false" in got[6] and "maybe" in got[6]
    assert "must be an object" in got[10]
    assert str(problems[0]).startswith("line 2: ")


def test_csv_rows_lists_and_extra_columns(tmp_path):
    path = tmp_path / "set.csv"
    path.write_text(
        "\ufeffid,question,answer,keywords,papers,answerable,type,notes\n"  # a BOM, as Excel writes
        f'c1,What F1 does SPARK reach?,67.5 F1,67.5;ProcessBench,"[""{SPARK}""]",yes,factoid,checked by hand\n'
        "c2,What did the authors eat?,,,,no,unanswerable,\n"
        "c3,Odd flag?,,x,,perhaps,,\n"
        "c4,,,x,,,,\n"
        "c1,Same id?,,x,,,,\n"
        'c6,Broken list?,,"[""unclosed",,,,\n'
        "c7,Pipes?,,alpha|beta,,TRUE,,\n",
        encoding="utf-8",
    )
    rows, problems = load_questions(path)
    assert [r.id for r in rows] == ["c1", "c2", "c7"]
    c1, c2, c7 = rows
    assert c1.keywords == ["67.5", "ProcessBench"] and c1.papers == [SPARK] and c1.answerable
    assert c1.extra == {"notes": "checked by hand"} and c1.line == 2
    assert not c2.answerable and c2.keywords == [] and c2.type == "unanswerable"
    assert c7.keywords == ["alpha", "beta"] and c7.answerable and c7.line == 8
    got = {p.line: p.message for p in problems}
    assert sorted(got) == [4, 5, 6, 7]
    assert "perhaps" in got[4]
    assert "missing or empty 'question'" in got[5]
    assert got[6] == "duplicate id 'c1'"
    assert "'keywords' is not a valid JSON list" in got[7]


@pytest.mark.parametrize(
    "name, content",
    [
        ("missing.jsonl", None),
        ("empty.jsonl", ""),
        ("blank.jsonl", "\n\n   \n"),
        ("allbad.jsonl", '{"id": 1}\nnot json\n'),
        ("latin1.jsonl", b'{"id": "q", "question": "caf\xe9?", "answerable": false}\n'),
        ("noquestion.csv", "id,prompt\n1,hello\n"),
        ("headeronly.csv", "id,question,keywords\n"),
    ],
)
def test_unusable_question_file_raises_eval_input_error(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(EvalInputError) as err:
        load_questions(path)
    assert str(path) in str(err.value)


def test_jsonl_row_with_a_unicode_line_separator_loads(tmp_path):
    path = tmp_path / "set.jsonl"
    row = {"id": "u1", "question": "What does SPELL\u2028propose?", "keywords": ["self-play"]}
    other = {"id": "u2", "question": "What does SPARK propose?", "keywords": ["PRM"]}
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (row, other)), encoding="utf-8")
    rows, problems = load_questions(path)  # valid JSON Lines: JSON allows a raw U+2028 inside a string
    assert [str(p) for p in problems] == []
    assert [(r.id, r.line) for r in rows] == [("u1", 1), ("u2", 2)]


def test_csv_line_numbers_after_a_multiline_cell(tmp_path):
    path = tmp_path / "set.csv"
    path.write_text('id,question,answer,keywords\nc1,What is SPELL?,"line one\nline two",spell\nc2,,,\n', encoding="utf-8")
    _, problems = load_questions(path)
    assert [p.line for p in problems] == [4]  # c2 is on the file's 4th line


# -- the runner -----------------------------------------------------------------------------


def test_runner_writes_one_record_per_question_and_pipeline(settings, fake_index, question_rows, tmp_path):
    llm = scripted()
    out = tmp_path / "run"
    seen = []
    records = Runner(settings, make_pipelines(settings, fake_index, llm), out).run(
        question_rows, lambda done, total, label: seen.append((done, total, label))
    )
    assert seen[-1][:2] == (6, 6) and [d for d, _, _ in seen] == [1, 2, 3, 4, 5, 6]
    on_disk = read_results(out / "results.jsonl")
    assert len((out / "results.jsonl").read_text().splitlines()) == 6
    assert on_disk == records
    assert {(r["id"], r["pipeline"]) for r in records} == {
        (q["id"], p) for q in QUESTIONS for p in ("paperchat", "no-critique")
    }
    by = {(r["id"], r["pipeline"]): r for r in records}
    for r in records:
        assert "error" not in r
        assert r["backend"] == "scripted" and r["model"] == "scripted"
        assert r["timings"]["total"] > 0 and r["claims"]
    # the answerable questions are answered from their paper, and scored so
    for qid, title, keyword in (("spark-f1", SPARK, "67.5"), ("ssr-data", SSR, "13K")):
        for name in ("paperchat", "no-critique"):
            r = by[(qid, name)]
            assert keyword in r["answer"], r["answer"]
            assert r["citations"] == [title]
            assert r["retrieved"][0] == title
            assert r["scores"] == {"correct": 1.0, "recall@1": 1.0, "recall@5": 1.0, "citation_precision": 1.0}
    assert by[("spark-f1", "paperchat")]["extra"] == {"difficulty": "easy"}
    # the unanswerable question: the model copies a sentence with no learning rate in it; the critique
    # rejects it (a quantity question answered without a number) and refuses, the no-critique pipeline does not
    pc, nc = by[("no-answer", "paperchat")], by[("no-answer", "no-critique")]
    assert pc["verdict"] == "not supported" and pc["answer"].startswith(prompts.REFUSAL)
    assert pc["scores"]["correct"] == 1.0 and pc["scores"]["citation_precision"] is None
    assert nc["answer"] == nc["draft"] and nc["scores"]["correct"] == 0.0
    # planted errors run for the paperchat pipeline on answerable rows with a reference answer
    planted = by[("spark-f1", "paperchat")]["planted"]
    assert [p["kind"] for p in planted] == ["correct", "number", "wrong_paper", "invented"]
    kinds = {p["kind"]: p for p in planted}
    assert kinds["number"]["text"].startswith("It reaches 71.5 F1") and kinds["number"]["flagged"]
    assert kinds["invented"]["flagged"] and not kinds["correct"]["flagged"]
    assert "planted" not in by[("spark-f1", "no-critique")]
    assert by[("no-answer", "paperchat")]["planted"] == []


def test_runner_resumes_after_a_crash_without_redoing_finished_rows(settings, fake_index, question_rows, tmp_path):
    out = tmp_path / "run"
    crashing = scripted(fail_after=2)  # the no-critique pipeline makes one model call per question
    with pytest.raises(RuntimeError, match="simulated failure"):
        Runner(settings, {"no-critique": make_pipelines(settings, fake_index, crashing)["no-critique"]}, out).run(question_rows)
    assert len(crashing.requests) == 3
    before = read_results(out / "results.jsonl")
    assert [r["id"] for r in before] == ["spark-f1", "ssr-data"]

    fresh = scripted()
    records = Runner(settings, {"no-critique": make_pipelines(settings, fake_index, fresh)["no-critique"]}, out).run(question_rows)
    assert len(fresh.requests) == 1  # only the question the crash interrupted
    assert "learning rate did SPARK" in fresh.requests[0].messages[-1].content
    assert [r["id"] for r in records] == ["spark-f1", "ssr-data", "no-answer"]
    assert records[:2] == before
    assert [r["id"] for r in read_results(out / "results.jsonl")] == ["spark-f1", "ssr-data", "no-answer"]

    again = scripted()
    assert len(Runner(settings, {"no-critique": make_pipelines(settings, fake_index, again)["no-critique"]}, out).run(question_rows)) == 3
    assert again.requests == []  # everything finished: nothing asked


def test_runner_ignores_a_torn_last_line_and_redoes_that_row(settings, fake_index, question_rows, tmp_path):
    out = tmp_path / "run"
    llm = scripted()
    calls_at: dict[str, int] = {}
    Runner(settings, make_pipelines(settings, fake_index, llm), out).run(
        question_rows, lambda done, total, label: calls_at.setdefault(label, len(llm.requests))
    )
    path = out / "results.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    last = json.loads(lines[-1])
    labels = list(calls_at)
    assert labels[-1] == f"{last['pipeline']}:{last['id']}"
    calls_for_last = calls_at[labels[-1]] - calls_at[labels[-2]]
    # a crash in the middle of writing the last record
    path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2], encoding="utf-8")
    assert len(read_results(path)) == 5  # the torn line is not a record

    fresh = scripted()
    records = Runner(settings, make_pipelines(settings, fake_index, fresh), out).run(question_rows)
    assert len(fresh.requests) == calls_for_last  # only the torn row was asked again
    assert len(records) == 6
    assert {(r["id"], r["pipeline"]) for r in records} == {(q["id"], p) for q in QUESTIONS for p in ("paperchat", "no-critique")}
    redone = next(r for r in records if (r["id"], r["pipeline"]) == (last["id"], last["pipeline"]))
    assert redone["answer"] == last["answer"] and redone["scores"] == last["scores"]


def test_record_written_after_a_torn_line_survives(settings, fake_index, question_rows, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.jsonl").write_text('{"id": "spark-f1", "pipeline": "no-crit', encoding="utf-8")  # torn, no newline
    Runner(settings, {"no-critique": make_pipelines(settings, fake_index, scripted())["no-critique"]}, out).run(question_rows[:1])
    assert [(r["id"], r["pipeline"]) for r in read_results(out / "results.jsonl")] == [("spark-f1", "no-critique")]


def test_record_with_a_unicode_line_separator_is_read_back(settings, fake_index, tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "u", "question": "What does SPELL\u2028propose?", "keywords": ["x"]}) + "\n")
    rows, _ = load_questions(path)  # escaped as \\u2028 in the file, so it loads
    out = tmp_path / "run"
    Runner(settings, {"no-critique": make_pipelines(settings, fake_index, scripted())["no-critique"]}, out).run(rows)
    assert len(read_results(out / "results.jsonl")) == 1


def test_model_errors_become_error_records_and_the_run_goes_on(settings, fake_index, question_rows, tmp_path):
    llm = scripted(fail_after=1, error=ModelUnavailableError)
    out = tmp_path / "run"
    records = Runner(settings, {"no-critique": make_pipelines(settings, fake_index, llm)["no-critique"]}, out).run(question_rows)
    assert [("error" in r) for r in records] == [False, True, True]
    failed = records[1]
    assert failed["error"] == "simulated failure of the model"
    assert failed["scores"] == {"correct": 0.0, "recall@1": None, "recall@5": None, "citation_precision": None}
    assert failed["timings"]["total"] >= 0
    s = metrics.summarize(records)
    assert s["questions"] == 3 and s["errors"] == 2 and s["accuracy"] == 1.0


# -- summary, report, gate --------------------------------------------------------------------


def _summary(records, names, questions_file="questions.jsonl", skipped=()):
    return {
        "questions_file": questions_file, "questions": len({r["id"] for r in records}), "skipped_rows": list(skipped),
        "pipelines": summarize(records, names), "model": "scripted", "backend": "scripted",
        "wall_seconds_this_run": 1.5, "finished": "2025-01-01T00:00:00",
    }


def test_summary_and_reports(settings, fake_index, question_rows, tmp_path):
    names = ["paperchat", "no-critique"]
    out = tmp_path / "run"
    records = Runner(settings, make_pipelines(settings, fake_index, scripted()), out).run(question_rows)
    summary = _summary(records, names, skipped=["line 7: duplicate id 'x'"])
    pc, nc = summary["pipelines"]["paperchat"]["overall"], summary["pipelines"]["no-critique"]["overall"]
    assert pc["questions"] == nc["questions"] == 3
    assert pc["accuracy"] == nc["accuracy"] == 1.0
    assert pc["refusal_accuracy"] == 1.0 and nc["refusal_accuracy"] == 0.0  # see the runner test
    assert pc["overall_accuracy"] == 1.0 and nc["overall_accuracy"] == 0.6667
    assert pc["critique_catch_rate"] is not None and nc["critique_catch_rate"] is None
    assert set(summary["pipelines"]["paperchat"]["by_type"]) == {"factoid", "unanswerable"}

    write_reports(out, summary, records, names)
    md = (out / "report.md").read_text(encoding="utf-8")
    table = [line for line in md.splitlines() if line.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header == ["pipeline", *[label for _, label in COLUMNS]]
    assert table[1] == "|" + "---|" * len(header)
    rows = {r[0]: r for r in ([c.strip() for c in line.strip("|").split("|")] for line in table[2:4])}
    col = header.index
    assert rows["paperchat"][col("answer accuracy")] == "1.000"
    assert rows["no-critique"][col("refusal accuracy")] == "0.000"
    assert rows["no-critique"][col("overall")] == "0.667"
    assert rows["no-critique"][col("critique catch")] == "–"
    assert "## paperchat by question type" in md and "## Critique on planted errors" in md
    assert "- line 7: duplicate id 'x'" in md
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and '<table id="summary">' in page
    for plot in ("accuracy", "latency", "heatmap"):
        assert f'id="plot-{plot}"' in page


def test_report_escapes_html_from_answers(tmp_path):
    rec = _record("x<1>", True, 1.0, 1.0, 1.0, 1.0, {"total": 1.0}, "factoid")
    rec.update(answer="<script>alert(1)</script>", verdict="supported")
    summary = _summary([rec], ["paperchat"], questions_file="<b>q</b>.jsonl")
    write_reports(tmp_path, summary, [rec], ["paperchat"])
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>q</b>" not in page


def test_parse_fail_under():
    assert parse_fail_under(["accuracy=0.8", " recall@5 = 0.9"]) == {"accuracy": 0.8, "recall@5": 0.9}
    assert parse_fail_under([]) == {}
    for bad in ("accuracy", "accuracy=", "accuracy=high"):
        with pytest.raises(EvalInputError, match="METRIC=NUMBER"):
            parse_fail_under([bad])


def test_gate_lists_metrics_below_their_threshold():
    summary = {
        "paperchat": {"overall": {"accuracy": 0.75, "recall@5": None, "total_p50": 2.0, "catch_rate_by_kind": {}}},
        "no-critique": {"overall": {"accuracy": 0.5}},
    }
    assert gate(summary, {"accuracy": 0.75}) == []  # equal passes
    assert gate(summary, {"accuracy": 0.8}) == ["paperchat accuracy = 0.75 is below 0.8"]
    assert gate(summary, {"recall@5": 0.1}) == ["paperchat recall@5 = None is below 0.1"]  # no value fails
    unknown = gate(summary, {"bleu": 0.1})
    assert unknown == ["unknown metric 'bleu' (known: accuracy, recall@5, total_p50)"]
    assert gate(summary, {"accuracy": 0.6}, pipeline="no-critique") == ["no-critique accuracy = 0.5 is below 0.6"]
    assert gate(summary, {"accuracy": 0.5}, pipeline="no-critique") == []


def test_build_pipelines_rejects_unknown_names_before_loading_anything(settings):
    assert "paperchat" in PIPELINES and "baseline" in PIPELINES
    with pytest.raises(EvalInputError) as err:
        build_pipelines(settings, ["paperchat", "gpt-5", "nope"])
    message = str(err.value)
    assert "gpt-5" in message and "nope" in message
    assert all(name in message for name in PIPELINES)
    assert not Path(settings.data_dir).exists()  # rejected before any index or model was opened


def test_every_eval_pipeline_is_built_by_name_and_answers_through_one_protocol(settings, fake_index):
    retriever, llm = Retriever(fake_index), ScriptedLLM(copying_reply)  # copies source [1] whatever the prompt
    question = "What F1 score does SPARK's process reward model reach on ProcessBench?"
    for name, build in BUILDERS.items():
        run = as_eval(build(settings, retriever, llm))
        answer = run.ask(question)
        assert run.name == name == answer.pipeline
        assert SPARK in run.retrieved_titles(question, answer, 5)
        assert (run.critiqued is not None) == (name == "paperchat")  # planted errors test paperchat's critique only
        if name == "baseline":  # the stock engine reads each chunk's text, which the index keeps in the paper's record
            assert answer.citations and all(c.chunk for c in answer.citations)
            assert answer.citations[0].chunk in llm.requests[-1].messages[-1].content


# -- the HTML report in a real browser ----------------------------------------------------------


@pytest.mark.browser
def test_report_html_opens_in_chromium_with_its_plots(settings, fake_index, question_rows, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("no Chromium at /usr/bin/chromium")
    names = ["paperchat", "no-critique"]
    out = tmp_path / "run"
    records = Runner(settings, make_pipelines(settings, fake_index, scripted()), out, planted=False).run(question_rows)
    write_reports(out, _summary(records, names), records, names)
    report = out / "report.html"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(chromium),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(report.as_uri())
            page.wait_for_load_state("load")
            assert page.title() == "paperchat evaluation"
            sizes = page.evaluate(
                """() => ['accuracy', 'latency', 'heatmap'].map(k => {
                    const img = document.getElementById('plot-' + k);
                    return img ? [img.complete, img.naturalWidth, img.naturalHeight] : null;
                })"""
            )
            for plot, size in zip(("accuracy", "latency", "heatmap"), sizes):
                assert size is not None, f"no #plot-{plot}"
                complete, width, height = size
                assert complete and width > 0 and height > 0, f"#plot-{plot} did not decode: {size}"
            assert page.locator("#summary tbody tr").count() == 2
            assert page.locator("#answers tbody tr").count() == 6
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()


def test_recheck_checks_a_recorded_draft_again_without_the_model(settings, fake_index):
    from paperchat.eval.recheck import NoModel, recheck
    from paperchat.rag.pipeline import Pipeline

    pipeline = Pipeline(settings, Retriever(fake_index), NoModel())
    question = "What F1 score does SPARK's process reward model reach on ProcessBench?"
    record = {
        "id": "r1", "pipeline": "paperchat", "question": question, "standalone_question": question, "type": "factoid",
        "answerable": True, "keywords": ["67.5"], "extra": {}, "verdict": "supported", "scores": {"correct": 0.0},
        "draft": f"{SPARK} [1].",  # the paper's title: it answers nothing
    }
    again = recheck(pipeline, record)
    assert again["verdict"] == "not supported" and again["scores"]["correct"] == 0.0
    assert again["answer"].startswith(prompts.REFUSAL)
    right = recheck(pipeline, {**record, "draft": "SPARK's process reward model reaches 67.5 F1 on ProcessBench [1]."})
    assert right["verdict"] == "supported" and right["scores"]["correct"] == 1.0
    assert record["scores"] == {"correct": 0.0}  # the recorded row is left as it was
    # nothing is drafted: asking the pipeline itself is refused with a sentence
    with pytest.raises(ModelUnavailableError, match="No model is loaded"):
        pipeline.ask(question)


def test_recheck_without_an_index_says_how_to_build_one(tmp_path, monkeypatch, capsys):
    from paperchat.eval.recheck import run

    results = tmp_path / "results.jsonl"
    question = "What F1 score does SPARK's process reward model reach on ProcessBench?"
    record = {"id": "r1", "pipeline": "paperchat", "question": question, "type": "factoid", "answerable": True,
              "keywords": ["67.5"], "extra": {}, "verdict": "supported", "scores": {"correct": 1.0}, "draft": "x [1]."}
    results.write_text(json.dumps(record) + "\n")
    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("PAPERCHAT_MODEL__BACKEND", "embedded")
    assert run([str(results)]) == 2
    err = capsys.readouterr().err
    assert "paperchat ingest" in err and "Traceback" not in err


def test_recheck_switches_checks_off_by_name_and_ablates_each(settings, fake_index, capsys):
    from paperchat.eval.recheck import NoModel, _ablation, print_ablation, recheck
    from paperchat.rag.critique import check_names
    from paperchat.rag.errors import ConfigError
    from paperchat.rag.pipeline import Pipeline

    pipeline = Pipeline(settings, Retriever(fake_index), NoModel())
    question = "What F1 score does SPARK's process reward model reach on ProcessBench?"
    record = {
        "id": "r1", "pipeline": "paperchat", "question": question, "standalone_question": question, "type": "factoid",
        "answerable": True, "keywords": ["F1"], "extra": {}, "verdict": "supported", "scores": {"correct": 0.0},
        "draft": "SPARK's process reward model reaches F1 on ProcessBench [1].",  # the question again, no number
    }
    on = recheck(pipeline, record)
    assert on["verdict"] == "not supported" and on["scores"]["correct"] == 0.0
    no_restating = recheck(pipeline, record, disabled=("restates",))
    assert no_restating["verdict"] == "not supported"  # the next check: it gives no number
    off = recheck(pipeline, record, disabled=("restates", "answers_quantity"))
    assert off["verdict"] == "supported" and off["scores"]["correct"] == 1.0
    with pytest.raises(ConfigError, match="No critique check is called 'nope'"):
        recheck(pipeline, record, disabled=("nope",))
    rows = _ablation(pipeline, [record], reread=False)
    assert [label for label, _ in rows] == ["all on", *check_names()]
    assert all(row["answerable_correct"] == "0/1" for _, row in rows)  # two checks withhold it: one off is not enough
    print_ablation(rows)
    table = capsys.readouterr().out
    assert table.count("\n") == len(rows) + 2 and "| restates | 0/1 | 0/0 | None | = |" in table


def test_rescore_scores_recorded_answers_again_and_keeps_the_recorded_summary(tmp_path):
    from paperchat.eval.rescore import main as rescore

    premise = {  # a false premise given as a string: the run's scorer read its characters
        "id": "p1", "pipeline": "paperchat", "question": "Why does FooNet only reach 61.9?", "answerable": False,
        "type": "false-premise", "keywords": [], "extra": {"corrects": ["67.5"], "premise": "61.9"},
        "answer": "FooNet reaches 67.5, not 61.9 [1].", "verdict": "supported",
        "scores": {"correct": 0.0, "recall@1": 1.0, "recall@5": 1.0, "citation_precision": None}, "timings": {"total": 2.0},
    }
    factoid = {
        "id": "f1", "pipeline": "paperchat", "question": "What does FooNet reach?", "answerable": True, "type": "factoid",
        "keywords": ["67.5"], "extra": {}, "answer": "FooNet reaches 67.5 [1].", "verdict": "supported",
        "scores": {"correct": 1.0, "recall@1": 1.0, "recall@5": 1.0, "citation_precision": 1.0}, "timings": {"total": 3.0},
    }
    records = [premise, factoid]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    recorded = {"questions_file": "q.jsonl", "questions": 2, "skipped_rows": [], "model": "m", "backend": "b", "finished": "2026-12-03T22:00:00",
                "wall_seconds_this_run": 5.0, "derived": {},
                "pipelines": summarize(records, ["paperchat"])}
    (tmp_path / "summary.json").write_text(json.dumps(recorded))
    assert rescore([str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["pipelines"]["paperchat"]["overall"]["unanswerable_withheld"] == 1.0  # was 0.0
    assert summary["pipelines"]["paperchat"]["overall"]["accuracy"] == 1.0
    assert json.loads((tmp_path / "summary.recorded.json").read_text()) == recorded
    assert [r["scores"]["corrected"] for r in read_results(tmp_path / "results.jsonl") if r["id"] == "p1"] == [True]
    assert (tmp_path / "report.md").exists()
