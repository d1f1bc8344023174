"""The deterministic checks of the self-critique, on fixed texts (fast)."""

from __future__ import annotations

import json

import pytest

from paperchat.eval.planted import add_detail, change_number, flagged, plant
from paperchat.rag import prompts
from paperchat.rag.corpus import Paper
from paperchat.rag.critique import Critic, Source, answers_quantity, split_claims
from paperchat.rag.critique.meaning import fits_other_paper
from paperchat.rag.embeddings import HashingEmbedder

from .fakes import ScriptedLLM

SPARK = Paper(
    id="spark",
    title="SPARK: Stepwise Process-Aware Rewards for Reference-Free Reinforcement Learning",
    abstract=(
        "Process reward models (PRMs) that provide dense, step-level feedback have shown promise for reinforcement "
        "learning. We propose SPARK: a three-stage framework where a generator model produces diverse solutions and a "
        "verifier model evaluates them. We show that aggregating multiple independent verifications produces training "
        "data that surpass ground-truth outcome supervision, achieving 67.5 F1 on ProcessBench compared to 66.4 for "
        "reference-guided training and 61.9 for GPT-4o. Using Qwen2.5-Math-7B, we achieve 47.4% average accuracy across "
        "six mathematical reasoning benchmarks, outperforming ground-truth-based RLVR (43.9%)."
    ),
)
MUSIC = Paper(
    id="music",
    title="Music Transformer",
    abstract=(
        "Music relies heavily on repetition to build structure and meaning. We propose a Transformer with relative "
        "attention that reduces the memory requirement from quadratic to linear in sequence length, generating "
        "minute-long compositions with compelling structure on the Maestro dataset."
    ),
)
SOURCES = [Source(1, SPARK, []), Source(2, MUSIC, [])]
CORRECT = "SPARK reaches 67.5 F1 on ProcessBench, compared with 61.9 for GPT-4o [1]."


def verdicts(draft: str, question: str = "", critic: Critic | None = None):
    result = (critic or Critic()).check(draft, SOURCES, question=question)
    return result, [c.verdict for c in result.claims]


def test_correct_claim_is_kept_with_its_supporting_sentence():
    result, v = verdicts(CORRECT)
    assert v == ["supported"] and result.verdict == "supported"
    assert "67.5 F1 on ProcessBench" in result.claims[0].support
    assert result.answer == CORRECT


@pytest.mark.parametrize(
    "draft, reason",
    [
        ("SPARK reaches 71.5 F1 on ProcessBench [1].", "71.5"),  # changed number
        ("SPARK was trained on 64 GPUs with 47.4% accuracy [1].", "64"),  # invented number
        ("SPARK reaches 67.5 F1 on ProcessBench using Llama-3-70B [1].", "Llama-3-70B"),  # invented model name
        ("SPARK reaches 67.5 F1 on ProcessBench, and the code is written in Haskell [1].", "Haskell"),
        ("SPARK reaches 67.5 F1, and it halves energy consumption in hospital data centers [1].", "in the cited abstract"),
        ("SPARK uses a three-stage framework [7].", "does not exist"),
    ],
)
def test_planted_errors_are_removed(draft, reason):
    result, v = verdicts(draft)
    assert "unsupported" in v or result.claims[0].verdict == "corrected"
    if result.claims[0].verdict == "unsupported":
        assert reason in " ".join(result.claims[0].reasons)
        assert result.verdict == "not supported"
        assert result.answer.startswith(prompts.REFUSAL)


def test_claim_cited_to_the_wrong_paper_is_recited():
    result, v = verdicts("SPARK reaches 67.5 F1 on ProcessBench [2].")
    assert v == ["corrected"]
    assert result.claims[0].sources == [1]
    assert result.answer.endswith("[1].")


def test_uncited_claim_gets_the_source_that_holds_it():
    result, v = verdicts("Music Transformer uses relative attention to reduce memory to linear in sequence length.")
    assert v == ["corrected"] and result.claims[0].sources == [2]


def test_an_uncited_claim_that_joins_two_words_the_abstract_writes_apart_is_recited():
    # "Dutch-Frisian" where the abstract says "Dutch and Frisian": the same name, written another way
    tide = Paper(id="t", title="TideMT: Self-Scored Translation",
                 abstract="TideMT trains a 3B model on 40K monolingual sentences for Dutch and Frisian translation.")
    other = Paper(id="o", title="Harbor: Port Logistics", abstract="Harbor schedules cranes with 40K simulated days.")
    result = Critic().check("The 3B Dutch-Frisian model trains on 40K monolingual sentences.",
                            [Source(1, other, []), Source(2, tide, [])])
    assert result.claims[0].kept and result.claims[0].sources == [2]


def test_unsupported_claims_are_removed_and_the_rest_kept():
    result, v = verdicts(CORRECT + " It was trained for 900 epochs on 13 TPUs [1].")
    assert v == ["supported", "unsupported"]
    assert result.verdict == "partially supported" and result.removed == 1
    assert "900" not in result.answer and "67.5" in result.answer


def test_refusal_and_empty_drafts():
    result, v = verdicts(prompts.REFUSAL)
    assert v == ["refusal"] and result.verdict == "refused" and result.answer == prompts.REFUSAL
    result, v = verdicts("[1]")
    assert v == [] and result.verdict == "refused"
    result, v = verdicts("67.5 [1]")  # too short to be a statement
    assert v == ["unsupported"]


def test_quantity_question_needs_the_quantity_asked_for():
    q = "What learning rate did SPARK use?"
    assert answers_quantity("SPARK used Qwen2.5-Math-7B.", q, SPARK) == "it gives no number, and the question asks for one"
    assert answers_quantity("SPARK reaches 67.5 F1.", q, SPARK).startswith("the abstract does not give 67.5")
    assert answers_quantity("SPARK reaches 67.5 F1.", "What F1 does SPARK reach on ProcessBench?", SPARK) is None
    _, v = verdicts("SPARK used Qwen2.5-Math-7B [1].", question=q)
    assert v == ["unsupported"]
    # "how many of X are Y" counts the Y: a count of all X does not answer it
    of = "How many of SPARK's benchmarks are coding benchmarks?"
    assert answers_quantity("SPARK uses six mathematical reasoning benchmarks.", of, SPARK).startswith("the abstract does not give")
    assert answers_quantity("SPARK uses six benchmarks.", "How many benchmarks does SPARK use?", SPARK) is None
    # what is counted may stand after the words that describe it
    hives = Paper(id="h", title="HiveSense", abstract="We test HiveSense on four public rural and urban hive datasets.")
    asked = "How many datasets is HiveSense tested on?"
    assert answers_quantity("HiveSense is tested on four datasets.", asked, hives) is None
    assert answers_quantity("HiveSense is tested on four hives.", "How many GPUs does HiveSense use?", hives)


def test_citation_forms_are_parsed():
    assert split_claims("A b c (Source [1]). D e f [2, 3]. [4]") == [("A b c.", [1]), ("D e f.", [2, 3, 4])]
    assert split_claims("- first point here [1]\n- second point there [2]") == [
        ("first point here", [1]),
        ("second point there", [2]),
    ]


def _judge(verdict: str, quote: str):
    def reply(request):
        assert request.json_schema == prompts.JUDGE_SCHEMA
        return json.dumps({"quote": quote, "verdict": verdict})

    return Critic(ScriptedLLM(reply))


def test_model_judge_can_remove_but_never_rescue():
    paraphrase = "The SPARK verifier checks the solutions that the generator model produces [1]."
    _, v = verdicts(paraphrase)
    assert v == ["supported"]
    result, v = verdicts(paraphrase, critic=_judge("unsupported", ""))
    assert v == ["unsupported"] and "model judged it unsupported" in " ".join(result.claims[0].reasons)
    # a hallucination the deterministic checks catch stays removed whatever the model says
    _, v = verdicts("SPARK reaches 99.9 F1 on ProcessBench [1].", critic=_judge("supported", "achieving 99.9 F1"))
    assert v == ["unsupported"]


def test_model_quote_is_verified_against_the_abstract():
    critic = _judge("supported", "a generator model produces diverse solutions and a verifier model evaluates them")
    result, v = verdicts("The SPARK verifier checks the solutions that the generator model produces [1].", critic=critic)
    assert v == ["supported"] and result.claims[0].quote_verified is True
    critic = _judge("supported", "SPARK was funded by a large grant from the ministry.")
    result, v = verdicts("The SPARK verifier checks the solutions that the generator model produces [1].", critic=critic)
    assert result.claims[0].quote_verified is False


def test_the_judge_shares_the_drafts_prefix():
    seen = []

    def reply(request):
        seen.append(request)
        return json.dumps({"quote": "", "verdict": "supported"})

    sources_text = prompts.sources_block([(1, SPARK.title, ["s1."]), (2, MUSIC.title, ["s2."])])
    Critic(ScriptedLLM(reply)).check("The SPARK verifier checks the solutions that the generator model produces [1].", SOURCES, sources_text)
    draft = prompts.draft_messages(sources_text, "q?")
    (judge,) = seen
    assert judge.messages[0].content == draft[0][1]
    assert judge.messages[1].content.startswith(sources_text) and draft[1][1].startswith(sources_text)


def test_planted_generator_and_flagging():
    assert change_number("from 35.5% to 44.5%") == "from 39.5% to 44.5%"
    assert add_detail("A b.", "k").startswith("A b, and")
    kinds = [p.kind for p in plant("SPARK reaches 67.5 F1 on ProcessBench.", "q1", 1, 2)]
    assert kinds == ["correct", "number", "wrong_paper", "invented"]
    for planted in plant("SPARK reaches 67.5 F1 on ProcessBench, compared with 61.9 for GPT-4o.", "q1", 1, 2):
        result = Critic().check(planted.text, SOURCES)
        assert flagged(planted, result) == planted.must_flag, planted


def test_claim_about_another_paper_does_not_answer_a_question_naming_one():
    q = "How many GPUs were used to train AlphaLLM?"
    _, v = verdicts("Music Transformer reduces the memory requirement from quadratic to linear [2].", question=q)
    assert v == ["unsupported"]
    result, v = verdicts("Music Transformer reduces the memory requirement from quadratic to linear [2].",
                         question="How does Music Transformer reduce memory?")
    assert v == ["supported"]


def test_the_judge_is_not_asked_when_its_verdict_could_not_change_anything():
    critic = _judge("unsupported", "")
    # the source's own words, numbers together in one sentence: kept without a model call
    result, v = verdicts("SPARK achieves 67.5 F1 on ProcessBench compared to 61.9 for GPT-4o [1].", critic=critic)
    assert v == ["supported"] and critic.calls == 0
    assert "without asking the model" in " ".join(result.claims[0].reasons)
    # other words: the model is asked, and its "unsupported" removes the claim
    result, v = verdicts("The SPARK verifier checks the solutions that the generator model produces [1].", critic=critic)
    assert v == ["unsupported"] and critic.calls == 1


def test_a_claim_pointing_back_at_a_removed_claim_is_removed_too():
    draft = (
        "SPARK reaches 99.9 F1 on ProcessBench [1]. "
        "This shows that aggregating multiple independent verifications produces training data [1]."
    )
    result, v = verdicts(draft)
    assert v == ["unsupported", "unsupported"]
    assert "refers back to a claim that was removed" in " ".join(result.claims[1].reasons)
    # the same sentence after a kept claim stays
    _, v = verdicts(f"{CORRECT} This shows that aggregating multiple independent verifications produces training data [1].")
    assert v == ["supported", "supported"]
    # after a removed fragment ("It is [1].") there is no removed statement to point at: "It" is the paper
    _, v = verdicts("It is [1]. It aggregates multiple independent verifications to produce training data [1].")
    assert v == ["unsupported", "supported"]


def test_after_a_claim_that_only_says_a_one_sentence_question_back_a_pronoun_points_at_the_paper():
    tern = Paper(id="t", title="Tern: Tide-Aware Routing",
                 abstract="Tern routes ferries by tide tables. It cuts fuel use by 14% on three harbours.")
    draft = "Tern routes ferries in its own way [1]. It cuts fuel use by 14% on three harbours [1]."
    asked = Critic().check(draft, [Source(1, tern, [])], question="How does Tern route ferries in its own way?")
    assert [c.kept for c in asked.claims] == [False, True]
    # a question with a statement before its ask may hold a premise: a claim saying it back states it, and what
    # points back at it goes with it
    premise = Critic().check(draft.replace("in its own way", "by wind"), [Source(1, tern, [])],
                             question="Tern routes ferries by wind. How does it cut fuel use?")
    assert not premise.claims[-1].kept


DIT_MEM = Paper(
    id="d",
    title="Learning Plug-and-play Memory for Guiding Video Diffusion Models",
    abstract="We propose a learnable memory encoder DiT-Mem. During training, we keep the diffusion backbone frozen, "
    "and only optimize the memory encoder. It yields a rather efficient training process on few training "
    "parameters (150M) and 10K data samples, and enables plug-and-play usage at inference time.",
)
SELF_RAG = Paper(
    id="r",
    title="Self-RAG: Learning to Retrieve, Generate, and Critique through Self-Reflection",
    abstract="We introduce Self-RAG, which trains a single LM that adaptively retrieves passages on-demand, and "
    "generates and reflects on retrieved passages and its own generations using special tokens, called "
    "reflection tokens.",
)
SELF_J = Paper(
    id="j",
    title="Self-Judge: Selective Instruction Following with Alignment Self-Evaluation",
    abstract="We introduce Self-J, a novel self-training framework for developing judge models. Our judge models "
    "serve as good reward models, e.g., boosting WizardLM-13B-V1.2 from 89.17 to 92.48 and from 12.03 to 15.90 "
    "in version v1 and v2 of AlpacaEval respectively using best-of-32 sampling with our judge models.",
)


def test_right_answers_worded_as_the_question_are_kept():
    # the counted thing is the whole phrase up to the verb: "training parameters (150M)" counts parameters
    q = "How many trainable parameters and training samples does the DiT-Mem memory encoder need?"
    draft = "The DiT-Mem memory encoder needs 150M trainable parameters and 10K training samples [1]."
    assert Critic().check(draft, [Source(1, DIT_MEM, [])], question=q).verdict == "supported"
    gpus = "How many GPUs does the DiT-Mem memory encoder need?"
    assert Critic().check(draft, [Source(1, DIT_MEM, [])], question=gpus).verdict == "not supported"
    # "reflection tokens" answers "what tokens ... to reflect", though the two words share a stem
    q = "What special tokens does Self-RAG generate to reflect on retrieved passages and its own output?"
    draft = "Self-RAG generates reflection tokens to reflect on retrieved passages and its own output [1]."
    assert Critic().check(draft, [Source(1, SELF_RAG, [])], question=q).verdict == "supported"
    echo = "Self-RAG generates special tokens to reflect on retrieved passages and its own output [1]."
    assert Critic().check(echo, [Source(1, SELF_RAG, [])], question=q).verdict == "not supported"


def test_the_judge_is_not_asked_when_the_facts_stand_in_one_sentence_of_the_papers_own():
    # the paper's own name (Self-J) is not in the sentence with the numbers, and needs not be
    llm = ScriptedLLM(['{"quote": "", "verdict": "unsupported"}'])
    draft = (
        "WizardLM-13B-V1.2's AlpacaEval v1 score increases from 89.17 to 92.48 using best-of-32 sampling "
        "with Self-J judge models [1]."
    )
    result = Critic(llm=llm).check(draft, [Source(1, SELF_J, [])], question="How does Self-J change WizardLM's score?")
    assert result.verdict == "supported" and llm.requests == []
    wrong = draft.replace("92.48", "95.10")
    assert Critic(llm=llm).check(wrong, [Source(1, SELF_J, [])]).verdict == "not supported"


IMBUE = Paper(
    id="i",
    title="IMBUE: Improving Interpersonal Effectiveness through Simulation and Just-in-time Feedback",
    abstract="Through a randomized trial of 86 participants, we find that IMBUE's simulation-only variant "
    "significantly improves participants' self-efficacy (up to 17%) and reduces negative emotions (up to 25%).",
)


def test_a_false_number_in_the_question_is_corrected_from_the_abstract():
    q = "What did IMBUE's randomized trial with 120 participants find?"
    draft = "IMBUE's randomized trial with 120 participants found that self-efficacy improves by up to 17% [1]."
    result = Critic().check(draft, [Source(1, IMBUE, [])], question=q)
    assert result.answer == "IMBUE's abstract gives 86 participants, not 120 [1]."
    assert result.claims[0].reasons == ["the question's 120 is not in the abstract of IMBUE"]
    assert result.claims[1].verdict == "unsupported"  # the draft repeated the false number
    # the true number asks nothing to correct; a version number of a name ("Llama 2") is no premise
    right = Critic().check(draft.replace("120", "86"), [Source(1, IMBUE, [])], question=q.replace("120", "86"))
    assert right.verdict == "supported" and len(right.claims) == 1
    named = Critic().check(draft.replace("120", "86"), [Source(1, IMBUE, [])], question="Does IMBUE beat Llama 2?")
    assert not any("not in the abstract" in r for c in named.claims for r in c.reasons)
    # a number the abstract gives for nothing like it: said to be absent, not replaced
    nothing = Critic().check(draft, [Source(1, IMBUE, [])], question="Why did IMBUE train on 4096 GPUs?")
    assert nothing.claims[0].text == "IMBUE's abstract does not state 4096."


SPARROW = Paper(
    id="sparrow",
    title="Sparrow: Distilling Speech Recognisers with Pseudo-Labels",
    abstract="Sparrow matches its teacher's word error rate while using 60% less labelled audio. Decoding runs 3x "
    "faster than the teacher on a phone.",
)


def test_an_amount_the_question_turns_the_other_way_is_corrected_from_the_abstract():
    q = "Why does Sparrow need 60% more labelled audio than its teacher?"
    draft = "Sparrow needs 60% more labelled audio because distillation needs more data [1]."
    result = Critic().check(draft, [Source(1, SPARROW, [])], question=q)
    assert result.claims[0].text == "Sparrow's abstract says \"60% less labelled audio\", not \"60% more\"."
    assert result.claims[1].verdict == "unsupported"  # the draft repeated the premise
    # the amount the way the abstract gives it, or an amount with a direction that is no opposite, is no premise
    for asked in ("Why does Sparrow need 60% less labelled audio?", "How is Sparrow's decoding 3x quicker?"):
        kept = Critic().check("Sparrow decodes 3x faster than the teacher [1].", [Source(1, SPARROW, [])], question=asked)
        assert not any("other way" in r for c in kept.claims for r in c.reasons), asked
    slower = Critic().check("Sparrow decodes 3x slower [1].", [Source(1, SPARROW, [])],
                            question="Why does Sparrow decode 3x slower than its teacher?")
    assert slower.claims[0].text == "Sparrow's abstract says \"3x faster\", not \"3x slower\"."


def test_a_false_number_about_a_paper_the_question_describes_is_corrected_in_its_place():
    tally = Paper(id="tally", title="Tally: Counting Objects with Sparse Point Labels",
                  abstract="Tally raises counting accuracy from 61.0% to 74.5% on CrowdCount. It needs one click per object.")
    q = "The point-label counting paper went from 61.0% to 80.2% accuracy. How many clicks per object does it need?"
    result = Critic().check("It needs one click per object [1].", [Source(1, tally, [])], question=q)
    assert result.claims[0].text == "Tally's abstract gives 74.5%, not 80.2%."
    assert result.claims[1].verdict == "supported"  # the answer itself stands
    # the number where the question has it right is no premise to correct
    right = Critic().check("It needs one click per object [1].", [Source(1, tally, [])], question=q.replace("80.2", "74.5"))
    assert len(right.claims) == 1 and right.verdict == "supported"


KNOW = Paper(
    id="know",
    title="Language Models (Mostly) Know What They Know",
    abstract=(
        "We study whether language models can evaluate the validity of their own claims. We approach self-evaluation "
        'by asking models to first propose answers, and then to evaluate the probability "P(True)" that their answers '
        "are correct. Performance at self-evaluation further improves when we allow models to consider many of their "
        "own samples before predicting the validity of one specific possibility."
    ),
)
RECSYS = Paper(
    id="recsys",
    title="Self-supervised Learning for Large-scale Item Recommendations",
    abstract="We evaluate our framework using two real-world datasets with 500M and 1B training examples respectively.",
)


def test_a_which_paper_answer_naming_a_paper_the_description_fits_worse_is_withheld():
    # the draft names a paper (here by its bare title) that the question does not describe; another source fits
    critic = Critic(embedder=HashingEmbedder())
    question = "Which paper generates minute-long music compositions with relative attention?"
    wrong = critic.check(f"{SPARK.title} [1].", SOURCES, question=question, shape="which-paper")
    assert wrong.verdict == "not supported"
    # the bare title says "this is the paper described": SPARK's abstract does not state the description
    assert any("does not state what the question describes" in r for r in wrong.claims[0].reasons)
    # and, whatever the claim says, another source fits the description clearly better
    assert "fits source [2] better" in fits_other_paper(critic, question, 1, {s.n: s for s in SOURCES})
    assert fits_other_paper(critic, question, 2, {s.n: s for s in SOURCES}) is None
    right = critic.check("Music Transformer [2].", SOURCES, question=question, shape="which-paper")
    assert right.verdict == "supported" and right.answer == "Music Transformer [2]."


def test_a_claim_that_only_names_a_paper_does_not_answer_a_number_question():
    draft = f"{SPARK.title} [1]. SPARK reaches 67.5 F1 on ProcessBench [1]."
    result = Critic().check(draft, SOURCES, question="What F1 does SPARK reach on ProcessBench?")
    assert [c.verdict for c in result.claims] == ["unsupported", "supported"]
    assert result.answer == "SPARK reaches 67.5 F1 on ProcessBench [1]."
    # for a which-paper question the title is the answer
    which = Critic().check(f"{SPARK.title} [1].", SOURCES, question="Which paper reaches 67.5 F1 on ProcessBench?", shape="which-paper")
    assert which.verdict == "supported"


def test_an_answer_that_names_no_thing_of_the_kind_asked_for_is_withheld():
    sources = [Source(1, KNOW, [])]
    question = "What probability are language models asked to estimate about their own proposed answers?"
    critic = Critic(embedder=HashingEmbedder())
    # true, and in the abstract's words, but not a probability: the answer sentence was missed
    off = critic.check("Performance at self-evaluation further improves when models consider many samples [1].", sources, question=question)
    assert off.verdict == "not supported" and "names no probability" in " ".join(off.claims[0].reasons)
    named = critic.check('Models estimate the probability "P(True)" that their answers are correct [1].', sources, question=question)
    assert named.verdict == "supported"
    # in other words: drawn from the sentence that names the probability, it is kept
    other = critic.check("They are asked how likely it is that their proposed answers are correct [1].", sources, question=question)
    assert other.verdict == "supported", other.claims[0].reasons


def test_the_larger_of_two_listed_numbers_is_repaired():
    sources = [Source(1, RECSYS, [])]
    result = Critic().check("The item-recommendation study's larger dataset has 500M training examples [1].", sources)
    assert result.claims[0].verdict == "corrected"
    assert result.answer == "The item-recommendation study's larger dataset has 1B training examples [1]."
    kept = Critic().check("The item-recommendation study's larger dataset has 1B training examples [1].", sources)
    assert kept.claims[0].verdict == "supported"


def test_a_count_of_people_is_answered_by_the_abstracts_word_for_them(seed_papers):
    """"How many people took part?" is answered by "86 participants"; a number that counts something else is not."""
    imbue = next(p for p in seed_papers if p.title.startswith("IMBUE"))
    question = "How many people took part in IMBUE's randomized trial?"
    assert answers_quantity("86 participants took part in IMBUE's randomized trial.", question, imbue) is None
    assert answers_quantity("17 people took part in IMBUE's randomized trial.", question, imbue) is not None


SPELL_ROLES = Paper(
    id="spell",
    title="SPELL: Self-Play Reinforcement Learning for evolving Long-Context Language Models",
    abstract=(
        "We propose SPELL, a multi-role self-play reinforcement learning framework for long-context reasoning. "
        "SPELL integrates three cyclical roles-questioner, responder, and verifier-within a single model. "
        "The questioner generates questions from raw documents; the responder learns to solve them; and the verifier "
        "evaluates the responder's output, producing reward signals. SPELL achieves an average 7.6-point gain in pass@8 "
        "on six long-context benchmarks."
    ),
)


def test_a_claim_about_one_of_two_papers_asked_about_is_kept():
    """"What F1 does SPARK reach, and what does Music Transformer reduce?": each claim answers for its own paper."""
    question = "What F1 does SPARK reach on ProcessBench, and what does Music Transformer reduce to linear?"
    draft = "SPARK reaches 67.5 F1 on ProcessBench [1]. Music Transformer reduces the memory requirement to linear [2]."
    result = Critic().check(draft, SOURCES, question=question, shape="comparison")
    assert [c.verdict for c in result.claims] == ["supported", "supported"], [c.reasons for c in result.claims]
    # one ask alone still needs its own paper: the other paper's name is not excused
    alone = Critic().check("Music Transformer reaches linear memory [2].", SOURCES, question="What F1 does SPARK reach on ProcessBench?")
    assert alone.verdict == "not supported"


def test_a_question_asking_which_paper_and_a_number_gets_them_in_different_claims():
    question = "Which paper produces training data from multiple verifications, and what F1 did it reach on ProcessBench?"
    draft = "SPARK aggregates multiple independent verifications to produce training data [1]. It achieves 67.5 F1 on ProcessBench [1]."
    result = Critic().check(draft, SOURCES, question=question, shape="which-paper")
    assert result.verdict == "supported", [c.reasons for c in result.claims]


def test_claims_about_something_else_are_withheld_with_their_wordless_siblings(minilm):
    """An off-topic question the gate let through: a draft that recites an abstract is withheld, not shown as true."""
    question = "What is a good flour-to-water ratio for a sourdough starter?"
    draft = ("Music relies heavily on repetition to build structure and meaning [2]. "
             "We propose a Transformer with relative attention that reduces the memory requirement [2].")
    result = Critic(embedder=minilm).check(draft, SOURCES, question=question)
    assert result.verdict == "not supported"
    assert all("about something else" in " ".join(c.reasons) for c in result.claims)
    # a short answer or one with numbers is not judged by its distance in meaning
    terse = Critic(embedder=minilm).check("Linear memory [2].", SOURCES, question="What does relative attention reduce the memory to?")
    assert terse.verdict != "not supported", [c.reasons for c in terse.claims]


def test_terse_answers_without_names_are_read_where_the_abstract_speaks_of_the_question():
    """"Gradient-based methods [1]." answers "What does it outperform?" when a sentence of the abstract that speaks of
    outperforming says it; a phrase from elsewhere in the abstract does not."""
    sinc = Paper(id="sinc", title="SINC: Self-Supervised In-Context Learning", abstract=(
        "We propose a meta-model that learns on self-supervised prompts. "
        "Extensive experiments show that SINC outperforms gradient-based methods in vision-language tasks."))
    sources = [Source(1, sinc, [])]
    kept = Critic().check("Gradient-based methods [1].", sources, question="What does SINC outperform?")
    assert kept.verdict == "supported", [c.reasons for c in kept.claims]
    wrong = Critic().check("Prompts [1].", sources, question="What does SINC outperform?")
    assert wrong.verdict == "not supported"


def test_roles_listed_without_the_word_roles_answer_what_roles():
    sources = [Source(1, SPELL_ROLES, [])]
    question = "What roles does SPELL's single model play during self-play?"
    result = Critic().check("Questioner, responder and verifier [1].", sources, question=question)
    assert result.verdict == "supported", [c.reasons for c in result.claims]


def test_an_answer_that_repeats_the_question_and_adds_no_thing_of_the_asked_kind_is_withheld():
    sources = [Source(1, SPELL_ROLES, [])]
    question = "Which benchmarks were used to test the verifier that evaluates the responder's output?"
    echo = "The benchmarks used to test the verifier that evaluates the responder's output were raw documents [1]."
    result = Critic().check(echo, sources, question=question)
    assert result.verdict == "not supported"
    assert "names no benchmarks" in " ".join(r for c in result.claims for r in c.reasons), [c.reasons for c in result.claims]


def test_a_numbered_list_is_read_with_its_lead_in_and_kept_whole():
    # each item alone ("A verifier model evaluates them.") reads as a sentence about something else than the
    # question; with the lead-in it says what the question asks, and the abstract states it
    draft = ("SPARK's framework has two models:\n1. A generator model produces diverse solutions [1].\n"
             "2. A verifier model evaluates them [1].")
    result, v = verdicts(draft, question="Which two models make up SPARK's framework?")
    assert v == ["supported"], result.claims
    assert result.answer.startswith("SPARK's framework has two models: A generator model produces diverse solutions;")
    assert split_claims(draft) == [(
        "SPARK's framework has two models: A generator model produces diverse solutions; A verifier model evaluates them.",
        [1])]
