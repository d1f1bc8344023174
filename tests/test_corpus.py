"""Parsing the seed listings and user files."""

from __future__ import annotations

import json

import pytest

from paperchat.rag.corpus import load_papers, merge, parse_file, parse_jsonl, parse_listing
from paperchat.rag.errors import CorpusError

from .conftest import SEEDS

FILE_A = SEEDS / "000_fa02afaa41d9eee8.txt"
FILE_B = SEEDS / "001_3cf7034b9d32d375.txt"
ABSTRACT = "We study a thing in depth and report what we found about it, with numbers: 42% better than before."


def test_each_seed_file_parses_to_its_exact_paper_count():
    assert len(parse_file(FILE_A)) == 34
    assert len(parse_file(FILE_B)) == 16


def test_seeds_merge_to_46_unique_papers(seed_papers):
    assert len(seed_papers) == 46
    assert len({p.id for p in seed_papers}) == 46
    assert len({p.title for p in seed_papers}) == 46


def test_page_chrome_is_never_a_paper(seed_papers):
    titles = {p.title.casefold() for p in seed_papers}
    for chrome in ("new", "subscribe", "daily papers", "dec 12", "mar 13", "byak and the research community"):
        assert chrome not in titles


def test_a_paper_with_full_metadata(seed_papers):
    spell = next(p for p in seed_papers if p.title.startswith("SPELL:"))
    assert spell.title == "SPELL: Self-Play Reinforcement Learning for evolving Long-Context Language Models"
    assert spell.abstract.startswith("Progress in long-context reasoning")
    assert spell.authors == 8
    assert spell.date == "Sep 28"
    assert spell.upvotes is None
    assert spell.sources == ["000_fa02afaa41d9eee8.txt"]


def test_date_line_with_trailing_upvotes(seed_papers):
    paper = next(p for p in seed_papers if p.title.startswith("Learning to Align, Aligning to Learn"))
    assert (paper.authors, paper.date, paper.upvotes) == (15, "Aug 11", 2)
    paper = next(p for p in seed_papers if p.title.startswith("DreamTuner"))
    assert (paper.date, paper.upvotes) == ("Dec 21, 2023", 6)


def test_paper_without_metadata_lines(seed_papers):
    spark = next(p for p in seed_papers if p.title.startswith("SPARK:"))
    assert (spark.authors, spark.date, spark.upvotes) == (None, None, None)
    assert "67.5 F1 on ProcessBench" in spark.abstract


def test_code_links_are_extracted(seed_papers):
    spar = next(p for p in seed_papers if p.title.startswith("SPaR:"))
    assert spar.urls == ["https://github.com/thu-coai/SPaR"]


def test_repeated_paper_is_one_record_from_both_files(seed_papers):
    dup = next(p for p in seed_papers if p.title.startswith("Enable Language Models to Implicitly Learn"))
    assert dup.sources == ["000_fa02afaa41d9eee8.txt", "001_3cf7034b9d32d375.txt"]
    # the richer metadata of the first file survives the merge with the bare second listing
    assert dup.authors == 7 and dup.date == "Oct 2, 2023" and dup.upvotes == 2


def test_same_title_different_abstract_keeps_both():
    a = parse_jsonl(json.dumps({"title": "T", "abstract": ABSTRACT}))
    b = parse_jsonl(json.dumps({"title": "T", "abstract": ABSTRACT + " A revised version."}))
    assert len(merge(a + b)) == 2
    assert len(merge(a + a)) == 1


def test_multi_paragraph_abstract_is_joined():
    text = f"Title One\n\n{ABSTRACT}\n\n{ABSTRACT.upper()}\n\n  • 3 authors\n·\nJan 2, 2024\n"
    (paper,) = parse_listing(text)
    assert paper.abstract == f"{ABSTRACT} {ABSTRACT.upper()}"
    assert paper.authors == 3


def test_title_without_abstract_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(f"Good Paper\n\n{ABSTRACT}\n\nOrphan title\n\nAnother short line\n")
    with pytest.raises(CorpusError) as err:
        parse_file(bad)
    assert err.value.line == 5
    assert "bad.txt, line 5" in str(err.value)
    assert "title" in str(err.value)


def test_file_with_no_papers(tmp_path):
    empty = tmp_path / "chrome.txt"
    empty.write_text("new\n\nSubscribe\n\nDec 12\n")
    with pytest.raises(CorpusError, match="no papers found"):
        parse_file(empty)


def test_non_utf8_file_names_the_line(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(f"Paper\n\n{ABSTRACT}\n\nCaf\xe9 paper\n\n{ABSTRACT}\n".encode("latin-1"))
    with pytest.raises(CorpusError) as err:
        parse_file(bad)
    assert err.value.line == 5 and "UTF-8" in str(err.value)


def test_jsonl_fields_and_urls(tmp_path):
    f = tmp_path / "mine.jsonl"
    rows = [
        {"title": "My Paper", "abstract": ABSTRACT + " Code at https://example.org/code.", "authors": ["a", "b"],
         "date": "2024-01-01", "upvotes": "7", "urls": ["https://example.org/page"], "extra": 1},
        {"title": "Second", "abstract": ABSTRACT, "authors": 3},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    first, second = parse_file(f)
    assert first.authors == 2 and first.upvotes == 7 and first.date == "2024-01-01"
    assert first.urls == ["https://example.org/code", "https://example.org/page"]
    assert first.sources == ["mine.jsonl"] and second.authors == 3


@pytest.mark.parametrize(
    "line, problem",
    [
        ('{"title": "x"}', "missing or empty 'abstract'"),
        ('{"title": "", "abstract": "y"}', "missing or empty 'title'"),
        ('{"title": "x", "abstract": "y"', "not valid JSON"),
        ('["x", "y"]', "must be a JSON object"),
        ('{"title": "x", "abstract": "y", "authors": "many"}', "'authors' must be a number"),
        ('{"title": "x", "abstract": "y", "urls": "http://a"}', "'urls' must be a list"),
    ],
)
def test_malformed_jsonl_names_the_line(tmp_path, line, problem):
    f = tmp_path / "papers.jsonl"
    f.write_text(json.dumps({"title": "ok", "abstract": ABSTRACT}) + "\n" + line + "\n")
    with pytest.raises(CorpusError) as err:
        parse_file(f)
    assert err.value.line == 2
    assert problem in str(err.value)
    assert "papers.jsonl, line 2" in str(err.value)


def test_unsupported_and_missing_files(tmp_path):
    (tmp_path / "x.pdf").write_text("nope")
    with pytest.raises(CorpusError, match="unsupported file type"):
        parse_file(tmp_path / "x.pdf")
    with pytest.raises(CorpusError, match="no such file"):
        load_papers([tmp_path / "missing.txt"])
    (tmp_path / "sub").mkdir()
    with pytest.raises(CorpusError, match="holds no .txt or .jsonl"):
        load_papers([tmp_path / "sub"])
