"""The shipped question sets, checked against the seed papers with the scorer's own matching."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paperchat.eval import metrics
from paperchat.eval.questions import load_questions
from paperchat.rag.corpus import Paper, normalize_text

ROOT = Path(__file__).resolve().parent.parent
SETS = {
    "questions": ROOT / "eval" / "questions.jsonl",
    "heldout": ROOT / "eval" / "heldout.jsonl",
    "fresh": ROOT / "eval" / "fresh.jsonl",
    "fresh2": ROOT / "eval" / "fresh2.jsonl",
    "fresh3": ROOT / "eval" / "fresh3.jsonl",
    "fresh4": ROOT / "eval" / "fresh4.jsonl",
    "fresh5": ROOT / "eval" / "fresh5.jsonl",
    "fresh6": ROOT / "eval" / "fresh6.jsonl",
    "fresh7": ROOT / "eval" / "fresh7.jsonl",
    "fresh8": ROOT / "eval" / "fresh8.jsonl",
    "fresh9": ROOT / "eval" / "fresh9.jsonl",
    "fresh10": ROOT / "eval" / "fresh10.jsonl",
    "fresh11": ROOT / "eval" / "fresh11.jsonl",
    "fresh12": ROOT / "eval" / "fresh12.jsonl",
    "fresh14": ROOT / "eval" / "fresh14.jsonl",
    "fresh15": ROOT / "eval" / "fresh15.jsonl",
    "fresh16": ROOT / "eval" / "fresh16.jsonl",
    "fresh17": ROOT / "eval" / "fresh17.jsonl",
    "fresh18": ROOT / "eval" / "fresh18.jsonl",
    "fresh19": ROOT / "eval" / "fresh19.jsonl",
    "fresh20": ROOT / "eval" / "fresh20.jsonl",
    "fresh21": ROOT / "eval" / "fresh21.jsonl",
    "fresh22": ROOT / "eval" / "fresh22.jsonl",
    "fresh23": ROOT / "eval" / "fresh23.jsonl",
    "fresh24": ROOT / "eval" / "fresh24.jsonl",
    # follow-up questions: each row also has a "history" of earlier turns (see the test at the end)
    "conversations": ROOT / "eval" / "conversations.jsonl",
    "conversations2": ROOT / "eval" / "conversations2.jsonl",
}
#: Question shapes of issue 12 and the least number of rows each set holds of them.
NEW_SHAPES = ("paraphrased", "comparison", "list", "metadata", "near-miss", "false-premise", "off-topic")
MINIMUM = {"questions": 10, "heldout": 4, "fresh": 2, "fresh2": 2, "fresh3": 2, "fresh4": 2, "fresh5": 2, "fresh6": 2, "fresh7": 2, "fresh8": 2, "fresh9": 2, "fresh10": 2, "fresh11": 2, "fresh12": 2, "fresh14": 2, "fresh15": 2, "fresh16": 2, "fresh17": 2, "fresh18": 2, "fresh19": 2, "fresh20": 2, "fresh21": 2, "fresh22": 2, "fresh23": 2, "fresh24": 2, "conversations": 0, "conversations2": 0}
#: Sets whose paraphrased rows were written without the rule below (no title word, no name of the paper, such as
#: an acronym its abstract uses): the helper was not given it, and a set is not edited once its first run has
#: begun. Their paraphrased rows are easier than the other sets' (some use a title word).
WRITTEN_WITHOUT_THIS_RULE = {"fresh5"}
#: Sets kept as written although some rows break the shape and false-premise rules below (found after their first
#: run, which a set is not edited after): fresh7 has a comparison whose two sides share one keyword ("seven" for
#: both) and false premises that are a rival's number the abstract does state, given as a string, not a list.
KEPT_AS_WRITTEN = {"fresh7"}
#: Rows kept as written although they break a rule below, found when the set's first run had begun: fresh8's e11
#: and e37 (paraphrases using the abstract's acronym for the paper, or a title word), e14, e30 and e43 (false premises given
#: as a sentence or a claim, not a value the question quotes) and e39 (a near-miss asking for the author count, which the paper's record in the other listing has);
#: fresh10's t20 (a paraphrase using the abstract's acronym MRI) and t36 (a metadata question asking for a link the record lacks);
#: fresh11's u09 (a paraphrase using MRI too), u14, u26 and u45 (paraphrases using a title word or two).
#: fresh14's x11 and x12 (paraphrases using the title's "They" and "MRI"); x32, x33 and x35 (lists whose reference
#: answers name a paper by its short name or a description, not the keyword's title word).
#: fresh15's y02, y13, y26, y33 and y47: paraphrases using a title word or two (its helper's row format asked for a
#: description of the paper but did not give this rule), so fresh15's paraphrased rows are easier than the rule's.
#: fresh16's z28: a paraphrase using the abstract's acronym MRI.
#: fresh17's a45: a false premise given as a phrase ("… relative improvement over DPO") the question does not quote.
#: fresh20's p45: a false premise whose wrong number the abstract does give, for another system (its baseline), so
#: its reference answer both corrects and names it.
#: fresh21's j44 and j45: the same kind (57.70% is GRAO's gain over SFT, asked as its gain over PPO; 93% is the
#: abstract's figure for another setting than the one asked).
#: fresh23's l08: a paraphrase using the abstract's acronym MRI.
KNOWN_BREAKS = {"fresh8": {"e11", "e14", "e30", "e37", "e39", "e43"}, "fresh10": {"t20", "t36"}, "fresh11": {"u09", "u14", "u26", "u45"},
                "fresh14": {"x11", "x12", "x32", "x33", "x35"}, "fresh15": {"y02", "y13", "y26", "y33", "y47"},
                "fresh16": {"z28"}, "fresh17": {"a45"}, "fresh20": {"p45"},
                "fresh21": {"j44", "j45"}, "fresh23": {"l08"}}
#: False-premise rows written as answerable (fresh17's helper was told so by mistake; scored as written, their
#: corrections counted with the answerable rows: eval/RESULTS.md gives both ways of counting).
ANSWERABLE_PREMISES = {"fresh17": {"a43", "a44", "a45"}}
UNANSWERABLE_SHAPES = ("near-miss", "false-premise", "off-topic", "unanswerable")

#: Function words, and the words nearly every title here has, that a paraphrase may still use.
STOP = set(
    "a an and the of for to in on at by with from via as is are be its it or not into than that this what which who "
    "how does do can one more through within toward towards beyond about over under v s vs "
    "model models language large llm llms".split()
)
#: Capitalised terms of the field, not the name of any one paper.
GENERIC_CAPS = {
    "llm", "llms", "vlm", "vlms", "lvlms", "rl", "rlhf", "sft", "mt", "mcts", "prm", "prms", "ssl", "icl", "gpt-4",
    "dpo", "fsas", "rms", "mle", "rpa", "fms", "dit", "mae", "sota", "cnn", "ai", "qa", "lpips", "gsm8k", "pass@100",
}


def _rows(name):
    rows, problems = load_questions(SETS[name])
    return rows, problems


def record_text(paper: Paper) -> str:
    """What a paper's record says, as one text: title, abstract and the listing's metadata."""
    meta = []
    if paper.authors is not None:
        meta.append(f"{paper.authors} authors")
    if paper.date:
        meta.append(paper.date)
    if paper.upvotes is not None:
        meta.append(f"{paper.upvotes} upvotes")
    meta += paper.urls
    return " \n ".join([paper.title, paper.abstract, *meta])


def words(text: str) -> list[str]:
    """Lower-case words, hyphenated words kept whole."""
    return re.findall(r"[a-z0-9]+(?:[-'.][a-z0-9]+)*", normalize_text(text))


def names_of(paper: Paper) -> set[str]:
    """The paper's own names: the part of the title before a colon, and capitalised terms (two or more
    capitals) of the title or of the abstract (the latter when used at least twice, as a method's name is)."""
    out = set()
    head, colon, _ = paper.title.partition(":")
    if colon and len(head.split()) <= 3:
        out.add(normalize_text(head))
    caps = re.compile(r"\b[\w@.-]*[A-Z][\w@.-]*[A-Z][\w@.-]*\b")
    out |= {normalize_text(t).strip(".-") for t in caps.findall(paper.title)}
    found = [normalize_text(t).strip(".-") for t in caps.findall(paper.abstract)]
    out |= {t for t in found if found.count(t) >= 2}
    for m in re.finditer(r"\b(?:propose|introduce|present|named|called|termed)\b((?:\W+[\w@.-]+){1,6})", paper.abstract):
        out |= {normalize_text(t).strip(".-") for t in caps.findall(m.group(1))}  # "we propose ... DiT-Mem"
    return {n for n in out if n and n not in GENERIC_CAPS}


@pytest.fixture(scope="module")
def by_title(seed_papers):
    return {normalize_text(p.title): p for p in seed_papers}


@pytest.mark.parametrize("name", list(SETS))
def test_sets_load_without_problems_and_ids_are_unique(name):
    rows, problems = _rows(name)
    assert [str(p) for p in problems] == []
    ids = [r.id for r in rows]
    assert len(ids) == len(set(ids))


def test_public_and_heldout_ids_do_not_collide():
    public = {r.id for r in _rows("questions")[0]}
    held = {r.id for r in _rows("heldout")[0]}
    assert public.isdisjoint(held)


@pytest.mark.parametrize("name", list(SETS))
def test_each_new_shape_has_enough_rows(name):
    rows, _ = _rows(name)
    counts = {shape: sum(r.type == shape for r in rows) for shape in NEW_SHAPES}
    assert all(n >= MINIMUM[name] for n in counts.values()), counts


@pytest.mark.parametrize("name", list(SETS))
def test_every_listed_paper_is_in_the_corpus(name, by_title):
    rows, _ = _rows(name)
    missing = [(r.id, t) for r in rows for t in r.papers if normalize_text(t) not in by_title]
    assert missing == []


@pytest.mark.parametrize("name", list(SETS))
def test_answerable_keywords_are_in_a_listed_paper(name, by_title):
    rows, _ = _rows(name)
    bad = []
    for r in rows:
        if not r.answerable:
            continue
        texts = [record_text(by_title[normalize_text(t)]) for t in r.papers]
        assert texts, f"{r.id}: an answerable row must name its papers"
        bad += [(r.id, k) for k in r.keywords if not any(metrics.keyword_in(k, t) for t in texts)]
    assert bad == []


@pytest.mark.parametrize("name", list(SETS))
def test_shape_rules(name):
    rows, _ = _rows(name)
    for r in rows:
        if name in KEPT_AS_WRITTEN:
            continue
        if r.id not in ANSWERABLE_PREMISES.get(name, ()):
            assert r.answerable == (r.type not in UNANSWERABLE_SHAPES), r.id
        if r.answerable:
            assert r.answer.strip(), f"{r.id}: every answerable row has a reference answer"
            if r.id not in KNOWN_BREAKS.get(name, ()):
                assert metrics.keywords_present(r.answer, r.keywords), f"{r.id}: the reference answer lacks a keyword"
        if r.type == "comparison":
            assert len(r.papers) == 2 and len(r.keywords) >= 2, r.id
        if r.type == "list":
            assert 2 <= len(r.papers) <= 4 and len(r.keywords) == len(r.papers), r.id
        if r.type in ("paraphrased", "metadata", "near-miss", "false-premise"):
            assert len(r.papers) == 1, r.id
        if r.type == "off-topic":
            assert r.papers == [], r.id
        if r.type == "false-premise":
            corrects, premise = r.extra.get("corrects"), r.extra.get("premise")
            assert corrects and premise, f"{r.id}: a false-premise row names the true fact and the false one"
            if r.id not in KNOWN_BREAKS.get(name, ()):
                assert metrics.corrects_premise(r.answer, corrects, premise), r.id


@pytest.mark.parametrize("name", list(SETS))
def test_false_premise_facts_hold_and_the_premise_is_false(name, by_title):
    rows, _ = _rows(name)
    for r in (r for r in rows if r.type == "false-premise" and name not in KEPT_AS_WRITTEN and r.id not in KNOWN_BREAKS.get(name, ())):
        text = record_text(by_title[normalize_text(r.papers[0])])
        premise = [r.extra["premise"]] if isinstance(r.extra["premise"], str) else r.extra["premise"]
        assert all(metrics.keyword_in(k, text) for k in r.extra["corrects"]), r.id
        assert not any(metrics.keyword_in(k, text) for k in premise), r.id
        assert all(metrics.keyword_in(k, r.question) for k in premise), r.id


@pytest.mark.parametrize("name", list(SETS))
def test_metadata_rows_ask_for_fields_the_record_has_and_near_misses_for_what_it_lacks(name, by_title):
    rows, _ = _rows(name)
    for r in rows:
        if r.type not in ("metadata", "near-miss") or r.id in KNOWN_BREAKS.get(name, ()):
            continue
        paper = by_title[normalize_text(r.papers[0])]
        q = set(words(r.question))
        asks = {
            "authors": bool(q & {"author", "authors"}), "upvotes": bool(q & {"upvote", "upvotes"}),
            "date": "listed" in q and not q & {"author", "authors"},
            # "on the page" is the listing page itself, not a link to the project's page
            "urls": bool(q & {"code", "link", "github"}) or bool(re.search(r"(?<!on the )\bpage\b", r.question)),
        }
        present = {"authors": paper.authors is not None, "upvotes": paper.upvotes is not None,
                   "date": bool(paper.date), "urls": bool(paper.urls)}
        for field, asked in asks.items():
            if asked and r.type == "metadata":
                assert present[field], f"{r.id} asks for {field}, which the record lacks"
            if asked and r.type == "near-miss":
                assert not present[field], f"{r.id} asks for {field}, which the record has"


@pytest.mark.parametrize("name", list(SETS))
def test_paraphrased_questions_use_no_title_word_and_no_name(name, by_title):
    rows, _ = _rows(name)
    for r in (r for r in rows if r.type == "paraphrased" and r.id not in KNOWN_BREAKS.get(name, ())):
        paper = by_title[normalize_text(r.papers[0])]
        title_words = {w for w in words(paper.title) if w not in STOP}
        if name in WRITTEN_WITHOUT_THIS_RULE:
            continue
        used = title_words & set(words(r.question))
        assert not used, f"{r.id} uses title words {sorted(used)}"
        q = normalize_text(r.question)
        named = [n for n in names_of(paper) if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", q)]
        assert not named, f"{r.id} names the paper: {named}"


def test_names_of_finds_acronyms_and_method_names(by_title):
    assert "spell" in names_of(by_title[normalize_text("SPELL: Self-Play Reinforcement Learning for evolving Long-Context Language Models")])
    pit = by_title[normalize_text("Enable Language Models to Implicitly Learn Self-Improvement From Data")]
    assert "pit" in names_of(pit)
    assert "dit-mem" in names_of(by_title[normalize_text("Learning Plug-and-play Memory for Guiding Video Diffusion Models")])


def test_reworded_and_terse_answers_are_there_and_hold_the_keywords():
    rows, _ = _rows("questions")
    with_both = [r for r in rows if r.answerable and r.extra.get("reworded") and r.extra.get("terse")]
    assert len(with_both) >= 40
    assert {r.type for r in with_both} >= {"paraphrased", "comparison", "list", "metadata"}
    for r in with_both:
        for kind in ("reworded", "terse"):
            text = r.extra[kind]
            assert metrics.keywords_present(text, r.keywords), f"{r.id} {kind} lacks a keyword"
            cited = sorted({int(n) for n in re.findall(r"\[(\d+)\]", text)})
            assert cited == list(range(1, len(r.papers) + 1)), f"{r.id} {kind} cites {cited}"
        assert normalize_text(r.extra["reworded"]) != normalize_text(r.answer)


def test_conversation_rows_follow_a_history_of_earlier_turns():
    rows, _ = _rows("conversations")
    assert len(rows) >= 16
    for r in rows:
        assert r.history, f"{r.id}: a follow-up needs earlier turns"
        roles = [role for role, _ in r.history]
        assert roles == ["user", "assistant"] * (len(roles) // 2), r.id  # question and answer, turn by turn
        assert all(text.strip() for _, text in r.history), r.id
