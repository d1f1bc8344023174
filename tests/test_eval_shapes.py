"""Issue 12's evaluation: keyword boundaries, false-premise scoring, badge precision, reworded false
alarms, per-shape reports, and no-critique derived from paperchat's draft (scripted model, hashing embedder)."""

from __future__ import annotations

import json

import pytest

from paperchat.eval import metrics
from paperchat.eval.report import write_reports
from paperchat.eval.runner import Runner, answer_from_record, derive_no_critique, expected_sources, model_drafted, summarize
from paperchat.rag.pipeline import Pipeline
from paperchat.rag.retrieval import Retriever

from .fakes import SPARK, SSR, load_rows, make_pipelines, scripted

SPELL = "SPELL: Self-Play Reinforcement Learning for evolving Long-Context Language Models"
SSRL = "SSRL: Self-Search Reinforcement Learning"

ROWS = [
    {"id": "fact", "question": "What F1 score does SPARK's process reward model reach on ProcessBench?",
     "answer": "It reaches 67.5 F1 on ProcessBench.", "keywords": ["67.5"], "papers": [SPARK], "type": "factoid",
     "reworded": "On ProcessBench its process reward model scores 67.5 F1 [1].", "terse": "67.5 F1 [1]."},
    {"id": "cmp", "question": "Which was trained on more examples, SSR-Zero-7B or SPELL?", "type": "comparison",
     "answer": "SSR-Zero-7B used 13K monolingual examples.", "keywords": ["13K"], "papers": [SSR, SPELL],
     "reworded": "SSR-Zero-7B was trained on 13K monolingual examples [1], and SPELL integrates three roles in one model [2].",
     "terse": "The ProcessBench F1 is 99.9 [1]."},  # a wrong "correct" answer: the critique must remove it
    {"id": "fp", "question": "Why does SPARK reach 72.3 F1 on ProcessBench?", "answerable": False, "type": "false-premise",
     "papers": [SPARK], "corrects": ["67.5"], "premise": ["72.3"]},
    {"id": "off", "question": "What is the capital of Australia?", "answerable": False, "type": "off-topic"},
]


@pytest.fixture
def rows(tmp_path):
    return load_rows(tmp_path / "q.jsonl", ROWS)


# -- scoring ----------------------------------------------------------------------------------


def test_author_count_keyword_matches_the_number_and_not_a_longer_one():
    assert metrics.keywords_present("SPELL has 8 authors [1].", ["8"])
    assert not metrics.keywords_present("SSRL has 18 authors [1].", ["8"])
    assert not metrics.keywords_present("It gains 8.5 points.", ["8"])
    assert not metrics.keywords_present("It lists 80 authors.", ["8"])
    assert metrics.keywords_present("Eight? No: 8.", ["8"])
    assert metrics.keywords_present("SSRL: 18 [1] vs 8 [2].", ["18", "8"])
    assert metrics.keywords_present("Self\u2011RAG has 6 upvotes.", ["self-rag", "6"])  # a non-breaking hyphen
    assert not metrics.keywords_present("SPARK reaches 67.5 F1.", ["SPaR"])
    assert metrics.keywords_present("SPaR's code is on GitHub.", ["SPaR"])


def test_false_premise_correction_is_scored_strictly():
    assert metrics.corrects_premise("SPARK reaches 67.5 F1 on ProcessBench [1].", ["67.5"], ["72.3"])
    assert metrics.corrects_premise("It is 67.5 F1, not 72.3 [1].", ["67.5"], ["72.3"])
    assert metrics.corrects_premise("Rather than 72.3, the abstract gives 67.5 F1 [1].", ["67.5"], ["72.3"])
    assert not metrics.corrects_premise("SPARK reaches 72.3 F1, above the 67.5 of others [1].", ["67.5"], ["72.3"])
    assert not metrics.corrects_premise("SPARK reaches 72.3 F1 [1].", ["67.5"], ["72.3"])
    assert not metrics.corrects_premise("It is a three-stage framework [1].", ["67.5"], ["72.3"])
    assert not metrics.corrects_premise("67.5 F1 [1].", [], ["72.3"])  # nothing to correct with: refusal only


def _rec(rid, answerable, correct, verdict, answer="An answer [1].", corrected=None, type_="factoid", planted=()):
    scores = {"correct": correct, "recall@1": None, "recall@5": None, "citation_precision": None}
    if corrected is not None:
        scores["corrected"] = corrected
    return {"id": rid, "pipeline": "paperchat", "answerable": answerable, "type": type_, "verdict": verdict,
            "answer": answer, "scores": scores, "timings": {"total": 1.0},
            "planted": [{"kind": k, "must_flag": k not in ("correct", "reworded", "terse"), "flagged": f} for k, f in planted]}


def test_badge_precision_withheld_rate_and_reworded_false_alarms():
    records = [
        _rec("a", True, 1.0, "supported", planted=[("correct", False), ("reworded", True), ("terse", False)]),
        _rec("b", True, 0.0, "partially supported", planted=[("reworded", False), ("number", True)]),
        _rec("c", True, 0.0, "not supported"),  # withheld: no badge, not counted
        _rec("d", False, 0.0, "supported", type_="near-miss"),  # an unanswerable row with a badge: wrong
        _rec("e", False, 1.0, "supported", answer="SPARK reaches 67.5 F1 [1].", corrected=True, type_="false-premise"),
        _rec("f", False, 1.0, "refused", answer="The provided abstracts do not answer this question.", type_="off-topic"),
        _rec("g", False, 1.0, "supported", answer="The abstracts do not mention it.", type_="near-miss"),  # a refusal sentence
    ]
    s = metrics.summarize(records)
    assert s["badged"] == 4 and s["badge_precision"] == 0.5  # a and e right; b and d wrong
    assert s["unanswerable_withheld"] == s["refusal_accuracy"] == 0.75  # e (corrected), f, g of d, e, f, g
    assert s["reworded_checked"] == 3 and s["reworded_false_alarm_rate"] == 0.3333
    assert s["false_alarm_rate_by_kind"] == {"reworded": 0.5, "terse": 0.0}
    assert s["critique_false_alarm_rate"] == 0.0  # the generated "correct" kind alone, as before
    assert s["critique_catch_rate"] == 1.0
    shapes = metrics.by_type(records)
    assert shapes["near-miss"]["overall_accuracy"] == 0.5 and shapes["false-premise"]["badge_precision"] == 1.0


# -- the runner -------------------------------------------------------------------------------


def test_derived_no_critique_equals_drafting_again(settings, fake_index, rows, tmp_path):
    derived_llm, fresh_llm = scripted(), scripted()
    derived = Runner(settings, make_pipelines(settings, fake_index, derived_llm), tmp_path / "a", planted=False).run(rows)
    redrafted = Runner(settings, make_pipelines(settings, fake_index, fresh_llm), tmp_path / "b", planted=False,
                       derive_no_critique=False).run(rows)
    drafts = [r for r in fresh_llm.requests if r.json_schema is None]
    # no-critique's drafts are all saved: drafting again asks as many drafts again as paperchat's own
    # (a comparison is drafted one side at a time, so a row can take more than one draft)
    assert 2 * len([r for r in derived_llm.requests if r.json_schema is None]) == len(drafts)
    by_a = {(r["id"], r["pipeline"]): r for r in derived}
    by_b = {(r["id"], r["pipeline"]): r for r in redrafted}
    assert set(by_a) == set(by_b)
    for row in rows:
        a, b = by_a[(row.id, "no-critique")], by_b[(row.id, "no-critique")]
        assert a["derived_from"] == "paperchat" and "derived_from" not in b
        for field in ("answer", "draft", "verdict", "citations", "citation_numbers", "retrieved", "claims", "scores"):
            assert a[field] == b[field], (row.id, field)
        assert a["draft"] == by_a[(row.id, "paperchat")]["draft"]
        assert a["timings"]["critique"] == 0.0
        assert a["timings"]["total"] <= by_a[(row.id, "paperchat")]["timings"]["total"]
    summary = summarize(derived, ["paperchat", "no-critique"])
    assert summary["no-critique"]["overall"]["questions"] == len(rows)


def test_derivation_is_refused_when_paperchat_cited_other_sources(settings, fake_index, rows):
    pipelines = make_pipelines(settings, fake_index, scripted())
    answer = pipelines["paperchat"].ask(rows[0].question)
    assert answer.citations and derive_no_critique(pipelines["paperchat"], answer) is not None
    moved = answer.model_copy(update={"citations": [c.model_copy(update={"n": c.n + 1}) for c in answer.citations]})
    assert derive_no_critique(pipelines["paperchat"], moved) is None


def test_a_resumed_run_derives_from_the_stored_paperchat_record(settings, fake_index, rows, tmp_path):
    out = tmp_path / "run"
    Runner(settings, {"paperchat": make_pipelines(settings, fake_index, scripted())["paperchat"]}, out, planted=False).run(rows)
    stored = {r["id"]: r for r in json.loads("[" + ",".join((out / "results.jsonl").read_text().split("\n")[:-1]) + "]")}
    assert answer_from_record(stored["fact"]).draft == stored["fact"]["draft"]
    llm = scripted()
    records = Runner(settings, make_pipelines(settings, fake_index, llm), out, planted=False).run(rows)
    assert llm.requests == []  # every no-critique record came from paperchat's stored drafts
    assert all(r.get("derived_from") == "paperchat" for r in records if r["pipeline"] == "no-critique")


def test_no_derivation_when_the_pipelines_draft_differently(settings, fake_index, rows, tmp_path):
    llm = scripted()
    retriever = Retriever(fake_index)
    pipelines = {"paperchat": Pipeline(settings, retriever, llm, critique=True),
                 "no-critique": Pipeline(settings, retriever, llm, critique=False, evidence_sentences=3)}
    records = Runner(settings, pipelines, tmp_path / "run", planted=False).run(rows[:1])
    assert [r.get("derived_from") for r in records] == [None, None]


def test_reworded_answers_are_checked_against_the_rows_own_papers(settings, fake_index, rows, tmp_path):
    pipelines = make_pipelines(settings, fake_index, scripted())
    sources = expected_sources(pipelines["paperchat"], rows[1])
    assert [(s.n, s.paper.title) for s in sources] == [(1, SSR), (2, SPELL)]
    records = Runner(settings, {"paperchat": pipelines["paperchat"]}, tmp_path / "run").run(rows)
    by_id = {r["id"]: r for r in records}
    kinds = {p["kind"]: p for p in by_id["cmp"]["planted"] if p["kind"] in ("reworded", "terse")}
    assert set(kinds) == {"reworded", "terse"} and not any(p["must_flag"] for p in kinds.values())
    assert kinds["terse"]["flagged"]  # the wrong one (99.9 F1 is in no abstract) is removed
    for p in kinds.values():  # flagged means a claim was removed (this critique's verdict, right or wrong)
        assert p["flagged"] == ("unsupported" in p["verdicts"])
    fact = {p["kind"]: p for p in by_id["fact"]["planted"]}
    assert {"correct", "number", "invented", "reworded", "terse"} <= set(fact)
    assert by_id["fp"].get("planted", []) == [] and by_id["off"].get("planted", []) == []
    s = metrics.summarize(records)
    assert s["reworded_checked"] == 4
    assert s["reworded_false_alarm_rate"] == pytest.approx(
        sum(p["flagged"] for r in records for p in r["planted"] if p["kind"] in ("reworded", "terse")) / 4, abs=1e-4)


def test_answers_written_from_the_listing_get_no_planted_checks(settings, fake_index, tmp_path):
    # paperchat writes a listing fact from the paper's record: no model-written claim of it is ever re-read, so
    # checking the critique on it (against the abstract alone) would measure a path the product does not take
    listing = load_rows(tmp_path / "m.jsonl", [
        {"id": "meta", "question": "How many authors does SPELL list?", "answer": "SPELL lists 12 authors [1].",
         "keywords": ["12"], "papers": [SPELL], "type": "metadata", "reworded": "Twelve people wrote SPELL [1].",
         "terse": "12 [1]."}])
    pipelines = make_pipelines(settings, fake_index, scripted())
    assert not model_drafted(pipelines["paperchat"], listing[0])
    records = Runner(settings, {"paperchat": pipelines["paperchat"]}, tmp_path / "run").run(listing)
    assert records[0].get("planted", []) == []
    assert model_drafted(pipelines["paperchat"], load_rows(tmp_path / "f.jsonl", ROWS[:1])[0])


def test_false_premise_rows_score_refusals_and_corrections(settings, fake_index, rows, tmp_path):
    records = Runner(settings, make_pipelines(settings, fake_index, scripted()), tmp_path / "run", planted=False).run(rows)
    fp = {r["pipeline"]: r for r in records if r["id"] == "fp"}
    for r in fp.values():
        assert "corrected" in r["scores"]
        expect = metrics.refused(r["answer"], r["verdict"] if r["pipeline"] == "paperchat" else None) or \
            metrics.corrects_premise(r["answer"], ["67.5"], ["72.3"])
        assert r["scores"]["correct"] == float(expect)
    off = [r for r in records if r["id"] == "off"]
    assert all("corrected" not in r["scores"] for r in off)


def test_reports_show_shapes_new_metrics_and_the_derived_note(settings, fake_index, rows, tmp_path):
    names = ["paperchat", "no-critique"]
    out = tmp_path / "run"
    records = Runner(settings, make_pipelines(settings, fake_index, scripted()), out).run(rows)
    summary = {
        "questions_file": "q.jsonl", "questions": len(rows), "skipped_rows": [], "pipelines": summarize(records, names),
        "derived": {"no-critique": "paperchat"}, "model": "scripted", "backend": "scripted",
        "wall_seconds_this_run": 1.0, "finished": "2025-01-01T00:00:00",
    }
    write_reports(out, summary, records, names)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "badge precision" in md and "unanswerable withheld" in md and "false alarm on reworded" in md
    assert "## Correct by question type" in md
    section = md.split("## Correct by question type")[1].split("\n## ")[0]
    shape_rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert shape_rows[0] == "| type | questions | paperchat | no-critique |"
    assert {line.split("|")[1].strip() for line in shape_rows[1:]} == {"factoid", "comparison", "false-premise", "off-topic"}
    assert "## False alarms on reworded correct answers" in md and "| terse |" in md
    assert "**no-critique** was scored from paperchat's own drafts" in md
    page = (out / "report.html").read_text(encoding="utf-8")
    assert '<table id="by-type">' in page and '<table id="reworded">' in page and 'class="derived"' in page
