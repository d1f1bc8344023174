"""A comparison that asks one thing of both sides is rewritten by the model as one question per side.

Pipelines run over a real on-disk Chroma index of the seed papers with the deterministic test embedder and a
scripted model (the interfaces of the real ones).
"""

from __future__ import annotations

import json

from paperchat.rag import prompts
from paperchat.rag.pipeline import Pipeline
from paperchat.rag.retrieval import Retriever
from paperchat.rag.side_split import own_questions

from .fakes import ScriptedLLM

SIDES = ["FooNet", "the BarGAN paper"]


def _split(first: str, second: str) -> str:
    return json.dumps({"question_about_first": first, "question_about_second": second})


def test_each_question_goes_to_the_side_it_names_whatever_the_order():
    reply = _split("How many layers does the BarGAN paper stack", "How many layers does FooNet stack?")
    assert own_questions(reply, SIDES, "Which is deeper, FooNet or the BarGAN paper?") == {
        "FooNet": "How many layers does FooNet stack?",
        "the BarGAN paper": "How many layers does the BarGAN paper stack?",
    }


def test_a_reply_that_is_not_one_question_about_each_side_is_not_used():
    question = "Which is deeper, FooNet or the BarGAN paper?"
    assert own_questions(_split("FooNet", "BarGAN paper"), SIDES, question) == {}  # names, not questions
    assert own_questions(_split(question, "How deep is FooNet?"), SIDES, question) == {}  # the comparison copied
    assert own_questions(_split("How deep is FooNet?", "How deep is FooNet really?"), SIDES, question) == {}
    assert own_questions("not json", SIDES, question) == {}


def _model(split_reply: str | None, seen: list[str]):
    def reply(request):
        if request.json_schema == prompts.SIDE_SPLIT_SCHEMA:
            seen.append("split")
            return split_reply or "{}"
        if request.json_schema is not None:
            return '{"quote": "", "verdict": "supported"}'
        prompt = request.messages[-1].content
        seen.append(next(line for line in prompt.splitlines() if line.startswith("Question:")))
        if "about SPELL only" in prompt:
            return "SPELL has a single model play questioner, responder and verifier [1]."
        return "Music Transformer generates minute-long compositions [2]."

    return ScriptedLLM(reply)


def test_each_side_is_drafted_from_the_question_the_model_wrote_for_it(fake_index, settings):
    seen: list[str] = []
    split = _split("How long are the inputs SPELL handles?", "How long are the pieces Music Transformer generates?")
    Pipeline(settings, Retriever(fake_index), _model(split, seen)).ask(
        "Which handles longer sequences, SPELL or Music Transformer?"
    )
    assert seen[:3] == [
        "split",
        "Question: How long are the inputs SPELL handles?",
        "Question: How long are the pieces Music Transformer generates?",
    ]


def test_an_unusable_split_falls_back_to_the_comparisons_own_words(fake_index, settings):
    seen: list[str] = []
    Pipeline(settings, Retriever(fake_index), _model('{"question_about_first": "SPELL"}', seen)).ask(
        "SPELL vs Music Transformer: how long are the inputs each one handles?"
    )
    assert seen[0] == "split"
    assert all("how long" in q for q in seen[1:3]) and "Music" not in seen[1] and "SPELL" not in seen[2], seen


def test_two_asks_are_each_sides_own_clause_and_the_setting_turns_the_split_off(fake_index, settings):
    seen: list[str] = []
    pipeline = Pipeline(settings, Retriever(fake_index), _model(None, seen))
    pipeline.ask("What roles does SPELL's model play, and how long are the pieces Music Transformer generates?")
    assert "split" not in seen and len(seen) >= 2
    seen.clear()
    # an ask for each side, by position rather than by name: the model would merge the two asks into one
    pipeline.ask("SPELL and Music Transformer: what roles does the first one's model play, and how long are the pieces "
                 "the second generates?")
    assert "split" not in seen
    seen.clear()
    # a second ask about how the two relate ("and by how much?") is no side's own: the comparison is split
    pipeline.ask("Are SPELL's documents longer or shorter than Music Transformer's pieces, and by how much?")
    assert seen[:1] == ["split"]
    seen.clear()
    off = settings.model_copy(update={"answer": settings.answer.model_copy(update={"model_side_questions": False})})
    question = "Which handles longer sequences, SPELL or Music Transformer?"
    Pipeline(off, Retriever(fake_index), _model(None, seen)).ask(question)
    assert "split" not in seen and len(seen) >= 2
