"""eval/RESULTS.md is generated from the run manifest and the runs' own summaries, and kept in step."""

from __future__ import annotations

import json
import subprocess

import pytest

from paperchat.eval import results_page
from paperchat.rag.errors import EvalInputError

from .conftest import ROOT

MANIFEST = ROOT / "eval" / "results" / "runs.json"


def test_committed_results_page_is_what_the_generator_writes():
    page = (ROOT / "eval" / "RESULTS.md").read_text(encoding="utf-8")
    assert page == results_page.build(MANIFEST), f"eval/RESULTS.md is stale: run `{results_page.COMMAND}`"
    assert results_page.COMMAND in page.splitlines()[2]


def test_every_cited_run_has_its_records_summary_and_report():
    for run in json.loads(MANIFEST.read_text()):
        folder = MANIFEST.parent / run["dir"]
        for name in ("results.jsonl", "summary.json", "report.md"):
            assert (folder / name).is_file(), (run["dir"], name)


def test_the_repository_keeps_only_cited_runs_and_no_html():
    try:
        listed = subprocess.run(["git", "ls-files", "eval/results"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    tracked = listed.stdout.split()
    cited = {r["dir"] for r in json.loads(MANIFEST.read_text())}
    assert tracked, "no results tracked"
    assert not [p for p in tracked if p.endswith(".html")]
    stray = {p.split("/")[2] for p in tracked if p.count("/") >= 3} - cited
    assert not stray, f"runs in git that eval/results/runs.json does not cite: {sorted(stray)}"


def _summary(questions_file: str, accuracy: float) -> dict:
    overall = {"accuracy": accuracy, "unanswerable_withheld": 1.0, "total_p50": 6.04}
    return {"questions_file": questions_file, "questions": 3, "model": "m", "backend": "embedded",
            "pipelines": {"paperchat": {"overall": overall}}}


def _write_runs(tmp_path, runs):
    for run, accuracy in runs:
        (tmp_path / run["dir"]).mkdir()
        (tmp_path / run["dir"] / "summary.json").write_text(json.dumps(_summary("eval/x.jsonl", accuracy)))
    manifest = tmp_path / "runs.json"
    manifest.write_text(json.dumps([run for run, _ in runs]))
    return manifest


def test_first_untuned_runs_come_first_and_each_set_shows_its_newest_run(tmp_path):
    first = {"set": "x", "dir": "x-a", "commit": "aaaaaaa", "date": "2026-01-01 10:00", "first_untuned": True, "note": "first"}
    later = {"set": "x", "dir": "x-b", "commit": "bbbbbbb", "date": "2026-01-02 10:00", "first_untuned": False, "note": "later"}
    page = results_page.build(_write_runs(tmp_path, [(later, 0.9), (first, 0.5)]))
    head, current = page.split("## Current figures per set")
    assert "| x | `x-a/` (aaaaaaa, 2026-01-01 10:00) | paperchat | 0.500 | 1.000 | – |" in head
    assert "x-b" not in head
    assert "`x-b/` at bbbbbbb" in current and "| paperchat | 0.900 |" in current and "x-a" not in current
    assert current.rstrip().endswith("| 6.0 | – |")  # seconds with one decimal


def test_a_bad_manifest_is_a_sentence_not_a_traceback(tmp_path, capsys):
    assert results_page.run(["--manifest", str(tmp_path / "none.json"), "--out", str(tmp_path / "R.md")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "runs.json"
    bad.write_text(json.dumps([{"set": "x", "dir": "gone"}]))
    with pytest.raises(EvalInputError, match="lacks commit, date, first_untuned, note"):
        results_page.build(bad)
    bad.write_text(json.dumps([{"set": "x", "dir": "gone", "commit": "c", "date": "d", "first_untuned": False, "note": ""}]))
    with pytest.raises(EvalInputError, match="has no summary.json"):
        results_page.build(bad)
    assert not (tmp_path / "R.md").exists()
