"""Property-based tests: whatever the input, only our documented errors come out."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from paperchat.rag.answer import Answer
from paperchat.rag.corpus import Paper, parse_jsonl, parse_listing
from paperchat.rag.critique import Critic, Source, split_claims
from paperchat.rag.errors import CorpusError, QuestionError
from paperchat.rag.pipeline import Pipeline
from paperchat.rag.question import check_question
from paperchat.rag.retrieval import Retriever

from .fakes import ScriptedLLM, copying_reply

LINES = st.lists(
    st.one_of(
        st.text(max_size=400),
        st.sampled_from(["", "  • 9 authors", "·", "Jun 16, 2024", "Aug 11 2", "Subscribe", "new", "42"]),
        st.text(alphabet="abcdefgh .,", min_size=80, max_size=300),
    ),
    max_size=30,
)


@given(LINES)
@settings(max_examples=300, deadline=None)
def test_listing_parser_returns_papers_or_a_corpus_error(lines):
    try:
        papers = parse_listing("\n".join(lines), "prop.txt")
    except CorpusError as err:
        assert err.path == "prop.txt"
        return
    assert papers and all(p.title and p.abstract for p in papers)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["title", "abstract", "authors", "urls", "date", "upvotes", "x"]), inner, max_size=6),
    max_leaves=10,
)


@given(st.lists(st.one_of(JSON_VALUES.map(json.dumps), st.text(max_size=80)), max_size=8))
@settings(max_examples=300, deadline=None)
def test_jsonl_parser_returns_papers_or_a_corpus_error(lines):
    try:
        papers = parse_jsonl("\n".join(lines), "prop.jsonl")
    except CorpusError as err:
        assert "prop.jsonl" in str(err)
        return
    assert all(isinstance(p, Paper) and p.title.strip() and p.abstract.strip() for p in papers)


@given(st.one_of(st.text(max_size=3000), st.binary(max_size=200), st.none(), st.integers()))
@settings(max_examples=300, deadline=None)
def test_question_check_cleans_or_raises_a_question_error(question):
    try:
        text = check_question(question, 2000)
    except QuestionError as err:
        assert str(err).endswith(".")
        return
    assert text and text == text.strip() and len(text) <= 2000 and "\x00" not in text


@given(st.text(max_size=600))
@settings(max_examples=200, deadline=None)
def test_critique_never_fails_on_any_draft(draft):
    paper = Paper(id="p", title="SPELL: Self-Play", abstract="SPELL reaches 12.5 points on LongBench with self-play.")
    result = Critic().check(draft, [Source(1, paper, [])])
    assert result.verdict in ("supported", "partially supported", "not supported", "refused")
    assert len(result.claims) == len(split_claims(draft))


@given(st.text(min_size=1, max_size=300))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_question_gets_an_answer_or_a_question_error(fake_index, question):
    pipeline = Pipeline(fake_index.settings, Retriever(fake_index), ScriptedLLM(copying_reply))
    try:
        answer = pipeline.ask(question)
    except QuestionError:
        return
    assert isinstance(answer, Answer) and answer.answer
