"""Names typed by the model (rag/kinds.py) and the ``asked_kind`` check that uses them, with scripted readers."""

from __future__ import annotations

import json

from paperchat.rag.corpus import Paper
from paperchat.rag.critique import Critic, Source
from paperchat.rag.kinds import KINDS, NameKinds
from paperchat.rag.verify import Rereader

from .fakes import ScriptedLLM, read_blank

LARK = Paper(
    id="lark",
    title="LARK: Listening Agents that Refine their Knowledge",
    abstract=(
        "We present LARK, an agent that refines what it knows by listening to its own answers. We gather dialogues "
        "from the Common Crawl archive for training. LARK is built on Orca-3B and is compared with Heron-13B. On "
        "DialogQA, LARK lifts accuracy from 51.0 to 58.4."
    ),
)
QUESTION = "Which benchmark does LARK report its accuracy gain on?"


def typer(kinds: dict[str, str] | None = None, reply: str | None = None):
    """A reader that types names as ``kinds`` says ("other" for the rest), or replies ``reply``; it answers other
    re-reading requests faithfully."""
    def read(request):
        if request.json_schema is None:
            return read_blank(request)
        if reply is not None:
            return reply
        return json.dumps({n: (kinds or {}).get(n, "other") for n in request.json_schema["properties"]})
    return read


def critic(reader) -> tuple[Critic, ScriptedLLM]:
    llm = ScriptedLLM([], reader=reader)
    return Critic(rereader=Rereader(llm), kinds=NameKinds(llm)), llm


def test_a_paper_is_typed_once_and_an_unreadable_reply_is_not_kept():
    llm = ScriptedLLM([], reader=typer({"DialogQA": "benchmark or dataset", "Orca-3B": "model"}))
    kinds = NameKinds(llm)
    assert kinds.named(LARK, "benchmark or dataset") == ["DialogQA"]
    assert kinds.named(LARK, "model") == ["Orca-3B"] and len(llm.rereads) == 1  # the second ask is answered from the cache
    # every name the schema offers is one of the abstract's, and every kind one of KINDS
    schema = llm.rereads[0].json_schema
    assert set(schema["properties"]) >= {"Common Crawl", "Orca-3B", "Heron-13B", "DialogQA"}
    assert all(p["enum"] == list(KINDS) for p in schema["properties"].values())
    broken = NameKinds(ScriptedLLM([], reader=typer(reply="DialogQA is a benchmark")))
    assert broken.of(LARK) == {} and LARK.id not in broken.cache


def test_an_answer_naming_a_source_of_data_for_a_benchmark_question_gets_the_benchmarks_sentence():
    check, _ = critic(typer({"DialogQA": "benchmark or dataset", "Common Crawl": "organization or tool"}))
    draft = "LARK gathers dialogues from the Common Crawl archive [1]."  # true, and names no benchmark
    result = check.check(draft, [Source(1, LARK, [])], question=QUESTION)
    assert not result.claims[0].kept and "other than a benchmark" in result.claims[0].reasons[0]
    added = [c for c in result.claims if c.kept]
    assert [c.text for c in added] == ["On DialogQA, LARK lifts accuracy from 51.0 to 58.4."]
    assert "DialogQA" in result.answer and "Common Crawl" not in result.answer
    # switched off, the answer stays as drafted
    llm = ScriptedLLM([], reader=typer({"DialogQA": "benchmark or dataset", "Common Crawl": "organization or tool"}))
    off = Critic(rereader=Rereader(llm), kinds=NameKinds(llm), disabled=frozenset({"asked_kind", "reanswer"}))
    assert off.check(draft, [Source(1, LARK, [])], question=QUESTION).answer.startswith("LARK gathers dialogues")


def test_an_answer_that_names_the_kind_asked_or_a_question_of_another_kind_is_left_alone():
    check, llm = critic(typer({"DialogQA": "benchmark or dataset", "Common Crawl": "organization or tool"}))
    right = check.check("On DialogQA, LARK lifts accuracy from 51.0 to 58.4 [1].", [Source(1, LARK, [])], question=QUESTION)
    assert right.claims[0].text == "On DialogQA, LARK lifts accuracy from 51.0 to 58.4." and right.claims[0].kept
    assert not [c for c in right.claims if any("asks for a benchmark" in r for r in c.reasons)]
    how = check.check("LARK listens to its own answers [1].", [Source(1, LARK, [])], question="How does LARK learn?")
    assert how.claims[0].kept and not [c for c in how.claims if any("asks for a" in r for r in c.reasons)]
    assert not [r for r in llm.rereads if r.json_schema is not None][1:]  # typed once, for the first question only


def test_a_claim_with_a_name_the_typing_does_not_know_is_kept_beside_the_added_sentence():
    # "Heron-13B" is typed a model: a benchmark question's answer that names only it answered something else; a
    # name the typing never saw ("OrbitNet") proves nothing either way
    check, _ = critic(typer({"DialogQA": "benchmark or dataset", "Heron-13B": "model"}))
    unknown = check.check("LARK is tested against OrbitNet [1].", [Source(1, LARK, [])], question=QUESTION)
    assert unknown.claims[0].text.startswith("LARK is tested against OrbitNet")
    assert any("DialogQA" in c.text and c.kept for c in unknown.claims)


def test_a_comparison_side_that_named_the_wrong_kind_gets_its_papers_model():
    other = Paper(id="o", title="Heron", abstract="Heron is trained from Pike-7B on translated chat logs.")
    parts = [
        ("LARK is tested on DialogQA [1].", "Which base model is LARK built on?", ""),  # a benchmark, not a model
        ("Heron is trained from Pike-7B [2].", "Which base model is Heron built on?", ""),
    ]
    kinds = {"Orca-3B": "model", "Heron-13B": "model", "Pike-7B": "model", "DialogQA": "benchmark or dataset"}
    check, _ = critic(typer(kinds))
    result = check.check_parts(parts, [Source(1, LARK, []), Source(2, other, [])])
    assert "Orca-3B" in result.answer and "Pike-7B" in result.answer and "tested on DialogQA" not in result.answer
    # a side that names any model of its abstract counts as answered, a rival's included (a known limit: the
    # typing says what kind a name is, not whose it is)
    rival = check.check_parts([("LARK is compared with Heron-13B [1].", "Which base model is LARK built on?", "")],
                              [Source(1, LARK, [])])
    assert "Orca-3B" not in rival.answer
