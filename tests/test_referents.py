"""The papers a question refers to, by name or description, and each side's question without the other."""

from __future__ import annotations

import pytest

from paperchat.rag.corpus import Paper
from paperchat.rag.plans import Planner
from paperchat.rag.referents import referents, without
from paperchat.rag.retrieval import Hit, Retriever
from paperchat.rag.shapes import classify
from paperchat.rag.text import content_words

PAPERS = [
    Paper(id="a", title="FooNet: Sparse Denoising of Field Recordings",
          abstract="We propose FooNet, which denoises bird-song recordings. FooNet beats WaveGrad on the BirdClef benchmark."),
    Paper(id="b", title="Leaf Spots at Scale: Detecting Crop Disease from Phone Photos",
          abstract="We collect 12,000 photos of tomato leaves and train a detector of crop disease that runs on phones."),
    Paper(id="c", title="Tuning Small Translators with Self-Rewards",
          abstract="We present Quill-Tune (QT), a translator trained with rewards it gives itself, on 9,000 sentences."),
    Paper(id="d", title="FLoRa: Low-Rank Adapters for Flowers",
          abstract="FLoRa adapts vision models to flower species with low-rank adapters."),
]


def search(text: str, k: int) -> list[Hit]:
    """Papers by shared words with ``text`` (a stand-in for the hybrid retriever's ranking)."""
    words = set(content_words(text))
    scored = [(len(words & set(content_words(f"{p.title} {p.abstract}"))), p) for p in PAPERS]
    ranked = [p for s, p in sorted(scored, key=lambda x: -x[0]) if s > 0]
    return [Hit(paper=p, chunk=p.abstract, chunk_id=f"{p.id}:0", score=1.0) for p in ranked[:k]]


def found(question: str) -> list[tuple[str, str]]:
    return [(r.words, r.hit.paper.id) for r in referents(question, search)]


def test_two_named_papers_are_found_in_the_order_asked():
    assert found("Which runs faster on phones, QT or FooNet?") == [("QT", "c"), ("FooNet", "a")]


def test_a_name_a_paper_only_uses_refers_to_no_paper():
    # BirdClef and WaveGrad are in FooNet's abstract, but neither is a paper's own name
    assert found("How does FooNet compare with WaveGrad on BirdClef?") == [("FooNet", "a")]


def test_a_one_word_name_must_match_its_capitals():
    assert found("Which flora do the tomato photos show?") == []
    assert [p for _, p in found("What does FLoRa adapt?")] == ["d"]


def test_a_description_refers_to_the_paper_it_fits():
    assert found("What do FooNet and the tomato leaf disease study each collect?") == [
        ("FooNet", "a"), ("tomato leaf disease study", "b")]
    # "a …" and a maker's noun describe a paper too
    assert found("Which is faster: FooNet or a phone-based tomato leaf disease detector?") == [
        ("FooNet", "a"), ("phone-based tomato leaf disease detector", "b")]
    # a description whose words no paper carries refers to nothing
    assert found("What does the quantum chemistry paper report?") == []
    # a description's words may be joined by slashes ("correct/partially-correct", "photo/leaf")
    assert found("What do FooNet and the tomato/leaf disease study each collect?") == [
        ("FooNet", "a"), ("tomato/leaf disease study", "b")]


def test_a_run_of_a_title_without_quotation_marks_refers_to_its_paper():
    assert found("how many sentences did tuning small translators with self-rewards use?") == [
        ("tuning small translators with self-rewards", "c")]


def test_a_title_run_that_a_description_leads_to_refers_with_the_whole_description():
    # the description's clause stops at "with"; the title's words run on past it
    question = "How many recordings do FooNet and the translation paper on small translators with self-rewards use?"
    refs = referents(question, search)
    assert [r.hit.paper.id for r in refs] == ["a", "c"]
    assert question[refs[1].start:refs[1].end] == "the translation paper on small translators with self-rewards"
    assert without(question, refs[1]) == "How many recordings do FooNet use?"


@pytest.mark.parametrize("question, other, expected", [
    ("Which adapters do FooNet and FLoRa each use?", "FLoRa", "Which adapters do FooNet use?"),
    ("Does QT or the tomato leaf disease study use more data?", "the tomato leaf disease study", "Does QT use more data?"),
    ("Compare FooNet with FLoRa: what does each adapt?", "FLoRa", "Compare FooNet: what does it adapt?"),
])
def test_without_leaves_a_question_about_the_other_paper_alone(question, other, expected):
    ref = next(r for r in referents(question, search) if r.words in other)
    assert without(question, ref) == expected


def test_a_question_about_two_papers_is_planned_as_a_comparison_whatever_its_wording(settings, fake_index):
    planner = Planner(settings, Retriever(fake_index))
    question = "What do SPELL and Music Transformer generate?"  # no comparison word, no "each"
    assert classify(question).shape != "comparison"
    plan = planner.plan(question, classify(question))
    assert plan.shape == "comparison" and plan.sides == ["SPELL", "Music Transformer"]
    assert [s.paper.title.split(":")[0] for s in plan.sources] == ["SPELL", "Music Transformer"]
    assert plan.side_questions == {"SPELL": "What do SPELL generate?", "Music Transformer": "What do Music Transformer generate?"}


def test_a_comparison_of_two_things_inside_one_paper_is_a_question_about_it(settings, fake_index):
    planner = Planner(settings, Retriever(fake_index))
    question = "In SPELL, is the questioner or the verifier trained with more data?"
    plan = planner.plan(question, classify(question))
    assert plan.shape != "comparison"


def test_a_title_given_whole_does_not_shape_the_question(settings, fake_index, seed_papers):
    planner = Planner(settings, Retriever(fake_index))
    title = next(p.title for p in seed_papers if " than " in p.title.lower())  # "… is More than …"
    question = f"How many upvotes did '{title}' get?"
    assert classify(question).shape == "comparison"  # its words alone read as a comparison
    assert planner.plan(question, classify(question)).shape == "metadata"


def test_a_question_naming_one_paper_is_planned_from_that_paper_alone(settings, fake_index):
    question = "How does SPELL keep its three roles improving together?"
    plan = Planner(settings, Retriever(fake_index)).plan(question, classify(question))
    assert [s.paper.title.split(":")[0] for s in plan.sources] == ["SPELL"]
    # switched off, other papers' sentences stand beside it again (the hybrid search finds some)
    off = settings.model_copy(update={"answer": settings.answer.model_copy(update={"named_paper_alone": False})})
    assert len(Planner(off, Retriever(fake_index)).plan(question, classify(question)).sources) > 1


def test_a_which_model_question_about_a_named_paper_is_a_question_about_it(settings, fake_index):
    planner = Planner(settings, Retriever(fake_index))
    about = "Which model does SPARK use in its reinforcement learning runs?"
    assert classify(about).shape == "which-paper"  # its words alone read as asking for a paper
    plan = planner.plan(about, classify(about))
    assert plan.shape == "factoid" and plan.sources[0].paper.title.startswith("SPARK")
    # a question that describes a paper and asks for it is still a which-paper question
    which = "Which method trains one model to ask, answer and verify questions over long documents?"
    assert planner.plan(which, classify(which)).shape == "which-paper"
