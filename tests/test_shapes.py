"""Question shapes: classification, listing fields as evidence, and the flow each shape gets.

Pipelines run over a real on-disk Chroma index of the seed papers with the deterministic
test embedder and a scripted model (the interfaces of the real ones).
"""

from __future__ import annotations

import pytest

from paperchat.rag.corpus import Paper
from paperchat.rag.critique import Critic, Source
from paperchat.rag.listing import listing_sentence
from paperchat.rag.pipeline import Pipeline
from paperchat.rag.retrieval import Retriever
from paperchat.rag.shapes import classify
from paperchat.rag.sides import comparison_sides
from paperchat.rag.topics import topic_of, topic_parts

from .fakes import ScriptedLLM, copying_reply

SPELL = "SPELL: Self-Play Reinforcement Learning for evolving Long-Context Language Models"
MUSIC = "Music Transformer"


@pytest.mark.parametrize(
    "question, shape, field",
    [
        ("How many authors does the SPELL paper have?", "metadata", "authors"),
        ("How many people wrote Music Transformer?", "metadata", "authors"),
        ("When was DreamTuner posted?", "metadata", "date"),
        ("Which year did DreamTuner go up on the listing?", "metadata", "date"),
        ("How many upvotes did SSRL get?", "metadata", "upvotes"),
        ("Where can I find the code for SPaR?", "metadata", "links"),
        ("Who wrote SPELL?", "metadata", "author_names"),
        ("Which papers are about vision-language models?", "list", None),
        ("Are there any papers on self-correction?", "list", None),
        ("Does SPARK or SPELL use a verifier?", "comparison", None),
        ("Compare SPaR and SSRL.", "comparison", None),
        ("Which paper lets one model play three roles on long documents?", "which-paper", None),
        ("What learning rate does SPARK use?", "factoid", None),
        ("What does the code generation model learn from?", "factoid", None),
        # readers' phrasings found by the fresh set's first run (eval/fresh.jsonl)
        ("How many people were enrolled in the IMBUE study?", "factoid", None),
        ("How many people are listed as authors of SPELL?", "metadata", "authors"),
        ("Which has the longer author list, SPELL or SSRL?", "comparison", "authors"),
        ("Which one came out first, SPELL or Music Transformer?", "comparison", "date"),
        ("Which of the papers are about self-play?", "list", None),
        # readers' phrasings found by the second fresh set's first run (eval/fresh2.jsonl)
        ("what benchmark did SPaR use, and which one did Self-Judge use?", "comparison", None),
        ("which models were the annotators in the AI feedback paper, and what base model did the Self-Specialization paper build on?", "comparison", None),
        ("SELF-GUIDE and STIC both train on self-generated data. What improvements does each report?", "comparison", None),
        ("What gain does STIC report, and how much less data does it use?", "factoid", None),
        ("which of these papers deal with video?", "list", None),
        ("is there a method that finds defects in unseen categories? what's it called?", "which-paper", None),
        # a count of what one paper covers is no list of papers
        ("How many papers does the ParseBench survey cover?", "factoid", None),
        ("How many papers in the collection study robot grasping?", "list", None),
    ],
)
def test_questions_are_classified_by_what_they_ask(question, shape, field):
    got = classify(question)
    assert (got.shape, got.field) == (shape, field)


def test_comparison_sides_need_two_names():
    assert comparison_sides("Is SPARK better than SPELL at math?") == ["SPARK", "SPELL"]
    assert comparison_sides("Which is better, the first or the second?") == []


@pytest.fixture
def scripted(fake_index, settings):
    llm = ScriptedLLM(copying_reply)
    return Pipeline(settings, Retriever(fake_index), llm), llm


def test_listing_fields_answer_metadata_questions_without_the_model(scripted, seed_papers):
    pipeline, llm = scripted
    spell = next(p for p in seed_papers if p.title == SPELL)
    answer = pipeline.ask("How many authors does the SPELL paper have?")
    assert answer.shape == "metadata"
    assert answer.answer == f"SPELL has {spell.authors} authors [1]."
    assert answer.verdict == "supported" and answer.citations[0].title == SPELL
    assert llm.requests == []  # no model call: the record answers it
    dated = pipeline.ask("When was Music Transformer listed?")
    assert "Sep 12, 2018" in dated.answer and dated.verdict == "supported"


def test_a_field_the_listing_lacks_is_refused_and_says_what_it_does_give(scripted):
    pipeline, _ = scripted
    answer = pipeline.ask("How many upvotes does Music Transformer have?")
    assert answer.verdict == "refused" and "does not give its number of upvotes" in answer.answer
    assert answer.related and "10 authors" in answer.related[0].sentence
    names = pipeline.ask("Who is the first author of the SPELL paper?")
    assert names.verdict == "refused" and "author names" in names.answer


def test_the_model_sees_the_listing_only_when_the_question_may_be_about_it(scripted):
    pipeline, llm = scripted
    pipeline.ask("What does SPELL use self-play for, and how recent is it?")
    assert "Listing: 8 authors; listed on Sep 28." in llm.requests[0].messages[-1].content
    # any other question reads fewer prompt tokens: the listing line is left out
    pipeline.ask("What does SPELL use self-play for in long-context reasoning?")
    prompt = llm.requests[-1].messages[-1].content
    assert "SPELL" in prompt and "Listing:" not in prompt


def drafting(draft: str, check=None):
    """A scripted model's reply function: ``draft`` for drafting (after ``check(request)``), "supported" when judging."""

    def reply(request):
        if request.json_schema is not None:
            return '{"quote": "", "verdict": "supported"}'
        if check is not None:
            check(request)
        return draft

    return reply


def test_which_paper_answers_name_the_paper(fake_index, settings):
    # a draft that answers without naming the paper, as the small model often does
    reply = drafting("It uses a questioner, a responder and a verifier on long documents [1].")
    pipeline = Pipeline(settings, Retriever(fake_index), ScriptedLLM(reply))
    answer = pipeline.ask("Which paper has one model act as questioner, responder and verifier (SPELL)?")
    assert answer.shape == "which-paper"
    assert answer.answer.startswith(f'The paper is "{SPELL}" [1].'), answer.answer


def test_comparison_is_drafted_one_side_at_a_time_each_from_its_own_paper(fake_index, settings):
    seen = []

    def reply(request):
        if request.json_schema is not None:
            return '{"quote": "", "verdict": "supported"}'
        prompt = request.messages[-1].content
        seen.append(prompt)
        if "about SPELL only" in prompt:
            return "SPELL has a single model play questioner, responder and verifier [1]."
        return "Music Transformer uses relative attention to generate music with long-term structure [2]."

    pipeline = Pipeline(settings, Retriever(fake_index), ScriptedLLM(reply))
    answer = pipeline.ask("Compare SPELL and Music Transformer: what does each do?")
    assert answer.shape == "comparison"
    # two drafting calls, and each saw only its own side's paper
    assert len(seen) == 2
    # the question is asked of each side alone too: the other side is not even named
    assert SPELL in seen[0] and "Music" not in seen[0] and "Question: Compare SPELL: what does it do?" in seen[0]
    assert MUSIC in seen[1] and "SPELL" not in seen[1]
    assert [r.label for r in answer.rows] == ["SPELL", "Music Transformer"]
    assert [c.title for c in answer.citations] == [SPELL, MUSIC]
    assert not any(r.missing for r in answer.rows) or answer.verdict != "supported"


def test_a_comparison_with_a_baseline_inside_the_one_paper_is_a_question_about_that_paper(fake_index, settings, seed_papers):
    spell = next(p for p in seed_papers if p.title == SPELL)
    assert "Qwen3-30B-A3B-Thinking" in spell.abstract  # a model SPELL reports on, not a paper of the collection
    reply = drafting("SPELL has a single model play questioner, responder and verifier [1].")
    pipeline = Pipeline(settings, Retriever(fake_index), ScriptedLLM(reply))
    answer = pipeline.ask("How much does SPELL improve pass@8 compared with Qwen3-30B-A3B-Thinking?")
    assert answer.shape == "factoid" and not answer.rows


def test_comparison_with_a_side_not_in_the_papers_says_which(fake_index, settings):
    reply = drafting("SPELL has a single model play questioner, responder and verifier [1].")

    pipeline = Pipeline(settings, Retriever(fake_index), ScriptedLLM(reply))
    answer = pipeline.ask("Does SPELL or ZebraNet use a verifier?")
    assert answer.shape == "comparison"
    missing = [r.label for r in answer.rows if r.missing]
    assert missing == ["ZebraNet"]
    # half a comparison is not a supported answer to it
    assert answer.verdict == "partially supported", answer.verdict


def test_a_side_described_rather_than_named_is_found_by_its_description(fake_index, settings):
    # no paper is called "VLM refinement work", but one paper's abstract is about refining VLMs' answers
    pipeline = Pipeline(settings, Retriever(fake_index), ScriptedLLM(drafting("x [1].")))
    question = "How do the VLM refinement work and Music Transformer differ in what they train on?"
    plan = pipeline.plan(question, classify(question))
    assert plan.shape == "comparison" and not plan.missing
    assert [s.paper.title.split(":")[0] for s in plan.sources] == ["Self-Correction is More than Refinement", MUSIC]


def test_each_side_is_asked_what_the_comparison_asks(fake_index, settings):
    seen = []

    def reply(request):
        if request.json_schema is not None:
            return '{"quote": "", "verdict": "supported"}'
        seen.append(request.messages[-1].content)
        if "about SPELL only" in request.messages[-1].content:
            return "SPELL has a single model play questioner, responder and verifier [1]."
        return "Music Transformer generates minute-long compositions [2]."

    pipeline = Pipeline(settings, Retriever(fake_index), ScriptedLLM(reply))
    pipeline.ask("SPELL vs Music Transformer — how long are the inputs each one handles?")
    questions = [next(line for line in p.splitlines() if line.startswith("Question:")) for p in seen]
    # rewritten for one side, the first clause alone ("What is SPELL?") would have lost the ask
    assert len(questions) == 2 and all("how long" in q for q in questions), questions
    assert "Music" not in questions[0] and "SPELL" not in questions[1]


GRAO = Paper(
    id="g",
    title="GRAO: Group Relative Alignment",
    abstract="We propose GRAO. GRAO achieves 57.70%, 17.65% and 5.18% relative improvements over SFT, DPO and "
    "GRPO baselines respectively.",
    authors=15,
)


def test_a_number_bound_to_another_item_is_repaired():
    result = Critic().check("GRAO gives a 57.70% relative improvement over DPO [1].", [Source(1, GRAO, [])])
    assert result.answer == "GRAO gives a 17.65% relative improvement over DPO [1]."
    assert result.claims[0].verdict == "corrected"
    assert "corrected to 17.65%" in result.claims[0].reasons[0]


def test_listing_claims_are_checked_against_the_record():
    ok = Critic().check("GRAO has 15 authors [1].", [Source(1, GRAO, [])], question="How many authors wrote GRAO?")
    assert ok.verdict == "supported"
    bad = Critic().check("GRAO has 5 authors [1].", [Source(1, GRAO, [])], question="How many authors wrote GRAO?")
    assert bad.verdict == "not supported"
    assert listing_sentence(GRAO) == "Listing: 15 authors."


def test_swapped_sides_are_not_re_cited():
    a = Source(1, Paper(id="a", title="SPARK: Rewards", abstract="SPARK reaches 67.5 F1 on ProcessBench."), [])
    b = Source(2, Paper(id="b", title="SPELL: Self-play", abstract="SPELL reaches 61.9 F1 on ProcessBench."), [])
    result = Critic().check("SPARK reaches 61.9 F1 on ProcessBench [1].", [a, b])
    assert result.verdict == "not supported"
    right = Critic().check("SPARK reaches 67.5 F1 on ProcessBench [1]. SPELL reaches 61.9 F1 on ProcessBench [2].", [a, b])
    assert right.verdict == "supported"


def test_fragments_are_never_supported_and_terse_answers_are_read_with_the_question():
    src = Source(1, Paper(id="a", title="SPARK: Rewards", abstract="SPARK reaches 67.5 F1 on ProcessBench."), [])
    frag = Critic().check("The F1 of SPARK on ProcessBench is shown on [1].", [src])
    assert frag.verdict == "not supported" and "mid-sentence" in frag.claims[0].reasons[0]
    terse = Critic().check("67.5 [1].", [src], question="What F1 does SPARK reach on ProcessBench?")
    assert terse.verdict == "supported"
    wrong = Critic().check("71.2 [1].", [src], question="What F1 does SPARK reach on ProcessBench?")
    assert wrong.verdict == "not supported"


def test_reworded_claims_are_kept_when_an_embedder_finds_the_same_meaning(minilm):
    src = Source(
        1,
        Paper(id="m", title="Music Transformer", abstract="Music relies heavily on repetition to build structure and meaning."),
        [],
    )
    reworded = "Music Transformer notes that music depends a lot on repeated material to create structure [1]."
    assert Critic().check(reworded, [src]).verdict == "not supported"  # words alone: a false alarm
    assert Critic(embedder=minilm).check(reworded, [src]).verdict == "supported"
    invented = "Music Transformer was trained on 10,000 hours of jazz recorded in Oslo [1]."
    assert Critic(embedder=minilm).check(invented, [src]).verdict == "not supported"


STIC = Paper(
    id="stic",
    title="Enhancing Large Vision Language Models with Self-Training on Image Comprehension",
    abstract=(
        "Self-training approaches have been effective in single-modal settings to alleviate the need for labeled data by "
        "leveraging model's own generation. To address this, we introduce Self-Training on Image Comprehension (STIC), "
        "which emphasizes a self-training approach specifically for image comprehension. First, the model "
        "self-constructs a preference dataset for image descriptions using unlabeled images. We validate the "
        "effectiveness of STIC across seven different benchmarks, demonstrating substantial performance gains of 4.0% on "
        "average while using 70% less supervised fine-tuning data than the current method."
    ),
)


def test_a_description_in_the_abstracts_words_that_says_something_else_is_withheld(minilm):
    # the embedded model's draft for "How does STIC get away with 90% less supervised fine-tuning data?": the
    # abstract's words (fine-tuning, dataset, images), a claim it does not make (labeled images, object detection)
    invented = (
        "The supervised fine-tuning component involves fine-tuning the model on a smaller dataset of labeled images "
        "and text, which helps it learn to perform specific tasks such as image classification and object detection [1]."
    )
    src = Source(1, STIC, [])
    result = Critic(embedder=minilm).check(invented, [src])
    assert result.verdict == "not supported"
    assert "no sentence of the cited abstract says this" in " ".join(result.claims[0].reasons)
    assert Critic().check(invented, [src]).verdict == "supported"  # words alone pass it: what this check is for
    # the same point in other words, and a description that is the abstract's, are kept
    for kept in (
        "STIC has the model build its own preference data for describing images from images without labels [1].",
        "STIC is a self-training approach made specifically for image comprehension [1].",
    ):
        assert Critic(embedder=minilm).check(kept, [src]).verdict == "supported", kept


SSRL = Paper(id="r", title="SSRL: Self-Search Reinforcement Learning", abstract="SSRL searches itself.", authors=18, date="Aug 14", upvotes=4)
SPELL_P = Paper(id="p", title="SPELL: Self-Play", abstract="SPELL plays itself.", authors=8, date="Sep 28")
MUSIC_P = Paper(id="m", title="Music Transformer", abstract="Music relies on repetition.", authors=10, date="Sep 12, 2018")
GTA = Paper(id="g", title="Beyond Grand Theft Auto V for Self Driving", abstract="We drive in a game.", authors=6, date="Dec 4, 2017")


def test_a_claim_citing_two_papers_is_kept_when_each_gives_its_fact():
    sources = [Source(1, SSRL, []), Source(2, SPELL_P, [])]
    q = "Which paper lists more authors, SSRL or SPELL?"
    both = Critic().check("SSRL has 18 authors [1], against 8 for SPELL [2].", sources, question=q)
    assert both.verdict == "supported", both.claims[0].reasons


def test_listing_fields_of_two_papers_are_compared_from_the_records():
    from paperchat.rag.listing import compare_listing

    assert compare_listing(SSRL, SPELL_P, "authors", 1, 2) == "SSRL has more authors than SPELL (18 against 8) [1][2]."
    assert compare_listing(MUSIC_P, GTA, "date", 1, 2) == "Beyond Grand Theft Auto V for Self Driving was listed before Music Transformer [1][2]."
    assert compare_listing(SSRL, SPELL_P, "date", 1, 2) is None  # no year: not comparable


def test_month_names_match_the_listings_abbreviations_and_short_answers_read_with_the_question():
    src = [Source(1, MUSIC_P, [])]
    q = "When was the Music Transformer paper listed?"
    assert Critic().check("It was listed on September 12, 2018 [1].", src, question=q).verdict == "supported"
    assert Critic().check("It was listed on October 12, 2018 [1].", src, question=q).verdict == "not supported"
    assert Critic().check("Sep 12, 2018 [1].", src, question=q).verdict == "supported"


def test_a_repeated_claim_is_said_once():
    result = Critic().check("SSRL searches itself [1]. SSRL searches itself [1].", [Source(1, SSRL, [])])
    assert result.answer == "SSRL searches itself [1]."


def test_comparison_of_listing_fields_needs_no_model(fake_index, settings):
    llm = ScriptedLLM([])  # no replies: any model call fails the test
    pipeline = Pipeline(settings, Retriever(fake_index), llm)
    answer = pipeline.ask("Which paper lists more authors, SSRL or SPELL?")
    assert answer.shape == "comparison" and llm.requests == []
    assert "SSRL has more authors than SPELL (18 against 8)" in answer.answer
    assert answer.verdict == "supported" and [r.missing for r in answer.rows] == [False, False]


def test_a_claim_that_restates_the_question_or_counts_the_wrong_thing_does_not_answer_it():
    dit = Paper(id="d", title="Learning Plug-and-play Memory (DiT-Mem)",
                abstract="The DiT-Mem memory encoder is trained on 10K data samples with 150M parameters.")
    src = [Source(1, dit, [])]
    gpus = Critic().check("The DiT-Mem encoder was trained on 10K data samples [1].", src,
                          question="How many GPUs were used to train the DiT-Mem memory encoder?")
    assert gpus.verdict == "not supported"
    samples = Critic().check("The DiT-Mem encoder was trained on 10K data samples [1].", src,
                             question="How many samples was the DiT-Mem memory encoder trained on?")
    assert samples.verdict == "supported"
    again = Critic().check("The DiT-Mem memory encoder is trained [1].", src, question="How is the DiT-Mem memory encoder trained?")
    assert again.verdict == "not supported" and "restates" in again.claims[0].reasons[0]


def test_each_side_of_a_comparison_is_checked_against_the_question_asked_of_it(fake_index, settings):
    # the joined question names DPO, which uMedSum's abstract never mentions: checked against it, the
    # right uMedSum answer would be withheld as "not about the question"
    def reply(request):
        if request.json_schema is not None:
            return '{"quote": "", "verdict": "supported"}'
        if "about GRAO only" in request.messages[-1].content:
            return "The source above is about GRAO only. GRAO achieves a 17.65% relative improvement over DPO [1]."
        return "uMedSum achieves an average relative performance improvement of 11.8% in reference-free metrics [2]."

    pipeline = Pipeline(settings, Retriever(fake_index), ScriptedLLM(reply))
    answer = pipeline.ask(
        "Who reports the bigger relative improvement: GRAO over DPO, or uMedSum over the previous state of the art "
        "on reference-free metrics?"
    )
    assert answer.shape == "comparison" and answer.verdict == "supported", [c.reasons for c in answer.claims]
    assert [r.label for r in answer.rows] == ["GRAO", "uMedSum"] and not any(r.missing for r in answer.rows)
    assert "17.65%" in answer.rows[0].text and "11.8%" in answer.rows[1].text
    assert not answer.answer.startswith("The source")


def test_a_which_paper_draft_whose_subject_is_its_citation_names_the_paper(fake_index, settings):
    # "[1] integrates …": the small model's way of answering "which paper"; the cited paper is the answer
    reply = drafting("[1] integrates three cyclical roles-questioner, responder, and verifier-within a single model "
                     "to enable continual self-improvement.")
    pipeline = Pipeline(settings, Retriever(fake_index), ScriptedLLM(reply))
    answer = pipeline.ask("Which paper integrates questioner, responder and verifier roles within a single model?")
    assert answer.shape == "which-paper" and answer.verdict == "supported", [c.reasons for c in answer.claims]
    assert answer.answer.startswith(f"{SPELL} integrates"), answer.answer
    assert answer.draft.startswith("[1] integrates")  # what the model wrote is kept as written


def test_a_metadata_question_asking_two_fields_gets_both(fake_index, settings):
    pipeline = Pipeline(settings, Retriever(fake_index), ScriptedLLM(["unused"]))
    answer = pipeline.ask("When was SPELL listed, and how many authors does it have?")
    assert answer.shape == "metadata" and answer.verdict == "supported", [c.reasons for c in answer.claims]
    assert "8 authors" in answer.answer and "Sep 28" in answer.answer, answer.answer


def test_a_list_names_every_paper_stating_the_topics_distinctive_phrase(fake_index, settings):
    # "self-play" is stated by three seed papers; ranking on its words ("self" starts many titles) misses
    # one, so the phrase is also looked for in every paper
    llm = ScriptedLLM(lambda r: '{"quote": "", "verdict": "supported"}')
    pipeline = Pipeline(settings, Retriever(fake_index), llm)
    answer = pipeline.ask("Which papers use self-play?")
    listed = {r.label for r in answer.rows}
    assert answer.shape == "list" and len(listed) <= settings.answer.list_max
    assert any(t.startswith("SPELL:") for t in listed) and any(t.startswith("SPaR:") for t in listed)
    assert "Generating Pragmatic Examples to Train Neural Program Synthesizers" in listed
    # a phrase that no abstract states close to the topic still lists the one paper that states it
    answer = pipeline.ask("Which papers use a teacher-student setup?")
    assert any(r.label.startswith("Point-DETR3D") for r in answer.rows)
    # one paper writes "teacher-student"; another updates "the teacher" with "the past student" in other words
    future = next(r for r in answer.rows if r.label.startswith("Learning from Future"))
    assert "teacher" in future.text and "student" in future.text


def test_a_list_of_papers_naming_a_model_family_finds_every_version_in_the_whole_collection(fake_index, settings, seed_papers):
    """"Qwen models" are named as Qwen2.5-Math-7B, Qwen-2.5-7B, Qwen3-30B-…: every paper naming one is listed, found
    by reading every record (the search's top ten may miss some), and no other paper."""
    import re

    pipeline = Pipeline(settings, Retriever(fake_index), ScriptedLLM([]))
    answer = pipeline.ask("Which papers run experiments on Qwen models?")
    naming = {p.title for p in seed_papers if re.search(r"\bQwen-?\d", p.abstract)}
    assert len(naming) >= 3
    assert {c.title for c in answer.citations} == naming
    assert answer.verdict == "supported"


def test_a_which_paper_answer_gives_the_abstracts_name_for_the_method(seed_papers):
    """A title that lacks the method's name ("… From Data") gets the name the abstract gives it ("PIT")."""
    from paperchat.rag.critique import ClaimCheck, Critique
    from paperchat.rag.finish import finish
    from paperchat.rag.plans import Plan

    pit = next(p for p in seed_papers if p.title.startswith("Enable Language Models to Implicitly Learn"))
    src = Source(n=1, paper=pit, excerpt=[])
    claim = ClaimCheck(text=f"{pit.title}.", cited=[1], sources=[1], verdict="supported")
    answer, _ = finish(Plan("which-paper", [src]), Critique(claims=[claim], verdict="supported", answer=f"{pit.title} [1]."), [src])
    assert answer == f"{pit.title} (PIT) [1]."


def test_a_list_about_one_word_names_every_paper_using_it(fake_index, settings, seed_papers):
    """"Which of the papers deal with segmentation?": every paper whose record says "segmentation" is listed."""
    pipeline = Pipeline(settings, Retriever(fake_index), ScriptedLLM([]))
    answer = pipeline.ask("Which of the papers deal with segmentation?")
    stating = {p.title for p in seed_papers if "segmentation" in f"{p.title} {p.abstract}".lower()}
    assert len(stating) >= 3
    assert {c.title for c in answer.citations} == stating


def test_a_listing_comparison_keeps_each_sides_record_when_the_question_quotes_a_title(fake_index, settings, seed_papers):
    """The claims are written from the records, so the other side's quoted title is not asked of each side."""
    pipeline = Pipeline(settings, Retriever(fake_index), ScriptedLLM([]))
    answer = pipeline.ask("Which has the longer author list: SSRL, or GRAO's 'Learning to Align, Aligning to Learn'?")
    counts = {p.title.split(":")[0]: p.authors for p in seed_papers if p.title.startswith(("SSRL", "Learning to Align"))}
    assert answer.verdict == "supported", [(c.text, c.reasons) for c in answer.claims]
    assert all(f"{n} authors" in answer.answer for n in counts.values())


def test_a_listed_line_re_cited_to_a_paper_already_listed_joins_its_row(seed_papers):
    """Each paper is listed once: a second kept line for it (re-cited there by the critique) joins its row."""
    from paperchat.rag.critique import ClaimCheck, Critique
    from paperchat.rag.finish import finish
    from paperchat.rag.plans import Plan

    a, b = (Source(n=i, paper=p, excerpt=[]) for i, p in enumerate(seed_papers[:2], 1))
    claims = [
        ClaimCheck(text="First line.", cited=[1], sources=[1], verdict="supported"),
        ClaimCheck(text="Second line.", cited=[2], sources=[1], verdict="corrected"),
        ClaimCheck(text="Third line.", cited=[2], sources=[2], verdict="supported"),
    ]
    answer, rows = finish(Plan("list", [a, b]), Critique(claims=claims, verdict="supported", answer=""), [a, b])
    assert answer.startswith("2 papers match:") and answer.count("[1]") == 1
    assert [r.sources[0] for r in rows] == [1, 2]
    assert rows[0].text == "First line [1]. Second line [1]."


def test_a_question_asking_one_thing_of_each_of_two_papers_is_drafted_side_by_side(fake_index, settings):
    """"What benchmark did SPaR use, and which one did Self-Judge use …?": each side is drafted from its own paper,
    asked only its own part, and checked against that part (not against the other side's name)."""
    seen = []

    def reply(request):
        prompt = request.messages[-1].content
        seen.append(prompt)
        if "about SPaR only" in prompt:
            return "SPaR reports its gains on IFEval [1]."
        return "Self-Judge shows its judges work as reward models on AlpacaEval [2]."

    pipeline = Pipeline(settings, Retriever(fake_index), ScriptedLLM(reply))
    answer = pipeline.ask("what benchmark did SPaR use to show its gains, and which one did Self-Judge use to show its judges work?")
    assert answer.shape == "comparison" and len(seen) == 2
    assert "Question: What benchmark did SPaR use to show its gains?" in seen[0] and "Self-Judge" not in seen[0]
    assert "Question: Which benchmark did Self-Judge use to show its judges work?" in seen[1]
    assert answer.verdict == "supported", [c.reasons for c in answer.claims]
    assert "IFEval" in answer.answer and "AlpacaEval" in answer.answer


def test_list_topics_drop_asides_and_filler(fake_index, settings, seed_papers):
    """"which papers tackle some kind of segmentation?" is the one-word topic "segmentation"; "(or parts of the
    model)" and ", either generating it or understanding it" elaborate the topic, they are not topics of their own."""
    pipeline = Pipeline(settings, Retriever(fake_index), ScriptedLLM([]))
    answer = pipeline.ask("which papers tackle some kind of segmentation?")
    stating = {p.title for p in seed_papers if "segmentation" in f"{p.title} {p.abstract}".lower()}
    assert {c.title for c in answer.citations} == stating
    assert topic_parts(topic_of("which of these papers deal with video, either generating it or understanding it?")) == ["video"]


def test_two_sides_that_are_one_paper_are_a_question_about_that_paper(fake_index, settings):
    reply = drafting("SPELL has a single model play questioner, responder and verifier [1].")
    llm = ScriptedLLM(reply)
    answer = Pipeline(settings, Retriever(fake_index), llm).ask(
        "Which gets more out of self-play, SPELL or the self-play reinforcement learning method for evolving long-context models?"
    )
    assert answer.shape == "factoid" and not answer.rows  # one paper described twice: not drafted side by side
    assert len(llm.requests) == 1


def test_whole_paper_shows_the_best_paper_whole_for_any_question(fake_index, settings):
    from paperchat.rag.text import split_sentences

    question = "Which roles does SPELL train a single model for?"
    whole = settings.model_copy(update={"answer": settings.answer.model_copy(update={"whole_paper": True})})
    shown = {}
    for name, s in (("excerpt", settings), ("whole", whole)):
        pipeline = Pipeline(s, Retriever(fake_index), ScriptedLLM(drafting("x [1].")))
        sources = pipeline.evidence(question, pipeline.retriever.search(question, k=s.answer.sources))
        shown[name] = sources
    best = shown["whole"][0]
    assert best.paper.title == SPELL and best.excerpt == split_sentences(best.paper.abstract)
    # by default a one-part question gets the best sentences only
    assert sum(len(s.excerpt) for s in shown["excerpt"]) <= settings.answer.evidence_sentences
    assert len(shown["excerpt"][0].excerpt) < len(best.excerpt)
