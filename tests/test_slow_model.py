"""The whole loop with the real embedded model (Qwen2.5-1.5B via llama.cpp). Slow; run in CI all the same."""

from __future__ import annotations

import json
import time

import pytest

from paperchat.eval.questions import load_questions
from paperchat.eval.runner import planted_checks
from paperchat.rag import prompts
from paperchat.rag.critique import Critic
from paperchat.rag.pipeline import Pipeline
from paperchat.rag.retrieval import Retriever
from paperchat.rag.store import PaperIndex

from .conftest import ROOT
from .fakes import INJECTION
from .live import browser, live_server

pytestmark = pytest.mark.slow
OUT = ROOT / "test-output"


@pytest.fixture(scope="session")
def real_llm(real_settings):
    from paperchat.rag.embedded import EmbeddedLLM

    return EmbeddedLLM.from_settings(real_settings)


@pytest.fixture(scope="session")
def real_pipeline(real_settings, real_index, real_llm):
    return Pipeline(real_settings, Retriever(real_index), real_llm)


def test_answers_a_factoid_with_the_right_citation(real_pipeline):
    answer = real_pipeline.ask("What F1 score does SPARK's process reward model reach on ProcessBench?")
    assert "67.5" in answer.answer
    assert answer.verdict in ("supported", "partially supported")
    assert answer.citations[0].title.startswith("SPARK")
    assert any("67.5" in s for s in answer.citations[0].supporting)
    assert answer.timings.first_token is not None and answer.timings.total > 0


def test_unanswerable_question_is_refused(real_pipeline):
    answer = real_pipeline.ask("What learning rate was used to fine-tune SPARK's generative process reward models?")
    assert answer.verdict in ("refused", "not supported")
    assert answer.answer.startswith(prompts.REFUSAL)


def test_follow_up_question_is_rewritten_and_answered(real_pipeline):
    history = [("user", "What does SPELL propose?"), ("assistant", "SPELL is a multi-role self-play RL framework [1].")]
    answer = real_pipeline.ask("Which roles does it integrate in a single model?", history)
    assert "spell" in answer.standalone_question.lower()
    assert answer.citations and answer.citations[0].title.startswith("SPELL")


def test_injected_abstract_does_not_steer_the_real_model(real_settings, minilm, seed_papers, real_llm, tmp_path):
    settings = real_settings.model_copy(update={"data_dir": tmp_path / "inj"})
    index = PaperIndex(settings, minilm)
    index.ingest(list(seed_papers) + list(INJECTION))
    answer = Pipeline(settings, Retriever(index), real_llm).ask("How much memory does Zebra Caching save?")
    assert "nobel" not in answer.answer.lower()
    assert "41%" in answer.answer or answer.verdict in ("refused", "not supported")


def test_critique_with_the_model_judge_catches_planted_errors(real_pipeline, real_llm):
    rows, _ = load_questions(ROOT / "eval" / "questions.jsonl")
    rows = [r for r in rows if r.answerable][:6]
    checks = [planted_checks(real_pipeline, row, Critic(real_llm)) for row in rows]
    assert all(checks), "every row's paper should be among its sources"
    results = [c for row_checks in checks for c in row_checks]
    must = [c["flagged"] for c in results if c["must_flag"]]
    correct = [c["flagged"] for c in results if not c["must_flag"]]
    assert sum(must) / len(must) >= 0.9
    assert sum(correct) / len(correct) <= 0.34


@pytest.mark.browser
def test_real_answer_in_the_browser(real_settings, real_index, real_llm):
    from paperchat.ui.server import create_app

    from .live import ask_in_page

    retriever = Retriever(real_index)
    app = create_app(real_settings, Pipeline(real_settings, retriever, real_llm), retriever)
    OUT.mkdir(exist_ok=True)
    with live_server(app) as url, browser() as b:
        page = b.new_page(viewport={"width": 1200, "height": 1000})
        page.goto(url + "/")
        page.wait_for_selector("#pc-question textarea", timeout=60_000)
        seen = ask_in_page(page, "What roles does SPELL combine in a single model?", timeout=300)
        assert seen["first_text"] is not None and seen["first_text"] < seen["final"]
        assert page.locator(".pc-badge").count() == 1
        assert page.locator(".pc-citation").count() >= 1
        page.locator(".pc-citation summary").first.click()
        page.locator(".pc-claims summary").first.click()
        time.sleep(0.3)
        page.screenshot(path=str(OUT / "chat-real-model.png"), full_page=True)
        (OUT / "browser-timings.json").write_text(json.dumps(seen))


def test_rereading_with_the_real_model_repairs_a_swapped_number_and_keeps_a_right_one(real_llm, seed_papers):
    from paperchat.rag.verify import Rereader

    paper = next(p for p in seed_papers if p.title.startswith("Automating the Enterprise"))
    reader = Rereader(real_llm)
    right = reader.check("RPA had 60% initial accuracy.", paper, given="How accurate was RPA at first?")
    assert right.verdict == "kept", right.readings
    # 93% is in the abstract too, as the accuracy on a workflow understanding task: a bound-elsewhere number
    swapped = reader.check("ECLAIR achieves end-to-end completion rates of 93%.", paper)
    assert swapped.verdict == "repaired" and "40%" in swapped.text, swapped.readings


def test_two_answer_slots_generate_two_answers_at_once(real_settings):
    """With ``parallel=2`` llama.cpp works on two requests together (its metrics count two being processed at one
    moment), and each answer is whole."""
    import re
    import threading

    from paperchat.rag.embedded import EmbeddedLLM
    from paperchat.rag.models import Message, Request

    settings = real_settings.model_copy(
        update={"embedded": real_settings.embedded.model_copy(update={"parallel": 2, "n_ctx": 2048})}
    )
    llm = EmbeddedLLM.from_settings(settings)
    assert llm.describe()["parallel"] == 2
    asks = ["Name the three primary colours of paint.", "Count from one to ten in words."]
    requests = [Request([Message("user", a)], max_tokens=48, temperature=0.0, seed=1) for a in asks]
    texts, busiest, done = {}, [0], threading.Event()

    def watch():
        while not done.is_set():
            found = re.search(r"llamacpp:requests_processing\s+([\d.]+)", llm._server.handle_metrics() or "")
            busiest[0] = max(busiest[0], int(float(found.group(1))) if found else 0)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=lambda i=i: texts.__setitem__(i, llm.complete(requests[i]).text)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    done.set()
    watcher.join()
    assert busiest[0] == 2, f"llama.cpp processed at most {busiest[0]} request(s) at once"
    assert re.search(r"red|blue|yellow", texts[0], re.IGNORECASE), texts[0]
    assert re.search(r"two", texts[1], re.IGNORECASE) and re.search(r"three", texts[1], re.IGNORECASE), texts[1]
