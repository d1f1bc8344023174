"""Verification by re-reading (rag/verify.py) and its place in the critique, with scripted readers."""

from __future__ import annotations

import pytest

from paperchat.rag import prompts
from paperchat.rag.corpus import Paper
from paperchat.rag.critique import Critic, Source
from paperchat.rag.followup import listed_items, resolve_position
from paperchat.rag.verify import Rereader, blanks, same_value

from .fakes import ScriptedLLM, read_blank

ZETA = Paper(
    id="zeta",
    title="ZetaNorm: Layer Statistics for Stable Low-Precision Training",
    abstract=(
        "We present ZetaNorm, a normalisation layer for 4-bit training. On the OrbitQA benchmark ZetaNorm reaches "
        "71.2 accuracy, while the strongest baseline, RangeClip, reaches 64.8. Training on 2.5B tokens takes 9 hours "
        "on eight GPUs. ZetaNorm is built on the Falcon-7B backbone."
    ),
)


def reader_said(text: str):
    """A reader that fills every blank with ``text`` (a model that misreads, or one that finds nothing)."""
    return lambda request: text


def test_a_faithful_reader_keeps_a_right_claim_and_asks_only_for_its_numbers_and_names():
    llm = ScriptedLLM([], reader=read_blank)
    result = Rereader(llm).check("On OrbitQA, ZetaNorm reaches 71.2 accuracy.", ZETA, given="How well does ZetaNorm do?")
    assert result.verdict == "kept" and result.text == "On OrbitQA, ZetaNorm reaches 71.2 accuracy."
    assert [r.blank.value for r in result.readings] == ["OrbitQA", "71.2"]  # not the paper's own name
    assert all(r.outcome == "same" for r in result.readings) and len(llm.rereads) == 2


def test_a_rivals_score_given_as_the_papers_own_is_repaired_with_the_abstracts_value():
    llm = ScriptedLLM([], reader=read_blank)
    result = Rereader(llm).check("ZetaNorm reaches 64.8 accuracy.", ZETA)
    assert result.verdict == "repaired" and result.text == "ZetaNorm reaches 71.2 accuracy."
    assert "71.2" in result.readings[0].reason


def test_a_value_the_abstract_does_not_state_is_withheld():
    llm = ScriptedLLM([], reader=reader_said("not stated"))
    result = Rereader(llm).check("ZetaNorm trains on 12 GPUs.", ZETA)
    assert result.verdict == "withheld" and result.readings[0].outcome == "not stated"


def test_not_stated_for_a_value_the_abstract_has_word_for_word_is_no_evidence_against_it():
    llm = ScriptedLLM([], reader=reader_said("not stated"))
    assert Rereader(llm).check("Training takes 9 hours.", ZETA).verdict == "kept"


def test_a_fill_that_is_not_in_the_abstract_does_not_repair():
    llm = ScriptedLLM([], reader=reader_said("93.5"))  # the reader's own invention
    result = Rereader(llm).check("ZetaNorm reaches 71.2 accuracy.", ZETA)
    assert result.verdict == "kept" and result.readings[0].outcome == "unreadable"
    invented = Rereader(ScriptedLLM([], reader=reader_said("93.5"))).check("ZetaNorm reaches 80.0 accuracy.", ZETA)
    assert invented.verdict == "withheld"  # neither the claim's value nor the fill is in the abstract


def test_a_fill_that_copies_the_claims_other_value_repairs_nothing():
    # a reader that fills "on ____ and RangeClip" with the neighbour it can see, not with the blank's value
    llm = ScriptedLLM([], reader=reader_said("RangeClip"))
    result = Rereader(llm).check("ZetaNorm is compared with Falcon-7B and RangeClip.", ZETA)
    assert result.verdict == "kept" and result.text == "ZetaNorm is compared with Falcon-7B and RangeClip."
    assert result.readings[0].outcome == "unreadable"


def test_a_wrong_backbone_name_is_repaired_and_scale_words_compare_as_numbers():
    llm = ScriptedLLM([], reader=read_blank)
    result = Rereader(llm).check("ZetaNorm is built on the Llama-2-13B backbone.", ZETA)
    assert result.verdict == "repaired" and result.text == "ZetaNorm is built on the Falcon-7B backbone."
    assert same_value("2.5B", "2,500,000,000 tokens", "number") and not same_value("2.5B", "25B", "number")


def test_the_reread_prompt_leads_with_the_abstract_and_holds_no_draft_or_question():
    llm = ScriptedLLM([], reader=read_blank)
    Rereader(llm).check("ZetaNorm reaches 71.2 accuracy on OrbitQA.", ZETA, given="Secret question words?")
    first, second = (r.messages[1].content for r in llm.rereads)
    lead = f'Abstract of "{ZETA.title}":\n{ZETA.abstract}\n\n'
    assert first.startswith(lead) and second.startswith(lead)  # one cached prefix for every blank of the paper
    assert "Secret question" not in first and prompts.BLANK in first


def test_blanks_skip_names_the_question_gives_and_short_metric_names():
    found = [b.value for b in blanks("ZetaNorm beats RangeClip by 6.4 F1 on OrbitQA.", "Does it beat RangeClip?", ZETA)]
    assert found == ["6.4", "OrbitQA"]


def test_a_number_bound_by_a_respectively_list_is_not_asked_of_the_reader_again():
    kite = Paper(id="kite", title="Kite: Preference Tuning with Ranked Samples", abstract=(
        "Kite achieves 41.2%, 12.9% and 3.4% relative improvements over SFT, DPO and PPO baselines respectively."))
    src = Source(n=1, paper=kite, excerpt=[kite.abstract])
    llm = ScriptedLLM([], reader=reader_said("41.2%"))  # a reader that takes the list's first number
    result = Critic(None, rereader=Rereader(llm)).check(
        "Kite reports a relative improvement of 3.4% over DPO [1].", [src], question="How much does Kite gain over DPO?")
    first = result.claims[0]
    assert first.text == "Kite reports a relative improvement of 12.9% over DPO.", first.reasons
    assert not any(r.startswith("re-read") for r in first.reasons)  # its one number was bound: nothing to re-read


def test_the_critique_repairs_a_bound_wrong_number_and_says_why():
    src = Source(n=1, paper=ZETA, excerpt=[ZETA.abstract])
    llm = ScriptedLLM([], reader=read_blank)
    critic = Critic(None, rereader=Rereader(llm))
    result = critic.check("On OrbitQA, ZetaNorm reaches 64.8 accuracy [1].", [src], question="How accurate is ZetaNorm?")
    assert result.verdict == "supported" or result.verdict == "partially supported"
    claim = result.claims[0]
    assert claim.verdict == "corrected" and "71.2" in claim.text and "71.2" in result.answer
    assert any("re-read" in r for r in claim.reasons)


def test_the_critique_without_a_rereader_asks_no_model():
    src = Source(n=1, paper=ZETA, excerpt=[ZETA.abstract])
    llm = ScriptedLLM([], reader=read_blank)
    Critic(None).check("On OrbitQA, ZetaNorm reaches 64.8 accuracy [1].", [src], question="How accurate is it?")
    assert llm.rereads == [] and llm.requests == []


def test_a_claim_in_the_readers_own_words_is_judged_by_its_values_when_they_are_re_read():
    src = Source(n=1, paper=ZETA, excerpt=[ZETA.abstract])
    worded = "The four-bit normaliser from this study scores 71.2 in its headline evaluation."  # no citation
    asked = "What does the low-precision normalisation layer score?"

    def critic(reader):
        return Critic(None, rereader=Rereader(ScriptedLLM([], reader=reader)))

    kept = critic(reader_said("71.2")).check(worded, [src], question=asked)  # a reader that finds the value
    claim = kept.claims[0]
    assert claim.kept and claim.sources == [1] and "evaluation [1]" in kept.answer
    assert any("states its numbers and names" in r for r in claim.reasons)
    # without a re-reader to check its values, the wording is the test, and it is not the abstract's
    assert not Critic(None).check(worded, [src], question=asked).claims[0].kept
    # its wording unbacked, a value the reader cannot find is withheld though the abstract holds it somewhere
    assert not critic(reader_said("not stated")).check(worded, [src], question=asked).claims[0].kept
    # the rival's score in the reader's words is not kept as the paper's
    rival = critic(reader_said("71.2")).check(worded.replace("71.2", "64.8"), [src], question=asked)
    assert "64.8" not in rival.answer and "71.2" in rival.answer


@pytest.mark.parametrize(
    "question, expected",
    [
        ("what does the second one train on?", "what does BarGAN: Adversarial Bars train on?"),
        ("And the first paper?", "And FooNet?"),
        ("how big is paper 3?", "how big is QuxNet?"),
        ("who is the first author?", None),
        ("what about FooNet?", None),
    ],
)
def test_a_follow_up_by_list_position_names_the_listed_paper(question, expected):
    history = [("user", "which papers use bars?"), ("assistant", "3 papers match: FooNet [1]; BarGAN: Adversarial Bars [2]; QuxNet [3].")]
    assert resolve_position(question, history) == expected


def test_numbered_lists_are_read_and_prose_is_not_a_list():
    assert listed_items("1) FooNet [1]\n2) BarGAN [2]") == ["FooNet", "BarGAN"]
    assert listed_items("FooNet reaches 3.1 [1]; BarGAN 2.0 [2].") == []


def test_a_first_reading_that_a_second_does_not_back_repairs_nothing():
    # the first reading gives the rival's score, the second (asked another way) the claim's own value
    replies = iter(["64.8", "71.2"])
    llm = ScriptedLLM([], reader=lambda request: next(replies))
    result = Rereader(llm).check("ZetaNorm reaches 71.2 accuracy.", ZETA)
    assert result.verdict == "kept" and result.text == "ZetaNorm reaches 71.2 accuracy." and len(llm.rereads) == 2
    both = iter(["71.2", "71.2"])  # both readings agree on the abstract's value: the claim's 64.8 is repaired
    fixed = Rereader(ScriptedLLM([], reader=lambda request: next(both))).check("ZetaNorm reaches 64.8 accuracy.", ZETA)
    assert fixed.verdict == "repaired" and "71.2" in fixed.text


def test_answering_the_question_again_tells_whether_the_claims_numbers_are_the_ones_asked():
    reader = Rereader(ScriptedLLM([], reader=read_blank))
    assert reader.answers_with("It needs 9 hours on eight GPUs.", "How long does training take?", ZETA)
    assert not reader.answers_with("It reaches 71.2 accuracy.", "How long does training take?", ZETA)
    assert not Rereader(ScriptedLLM([], reader=reader_said("not stated"))).answers_with("It takes 9 hours.", "How long?", ZETA)


# -- reanswer: the question asked again of the answer's paper -------------------------------------------------------


def _critic(reader) -> Critic:
    return Critic(rereader=Rereader(ScriptedLLM([], reader=reader)))


def test_an_answer_about_the_right_paper_but_not_to_the_question_gets_the_abstracts_sentence_that_answers_it():
    q = "How long does training ZetaNorm on its token budget take?"
    draft = "ZetaNorm is a normalisation layer for 4-bit training [1]."  # true, and not what was asked
    result = _critic(read_blank).check(draft, [Source(1, ZETA, [])], question=q)
    added = result.claims[-1]
    assert added.text == "Training on 2.5B tokens takes 9 hours on eight GPUs." and added.sources == [1]
    assert added.kept and added.reasons[0].startswith("added: answering the question again")
    assert "9 hours" in result.answer
    # switched off, the answer stays without it
    off = Critic(rereader=Rereader(ScriptedLLM([], reader=read_blank)), disabled=frozenset({"reanswer"}))
    assert "9 hours" not in off.check(draft, [Source(1, ZETA, [])], question=q).answer


def test_nothing_is_added_when_the_answer_gives_the_value_or_the_reader_finds_none():
    q = "How long does training ZetaNorm on its token budget take?"
    right = _critic(read_blank).check("Training takes 9 hours [1].", [Source(1, ZETA, [])], question=q)
    assert len(right.claims) == 1
    unstated = _critic(reader_said("not stated")).check(
        "ZetaNorm is a normalisation layer for 4-bit training [1].", [Source(1, ZETA, [])], question=q)
    assert len(unstated.claims) == 1
    # a value the abstract does not hold (a reader that invents one) adds nothing either
    invented = _critic(reader_said("It takes 31 hours on TPU-v9 pods.")).check(
        "ZetaNorm is a normalisation layer for 4-bit training [1].", [Source(1, ZETA, [])], question=q)
    assert len(invented.claims) == 1


def test_an_answer_that_gives_some_of_the_values_asked_gets_the_rest_of_the_same_kind():
    sizes = Paper(id="t", title="TallNet", abstract="We release TallNet at 3B and 11B parameters. It runs on 2 GPUs.")
    q = "What model sizes does TallNet release?"
    some = _critic(reader_said("3B and 11B parameters")).check("TallNet is released at 3B [1].", [Source(1, sizes, [])],
                                                               question=q)
    assert "11B" in some.answer and some.claims[-1].reasons[0].startswith("added: answering the question again")
    # the reply's other details (a number of another kind) are not added to an answer that gives what was asked
    other = _critic(reader_said("3B parameters on 2 GPUs")).check("TallNet is released at 3B [1].",
                                                                  [Source(1, sizes, [])], question=q)
    assert len(other.claims) == 1


def test_a_comparison_side_that_answered_something_else_gets_its_papers_value():
    other = Paper(id="o", title="RangeClip", abstract="RangeClip clips activations. It reaches 64.8 on OrbitQA.")
    parts = [
        ("ZetaNorm is a normalisation layer for 4-bit training [1].", "What accuracy does ZetaNorm reach on OrbitQA?", ""),
        ("RangeClip reaches 64.8 on OrbitQA [2].", "What accuracy does RangeClip reach on OrbitQA?", ""),
    ]
    result = _critic(read_blank).check_parts(parts, [Source(1, ZETA, []), Source(2, other, [])])
    assert "71.2" in result.answer and result.answer.count("64.8") >= 1
    assert [c.sources for c in result.claims if c.reasons and c.reasons[0].startswith("added")] == [[1]]


def test_a_comparison_side_is_not_asked_to_state_how_the_two_sides_relate():
    # "is A bigger or smaller than B's largest model?": B's abstract gives B's sizes, and never says they are the
    # bigger or the smaller ones; the side keeps its value (re-reading confirms it) instead of being withheld
    big = Paper(id="b", title="TallNet", abstract="We release TallNet at 3B and 11B parameters. It tops OrbitQA.")
    small = Paper(id="s", title="ShortNet", abstract="ShortNet is a 40B model distilled for OrbitQA.")
    parts = [
        ("ShortNet is a 40B model [1].", "Is ShortNet bigger or smaller than, and by how much?", ""),
        ("The largest TallNet model has 11B parameters [2].",
         "Is bigger or smaller than the largest TallNet model, and by how much?", ""),
    ]
    result = _critic(read_blank).check_parts(parts, [Source(1, small, []), Source(2, big, [])])
    assert "40B" in result.answer and "11B" in result.answer
    assert all(c.kept for c in result.claims), [c.reasons for c in result.claims]


def test_two_things_asked_and_stated_in_two_sentences_get_both_sentences():
    paper = Paper(id="tw", title="TwinFix: Two Ways to Close the Gap",
                  abstract="We close the train-test gap in two ways. The first is Staggered Replay, which mixes old "
                  "samples back in. The second is Anchor Rewriting, which edits targets toward the model's own output. "
                  "Both help on six benchmarks.")
    q = "What are the two methods TwinFix proposes?"
    reader = reader_said("Staggered Replay and Anchor Rewriting")
    result = _critic(reader).check("TwinFix proposes two ways to close the gap [1].", [Source(1, paper, [])], question=q)
    added = [c.text for c in result.claims if c.reasons and c.reasons[0].startswith("added")]
    assert added == ["The first is Staggered Replay, which mixes old samples back in.",
                     "The second is Anchor Rewriting, which edits targets toward the model's own output."]
    one = Critic(rereader=Rereader(ScriptedLLM([], reader=reader)), reanswer_sentences=1)
    assert len(one.check("TwinFix proposes two ways to close the gap [1].", [Source(1, paper, [])], question=q).claims) == 2


def test_a_which_paper_answer_made_the_cited_title_is_not_re_read():
    question = "Which work presents a normalisation layer for training in very few bits?"
    draft = "The work [1] presents a normalisation layer for training in very few bits."
    llm = ScriptedLLM([], reader=reader_said("ZetaNorm: Layer Statistics for Stable Low-Precision Trainers"))
    result = Critic(rereader=Rereader(llm)).check(draft, [Source(1, ZETA, [])], question=question, shape="which-paper")
    assert result.claims[0].text == f"{ZETA.title}." and result.verdict == "supported", result.claims[0]
    assert not llm.rereads  # a misreading of the title cannot change it


def test_a_paper_without_sentences_gets_nothing_added():
    empty = Paper(id="e", title="ZetaNorm 9 hours", abstract="")  # the title alone holds the value read again
    result = _critic(reader_said("9 hours")).check("ZetaNorm is fast [1].", [Source(1, empty, [])], question="How long?")
    assert all(not (c.reasons and c.reasons[0].startswith("added")) for c in result.claims)


def test_a_value_the_abstract_gives_where_the_claim_puts_it_is_not_repaired_by_a_misreading():
    # the abstract holds 25% and 17%; the claim binds 25% as the abstract does ("25% more similar"), so a reader
    # that twice fills the blank with the other value is misreading, not correcting
    paper = Paper(id="h", title="HelpBot", abstract="HelpBot gives feedback 25% more similar to experts' feedback. "
                  "Its users improve their skills by 17%.")
    claim = "HelpBot's feedback is 25% more similar to experts' feedback."
    kept = Rereader(ScriptedLLM([], reader=reader_said("17%"))).check(claim, paper)
    assert kept.verdict == "kept" and kept.text == claim
    # a value the abstract gives for something else is still repaired
    wrong = "HelpBot's users improve their skills by 25%."
    fixed = Rereader(ScriptedLLM([], reader=reader_said("17%"))).check(wrong, paper)
    assert fixed.verdict == "repaired" and "17%" in fixed.text
