"""The critique's registry of named checks: names, the per-shape policy, switching checks off by name."""

from __future__ import annotations

import pydantic
import pytest

from paperchat.rag.corpus import Paper
from paperchat.rag.critique import REGISTRY, Critic, Source, check_names
from paperchat.rag.critique.checks import for_stage
from paperchat.rag.errors import ConfigError
from paperchat.rag.settings import CRITIQUE_CHECKS, Settings

from .test_critique import IMBUE


def test_the_settings_name_every_check_of_the_registry_in_its_order():
    assert check_names() == CRITIQUE_CHECKS
    assert len(set(check_names())) == len(REGISTRY)


def test_an_unknown_check_name_is_refused_with_the_known_ones():
    with pytest.raises(pydantic.ValidationError, match="no critique check is called 'nope'.*restates"):
        Settings(answer={"disabled_checks": ["nope"]})
    assert Settings(answer={"disabled_checks": ["restates"]}).answer.disabled_checks == ["restates"]
    with pytest.raises(ConfigError, match="No critique check is called 'nope'.*premise"):
        Critic(disabled=frozenset({"nope"}))


def test_the_setting_is_read_from_the_environment_as_a_json_list(monkeypatch):
    monkeypatch.setenv("PAPERCHAT_ANSWER__DISABLED_CHECKS", '["restates", "premise"]')
    assert Settings().answer.disabled_checks == ["restates", "premise"]


def test_the_shape_policy_leaves_checks_out():
    names = lambda stage, shape: [c.name for c in for_stage(stage, shape)]  # noqa: E731
    assert "describes" in names("meaning", "which-paper") and "describes" not in names("meaning", "factoid")
    assert "unrelated" not in names("meaning", "which-paper") and "unrelated" in names("meaning", "comparison")
    assert "asked_thing" not in names("answer", "which-paper")
    assert "restates" not in [c.name for c in for_stage("meaning", "factoid", frozenset({"restates"}))]


def test_a_restating_claim_is_kept_once_restates_is_switched_off():
    dit = Paper(id="d", title="Learning Plug-and-play Memory (DiT-Mem)",
                abstract="The DiT-Mem memory encoder is trained on 10K data samples with 150M parameters.")
    q, draft = "How is the DiT-Mem memory encoder trained?", "The DiT-Mem memory encoder is trained [1]."
    on = Critic().check(draft, [Source(1, dit, [])], question=q)
    assert on.verdict == "not supported" and "restates" in on.claims[0].reasons[0]
    off = Critic(disabled=frozenset({"restates"})).check(draft, [Source(1, dit, [])], question=q)
    assert off.verdict == "supported" and not any("restates" in r for r in off.claims[0].reasons)


def test_switching_off_the_premise_check_leaves_the_false_number_uncorrected():
    q = "What did IMBUE's randomized trial with 120 participants find?"
    draft = "IMBUE's randomized trial with 120 participants found that self-efficacy improves by up to 17% [1]."
    on = Critic().check(draft, [Source(1, IMBUE, [])], question=q)
    assert on.answer.startswith("IMBUE's abstract gives 86 participants")
    off = Critic(disabled=frozenset({"premise"})).check(draft, [Source(1, IMBUE, [])], question=q)
    assert "86 participants" not in off.answer and len(off.claims) == 1


def test_a_premise_count_written_in_words_is_corrected_and_the_claim_repeating_it_withheld():
    loom = Paper(id="l", title="Loom: Self-Refining Captions",
                 abstract="Loom refines its own captions. After three rounds of refinement it beats CapBase on CapEval.")
    q = "Loom needed seven rounds of refinement to beat CapBase. Why so many?"
    draft = "Loom needed seven rounds of refinement before it beat CapBase on CapEval [1]."
    on = Critic().check(draft, [Source(1, loom, [])], question=q)
    assert on.answer.startswith("Loom's abstract gives three rounds, not seven")
    assert "needed seven rounds" not in on.answer
    # a count the question asks about ("which two parts") is not a premise, whatever the abstract says of it
    asked = Critic().check("Loom refines its own captions [1].", [Source(1, loom, [])],
                           question="What two parts does Loom have?")
    assert "abstract gives" not in asked.answer and "does not state" not in asked.answer
    off = Critic(disabled=frozenset({"premise"})).check(draft, [Source(1, loom, [])], question=q)
    assert "three rounds" not in off.answer


def test_switching_off_fragment_keeps_a_fragment_whose_words_are_in_the_abstract():
    src = Source(1, Paper(id="a", title="SPARK: Rewards", abstract="SPARK reaches 67.5 F1 on ProcessBench."), [])
    draft = "The F1 of SPARK on ProcessBench is shown on [1]."
    on = Critic().check(draft, [src])
    assert "mid-sentence" in on.claims[0].reasons[0]
    off = Critic(disabled=frozenset({"fragment"})).check(draft, [src])
    # its words are all in the abstract: only the fragment check withholds it
    assert off.verdict == "supported" and not any("mid-sentence" in r for r in off.claims[0].reasons)


# -- restated_identity: a which-paper answer that restates the question names the paper cited ----------------------

PRUNE = Paper(id="pr", title="HeadCut: Pruning Attention Heads by Their Gradient Agreement",
              abstract="We present HeadCut, which removes attention heads whose gradients disagree with the rest of "
              "the layer. HeadCut keeps 98% of accuracy while removing half of the heads.")
OTHER = Paper(id="ot", title="RainCast: Radar Nowcasting", abstract="RainCast forecasts rain from radar images.")


def _which(draft: str, sources, question: str, minilm=None):
    return Critic(embedder=minilm).check(draft, sources, question=question, shape="which-paper")


def test_a_which_paper_claim_in_the_readers_own_words_is_answered_with_the_paper_cited(minilm):
    question = "Which work drops the attention heads whose gradients disagree with the rest of their layer?"
    draft = "The work [1] drops the attention heads whose gradients disagree with the rest of their layer."
    result = _which(draft, [Source(1, PRUNE, []), Source(2, OTHER, [])], question, minilm)
    assert result.verdict == "supported", result.claims[0].reasons
    assert result.claims[0].text.startswith("HeadCut: Pruning Attention Heads")
    # switched off, the same words are judged as a claim of their own ("drops … their layer" is not the abstract's)
    off = Critic(embedder=minilm, disabled=frozenset({"restated_identity"})).check(
        draft, [Source(1, PRUNE, []), Source(2, OTHER, [])], question=question, shape="which-paper")
    assert off.claims[0].text.startswith("The work")


def test_a_restated_description_the_cited_paper_does_not_fit_is_withheld(minilm):
    question = "Which work predicts tomorrow's stock prices from news headlines?"
    draft = "The work [1] predicts tomorrow's stock prices from news headlines."
    result = _which(draft, [Source(1, PRUNE, [])], question, minilm)
    assert result.verdict == "not supported", result.claims[0].reasons


def test_a_which_paper_claim_that_names_something_more_is_checked_as_it_reads(minilm):
    question = "Which model does HeadCut prune?"
    draft = "HeadCut prunes the heads of GPT-7 [1]."  # GPT-7 is not in the question: it is an answer of its own
    result = _which(draft, [Source(1, PRUNE, [])], question, minilm)
    assert result.verdict == "not supported" and "GPT-7" in result.claims[0].text


# -- restates: an answer in the question's own words is still an answer when it chooses or counts -----------------

SCHED = Paper(id="sc", title="Warm Restarts Considered Harmful",
              abstract="We compare a cyclic cosine schedule with a constant-then-decay schedule. The constant-then-decay "
              "schedule forgets less on both image and text data. It converges within three epochs.")


def test_a_claim_that_picks_one_of_the_questions_alternatives_is_an_answer():
    q = "Which forgets less, the cyclic cosine schedule or the constant-then-decay schedule?"
    picked = Critic().check("The constant-then-decay schedule forgets less [1].", [Source(1, SCHED, [])], question=q)
    assert picked.verdict == "supported", picked.claims[0].reasons
    both = Critic().check("The cyclic cosine schedule or the constant-then-decay schedule forgets less [1].",
                          [Source(1, SCHED, [])], question=q)
    assert both.verdict == "not supported" and "restates" in " ".join(both.claims[0].reasons)


def test_a_number_written_as_a_word_is_new_information():
    q = "How many epochs does the constant-then-decay schedule take to converge?"
    result = Critic().check("The constant-then-decay schedule takes three epochs to converge [1].", [Source(1, SCHED, [])], question=q)
    assert not any("restates" in r for r in result.claims[0].reasons), result.claims[0].reasons


LOOM = Paper(
    id="loom",
    title="Loom: Ranking Candidate Replies with a Self-Written Reference",
    abstract=(
        "We present Loom, a ranking method for chat replies. The model first writes its own reply, then critiques each "
        "candidate reply against it, and finally ranks the candidates by the critique. Loom agrees with human raters "
        "on 81% of pairs."
    ),
)


def test_the_questions_own_words_framing_a_claim_are_not_an_invented_part():
    q = "How does the reply arbiter agent decide which reply wins?"
    framed = ("The reply arbiter agent decides, first writing its own reply, then critiquing each candidate reply against it, "
              "and finally ranking the candidates by the critique [1].")
    result = Critic().check(framed, [Source(1, LOOM, [])], question=q)
    assert result.verdict == "supported", result.claims[0].reasons
    # the same frame followed by a step the abstract never states is still caught
    invented = Critic().check("The reply arbiter agent decides, first polling three external judges by majority vote [1].",
                              [Source(1, LOOM, [])], question=q)
    assert invented.verdict != "supported", invented.claims[0].reasons


class _Directions:
    """An embedder with fixed directions: the description, sentences about routing, and everything else."""

    name, dim, weighs_meaning = "directions", 3, True

    def embed(self, texts):
        import numpy as np

        def one(text: str):
            if "parcels" in text:  # the reader's description
                return [1.0, 0.0, 0.0]
            if "route" in text.lower():  # the right paper says it otherwise: 0.45 alike
                return [0.45, (1 - 0.45**2) ** 0.5, 0.0]
            return [0.0, 0.0, 1.0]

        return np.array([one(t) for t in texts], dtype=np.float32)


def test_a_which_paper_answer_paraphrased_by_the_reader_is_the_paper_that_fits_best():
    from paperchat.rag.critique.meaning import fits_best

    right = Paper(id="r", title="Quokka", abstract="Quokka learns to route drones around storms. It was tested in two cities.")
    other = Paper(id="o", title="Wombat", abstract="Wombat compresses images. It is fast.")
    question = "Which paper sends parcels by air while avoiding bad weather?"
    critic = Critic(embedder=_Directions())
    by_n = {1: Source(1, right, []), 2: Source(2, other, [])}
    assert fits_best(critic, question, 1, by_n, 0.45)
    assert not fits_best(critic, question, 2, by_n, 0.45)  # the one that fits worse is not the answer
    assert not fits_best(critic, question, 1, by_n, 0.3)  # too far from the description to be its paraphrase
    assert not fits_best(critic, question, 1, {1: by_n[1]}, 0.45)  # nothing to compare it with
    twin = Paper(id="t", title="Numbat", abstract="Numbat plans how drones route around storms.")
    assert not fits_best(critic, question, 1, {**by_n, 3: Source(3, twin, [])}, 0.45)  # another fits as well


KILN = Paper(
    id="k", title="Kiln: Curriculum Distillation for Small Code Models",
    abstract="Small code models forget rare APIs. We propose Kiln, a distillation recipe for them. "
    "Kiln first ranks the teacher's programs by how rarely their APIs occur. "
    "Then a student learns from the rarest programs with Span-Masking, hiding the API calls. "
    "Finally, Trace-Replay feeds the student its own failed executions. "
    "Experiments on four benchmarks show that Kiln outperforms plain distillation by 6 points.",
)


def test_a_how_does_it_work_answer_gets_the_rest_of_the_abstracts_description_but_not_its_results():
    draft = "Kiln ranks the teacher's programs by how rarely their APIs occur [1]."
    on = Critic().check(draft, [Source(1, KILN, [])], question="How does Kiln distil a small code model?")
    assert "Span-Masking" in on.answer and "Trace-Replay" in on.answer
    assert "6 points" not in on.answer and on.verdict == "supported"
    assert any("description goes on" in r for c in on.claims for r in c.reasons)
    # a question about one named part gets that part's description, not the next part's
    part = Critic().check("A student learns from the rarest programs with Span-Masking [1].", [Source(1, KILN, [])],
                          question="How does Span-Masking work in Kiln?")
    assert "Trace-Replay" not in part.answer
    # a question that asks an amount, not how it works, gets nothing added
    amount = Critic().check("Kiln outperforms plain distillation by 6 points [1].", [Source(1, KILN, [])],
                            question="By how many points does Kiln beat plain distillation?")
    assert amount.answer.count("[1]") == 1
    off = Critic(disabled=frozenset({"continues"})).check(draft, [Source(1, KILN, [])],
                                                          question="How does Kiln distil a small code model?")
    assert "Span-Masking" not in off.answer
