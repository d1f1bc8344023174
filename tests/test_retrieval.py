"""Retrieval quality on the public question set, with the real embedding model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from paperchat.eval.metrics import recall_at
from paperchat.rag.retrieval import Retriever, rrf

from .conftest import ROOT

QUESTIONS = [json.loads(line) for line in (ROOT / "eval" / "questions.jsonl").read_text().splitlines() if line.strip()]


def test_question_set_shape():
    assert len(QUESTIONS) >= 40
    assert sum(not q["answerable"] for q in QUESTIONS) >= 6
    for q in QUESTIONS:
        assert {"id", "question", "answer", "keywords", "papers", "answerable"} <= q.keys()


def test_recall_at_5_on_answerable_questions(real_index):
    retriever = Retriever(real_index)
    answerable = [q for q in QUESTIONS if q["answerable"]]
    r5 = [recall_at([h.paper.title for h in retriever.search(q["question"], k=5)], q["papers"], 5) for q in answerable]
    assert np.mean(r5) >= 0.95


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_every_mode_finds_a_named_paper(real_index, mode):
    hits = Retriever(real_index).search("What F1 does SPARK reach on ProcessBench?", k=3, mode=mode)
    assert hits[0].paper.title.startswith("SPARK")
    assert "ProcessBench" in hits[0].chunk or mode == "dense"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hits_are_distinct_papers_with_both_signals(real_index):
    hits = Retriever(real_index).search("self-play reinforcement learning long context", k=5)
    assert len({h.paper.id for h in hits}) == len(hits) == 5
    top = hits[0]
    assert top.dense_rank is not None and top.bm25_rank is not None
    assert -1.0 <= top.dense_similarity <= 1.0


def test_query_with_no_known_words_still_answers_from_dense(real_index):
    hits = Retriever(real_index).search("zxqv wvut", k=2)
    assert len(hits) == 2 and all(h.bm25_rank is None for h in hits)


def test_rrf_prefers_agreement():
    fused = rrf([["a", "b", "c"], ["b", "a", "d"]])
    assert max(fused, key=fused.get) in ("a", "b")
    assert fused["a"] == fused["b"] > fused["c"] > 0


def test_minilm_keeps_recent_vectors_and_gives_the_same_ones_again():
    from paperchat.rag.embeddings import MiniLMEmbedder

    embedder = MiniLMEmbedder(cache_size=2)
    first = embedder.embed(["SPELL uses self-play.", "SPaR refines with tree search."])
    again = embedder.embed(["SPaR refines with tree search.", "SPELL uses self-play.", "SPELL uses self-play."])
    assert np.array_equal(again, first[[1, 0, 0]])
    assert first.shape == (2, 384) and abs(float(np.linalg.norm(first[0])) - 1.0) < 1e-5
    embedder.embed(["A third sentence."])  # the least recently used vector goes
    assert list(embedder._cache) == ["SPELL uses self-play.", "A third sentence."]
    # a cached vector is the one the model gives for the text alone
    fresh = MiniLMEmbedder().embed(["SPELL uses self-play."])[0]
    assert np.allclose(fresh, first[0], atol=1e-5)


def test_relevance_gate_refuses_off_topic_at_once_and_lets_every_answerable_question_through(real_settings, real_index):
    """The gate (answer.min_relevance, a MiniLM cosine) refuses a question about nothing in the collection
    without calling the model, and no answerable question of the public set falls under it."""
    from paperchat.rag import prompts
    from paperchat.rag.pipeline import Pipeline

    from .fakes import ScriptedLLM

    llm = ScriptedLLM(lambda r: "SPELL uses self-play [1].")
    pipeline = Pipeline(real_settings, Retriever(real_index), llm)
    floor = real_settings.answer.min_relevance
    assert floor > 0
    for question in ("How many moons does Jupiter have?", "What is a good recipe for sourdough bread?"):
        answer = pipeline.ask(question)
        assert (answer.verdict, answer.answer, answer.citations) == ("refused", prompts.REFUSAL, [])
    assert llm.requests == []
    low = {
        q["id"]: round(pipeline.relevance(q["question"], pipeline.retriever.search(q["question"], k=4)), 3)
        for q in QUESTIONS
        if q["answerable"]
    }
    assert min(low.values()) >= floor, sorted(low.items(), key=lambda kv: kv[1])[:5]
    answer = pipeline.ask("What does SPELL propose?")
    assert len(llm.requests) == 1 and answer.verdict != "refused"
    # a name the papers hold keeps a question whatever its wording or language
    french = "Quel score F1 atteint SPARK sur ProcessBench ?"
    assert not pipeline.unrelated(french, pipeline.retriever.search(french, k=4))


def test_a_question_that_asks_two_things_shows_the_whole_best_paper(real_settings, real_index):
    """MiniLM ranks "surpass plain gradient descent by learning an iterative curvature correction" low for "what do
    they pick up beyond plain step-by-step optimization": asked as the second part of a question, it still reaches
    the model, because the paper that answers the first part is shown whole; asked alone, the usual budget holds."""
    from paperchat.rag.pipeline import Pipeline
    from paperchat.rag.text import split_sentences

    from .fakes import ScriptedLLM

    pipeline = Pipeline(real_settings, Retriever(real_index), ScriptedLLM(lambda r: ""))
    question = ("Which paper argues that trained attention-only networks act as mesa-optimizers, and what do they "
                "pick up beyond plain step-by-step optimization that lets them do better?")
    sources = pipeline.evidence(question, pipeline.retriever.search(question, k=real_settings.answer.sources))
    top = sources[0]
    assert top.paper.title == "Transformers learn in-context by gradient descent"
    assert top.excerpt == [s for s in split_sentences(top.paper.abstract)]
    assert any("curvature correction" in s for s in top.excerpt)
    first = question.split(", and")[0] + "?"
    alone = pipeline.evidence(first, pipeline.retriever.search(first, k=real_settings.answer.sources))
    assert sum(len(s.excerpt) for s in alone) <= real_settings.answer.evidence_sentences
    assert not any("curvature correction" in s for src in alone for s in src.excerpt)


def test_what_a_paper_introduces_is_read_where_it_introduces_it(real_settings, real_index):
    """"What does SINC introduce so that …?" shares most words with the abstract's own question ("How can we enable
    in-context learning without relying on …?"); the answer is where the paper introduces something."""
    from paperchat.rag.pipeline import Pipeline

    from .fakes import ScriptedLLM

    pipeline = Pipeline(real_settings, Retriever(real_index), ScriptedLLM(lambda r: ""))
    question = ("What does SINC introduce so that vision-language in-context learning does not depend on a large "
                "language model's own in-context ability?")
    sources = pipeline.evidence(question, pipeline.retriever.search(question, k=real_settings.answer.sources))
    assert sources[0].paper.title.startswith("SINC")
    assert any("introduces a meta-model" in s for s in sources[0].excerpt)


def test_wordllama_gives_unit_vectors_that_put_like_texts_together_from_the_installed_files():
    from paperchat.rag.embeddings import EMBEDDERS, WordLlamaEmbedder, default_embedder

    embedder = default_embedder("wordllama")
    assert isinstance(embedder, WordLlamaEmbedder) and set(EMBEDDERS) == {"minilm", "wordllama"}
    v = embedder.embed(["self-play for long documents", "self-play for long documents", "a diffusion video model"])
    assert v.shape == (3, 256) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.999 and v[0] @ v[2] < v[0] @ v[1]
    assert embedder.embed([]).shape == (0, 256)


def test_an_index_embedded_with_wordllama_finds_named_papers_and_weighs_sentences_with_minilm(tmp_path, seed_papers):
    from paperchat.rag.services import build_retriever
    from paperchat.rag.settings import Settings

    retriever = build_retriever(Settings(data_dir=tmp_path / "data", index={"embedder": "wordllama"}))
    retriever.index.ingest(seed_papers)
    assert retriever.embedder.name == "wordllama-l2-supercat-256"
    assert retriever.meaning.name == "all-MiniLM-L6-v2-onnx-int8"  # evidence and critique thresholds are MiniLM's
    answerable = [q for q in QUESTIONS if q["answerable"]]
    r5 = [recall_at([h.paper.title for h in retriever.search(q["question"], k=5)], q["papers"], 5) for q in answerable]
    assert np.mean(r5) >= 0.9


def test_bm25_scores_every_chunk_as_bm25s_does_and_keeps_the_best():
    """The index sums its saved per-token scores itself (bm25s's own sum is slow without numba): the same scores
    and the same best chunks as bm25s's ``retrieve``, a repeated query word counted twice as bm25s counts it."""
    import random

    from paperchat.rag.bm25 import bm25_tokens, build_bm25

    rng = random.Random(7)
    words = "reward policy token graph robot video speech protein search planner critic".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 40))) for _ in range(600)]
    index = build_bm25([f"c{i}" for i in range(len(texts))], texts)
    for query in ("robot planner", "video video speech", "protein", "graph token search critic"):
        docs, scores = index.retriever.retrieve([bm25_tokens([query])[0]], k=20, show_progress=False, n_threads=1)
        expected = {f"c{int(d)}": float(s) for d, s in zip(docs[0], scores[0])}
        got = index.search(query, 20)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        assert [round(s, 4) for _, s in got] == [round(s, 4) for s in sorted(expected.values(), reverse=True)]
        cut = min(s for _, s in got)  # chunks tied with the last one kept may stand in either order
        assert {c for c, s in got if s > cut} == {c for c, s in expected.items() if s > cut}
    assert index.search("unknownword", 5) == []


def test_a_question_about_how_something_works_shows_the_whole_best_paper(real_settings, real_index):
    """A mechanism's steps are spread over its abstract: "how does … work" shows the best paper whole (setting
    ``answer.whole_paper_for_process``), a question for one fact of the same paper keeps the usual budget."""
    from paperchat.rag.pipeline import Pipeline
    from paperchat.rag.text import split_sentences

    from .fakes import ScriptedLLM

    def evidence(settings, question):
        pipeline = Pipeline(settings, Retriever(real_index), ScriptedLLM(lambda r: ""))
        return pipeline.evidence(question, pipeline.retriever.search(question, k=settings.answer.sources))

    how = "Walk me through how Self-RAG works when it generates an answer."
    top = evidence(real_settings, how)[0]
    assert top.paper.title.startswith("Self-RAG") and top.excerpt == split_sentences(top.paper.abstract)
    off = real_settings.model_copy(deep=True)
    off.answer.whole_paper_for_process = False
    assert sum(len(s.excerpt) for s in evidence(off, how)) <= real_settings.answer.evidence_sentences
    fact = "Which model sizes of Self-RAG are reported?"
    assert sum(len(s.excerpt) for s in evidence(real_settings, fact)) <= real_settings.answer.evidence_sentences
