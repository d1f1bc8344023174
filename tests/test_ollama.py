"""paperchat against each behaviour of a real Ollama server that the stand-in copies from Ollama's source."""

from __future__ import annotations

import logging

import ollama
import pytest
from pydantic import ValidationError

from paperchat.rag.backends import AutoLLM, OllamaLLM, estimate_prompt_tokens
from paperchat.rag.errors import ContextOverflowError, ModelNotPulledError, ModelUnavailableError
from paperchat.rag.models import Message, Request
from paperchat.rag.settings import Settings

from .fakes import ScriptedLLM
from .ollama_standin import BUSY, OllamaStandIn, StandInModel

MODEL = "qwen2.5:7b-instruct"
ANSWER = "SPELL trains long-context reasoning by self-play [1]."
USER_Q = {"role": "user", "content": "Q"}


@pytest.fixture
def standin():
    server = OllamaStandIn(reply=lambda body: ANSWER).start()
    yield server
    server.stop()


def ask(llm, text: str = "hi", **kw):
    return llm.complete(Request([Message("system", "Answer from the sources."), Message("user", text)], **kw))


def test_names_match_as_the_server_matches_them(standin):
    standin.models = [MODEL, "llama3"]
    for name in ["Qwen2.5:7B-Instruct", "library/qwen2.5:7b-instruct", f"registry.ollama.ai/library/{MODEL}"]:
        llm = OllamaLLM(standin.url, name)
        llm.check()  # /api/show, not an exact match against /api/tags
        assert ask(llm).text == ANSWER
    assert ask(OllamaLLM(standin.url, "llama3")).text == ANSWER  # ":latest" filled in
    tags = {m.model for m in ollama.Client(host=standin.url).list().models}
    assert tags == {MODEL, "llama3:latest"}  # /api/tags spells the tag out
    with pytest.raises(ModelNotPulledError, match="ollama pull llama3.1:8b"):
        OllamaLLM(standin.url, "llama3.1:8b").check()
    with pytest.raises(ModelNotPulledError):
        OllamaLLM(standin.url, "someone/qwen2.5:7b-instruct").check()  # another namespace is another model


def test_real_404_texts(standin):
    llm = OllamaLLM(standin.url, MODEL)
    llm.check()
    standin.models = []  # removed (`ollama rm`) after the check: chat answers "model '...' not found"
    with pytest.raises(ModelNotPulledError, match="ollama pull"):
        ask(llm)
    standin.models = [MODEL]
    wrong_path = OllamaLLM(standin.url + "/ollama", MODEL)  # a reverse-proxy path the server does not have
    with pytest.raises(ModelUnavailableError, match="404 page not found.*OLLAMA_HOST"):
        wrong_path.check()


def test_thinking_model_is_told_not_to_think(standin):
    standin.models = [StandInModel("qwen3:8b", capabilities=("completion", "thinking"), thinking_tokens=400)]
    raw = ollama.Client(host=standin.url).chat(
        model="qwen3:8b", messages=[{"role": "user", "content": "Q"}], options={"num_predict": 320}
    )
    assert raw.message.content == "" and raw.message.thinking and raw.done_reason == "length"  # the failure
    llm = OllamaLLM(standin.url, "qwen3:8b")
    assert ask(llm, max_tokens=320).text == ANSWER
    assert standin.chats()[-1]["think"] is False
    assert llm.describe()["thinking"] is True
    standin.models = [MODEL]
    plain = OllamaLLM(standin.url, MODEL)
    ask(plain)
    assert "think" not in standin.chats()[-1]  # think=true would get 400 "does not support thinking"


def test_an_older_server_that_says_less_about_the_model(standin):
    standin.old_show = True
    standin.models = [StandInModel(MODEL, context_length=4096)]
    llm = OllamaLLM(standin.url, MODEL, num_ctx=8192)
    llm.check()  # present, though the client cannot read the rest of /api/show
    assert ask(llm).text == ANSWER
    body = standin.chats()[-1]
    assert "think" not in body and body["options"]["num_ctx"] == 8192
    assert standin.loads == [(MODEL, 4096)]  # the server caps it itself (llm/server.go)
    assert llm.info.capabilities is None and llm.describe()["num_ctx"] == 8192


def test_num_ctx_is_capped_to_the_trained_context(standin, caplog):
    standin.models = [StandInModel(MODEL, context_length=4096)]
    llm = OllamaLLM(standin.url, MODEL, num_ctx=8192)
    with caplog.at_level(logging.WARNING, logger="paperchat.rag.ollama"):
        llm.check()
    assert "trained for 4096 tokens" in caplog.text
    ask(llm)
    assert standin.chats()[-1]["options"]["num_ctx"] == 4096
    assert llm.describe()["num_ctx"] == 4096 and llm.describe()["trained_ctx"] == 4096


@pytest.mark.parametrize(
    ("env", "sent"), [("-1", -1), ("3600", 3600), ("30m", "30m"), ("1h30m", "1h30m"), ("-1s", "-1s"), ("0.5", 0.5)]
)
def test_keep_alive_from_the_environment_is_what_the_server_accepts(standin, monkeypatch, env, sent):
    monkeypatch.setenv("PAPERCHAT_OLLAMA__KEEP_ALIVE", env)
    settings = Settings(ollama={"host": standin.url})
    assert settings.ollama.keep_alive == sent
    assert ask(OllamaLLM.from_settings(settings)).text == ANSWER
    assert standin.chats()[-1]["keep_alive"] == sent


def test_keep_alive_the_server_would_refuse_is_a_settings_error(standin, monkeypatch):
    with pytest.raises(ollama.ResponseError, match="missing unit in duration") as raw:  # the server's side
        ollama.Client(host=standin.url).chat(model=MODEL, messages=[USER_Q], keep_alive="3600")
    assert raw.value.status_code == 400
    for bad in ["forever", "1h30", "true", "10 minutes"]:
        monkeypatch.setenv("PAPERCHAT_OLLAMA__KEEP_ALIVE", bad)
        with pytest.raises(ValidationError, match="PAPERCHAT_OLLAMA__KEEP_ALIVE.*30m, 1h30m, 3600"):
            Settings()
    llm = OllamaLLM(standin.url, MODEL, keep_alive="3600")  # unvalidated: the 400 is a sentence too
    with pytest.raises(ModelUnavailableError, match="HTTP 400: time: missing unit"):
        ask(llm)


def test_busy_server_is_a_sentence_and_auto_says_it_falls_back(standin, caplog):
    standin.busy = True
    with pytest.raises(ModelUnavailableError, match="is busy.*maximum pending requests exceeded.*Ask again"):
        ask(OllamaLLM(standin.url, MODEL))
    fallback = ScriptedLLM(lambda r: "embedded answer", model="embedded-fake")
    auto = AutoLLM(OllamaLLM(standin.url, MODEL), lambda: fallback, recheck_s=60)
    assert auto.active() is auto.ollama  # up and has the model; the chat then gets 503
    with caplog.at_level(logging.WARNING, logger="paperchat.rag.backends"):
        assert ask(auto).text == "embedded answer"
    assert BUSY in caplog.text and "retrying this request on the embedded model embedded-fake" in caplog.text


def test_error_line_mid_stream_is_an_error_not_an_answer(standin):
    standin.error_after = 2
    llm = OllamaLLM(standin.url, MODEL)
    seen: list[str] = []
    with pytest.raises(ModelUnavailableError, match="failed in the middle of the answer.*unexpected EOF.*discarded"):
        llm.complete(Request([Message("user", "hi")]), on_text=seen.append)
    assert seen == ["SPELL", " trains"]  # what streamed before the error line; complete() returned nothing
    fallback = ScriptedLLM(lambda r: "embedded answer")
    auto = AutoLLM(OllamaLLM(standin.url, MODEL), lambda: fallback, recheck_s=60)
    with pytest.raises(ModelUnavailableError, match="middle of the answer"):
        ask(auto)  # text had already streamed: not silently replaced by another model's answer
    assert fallback.requests == []


def test_invalid_format_gets_the_servers_500_and_the_client_stops_it_first(standin):
    import httpx

    raw = httpx.post(f"{standin.url}/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "Q"}],
                                                       "format": "yaml"})
    assert raw.status_code == 500 and raw.json()["error"].startswith('invalid format: "\\"yaml\\""')
    llm = OllamaLLM(standin.url, MODEL)
    with pytest.raises(ModelUnavailableError, match="ollama client refused.*ollama>=0.5,<1"):
        ask(llm, json_schema="yaml")  # type: ignore[arg-type]  (ollama>=0.5 checks `format` before sending)
    assert ask(llm, json_schema={"type": "object"}).text == ANSWER


def test_wire_details_created_at_load_duration_and_text_in_the_final_chunk(standin):
    standin.load_s = 0.2
    parts = list(ollama.Client(host=standin.url).chat(model=MODEL, messages=[USER_Q], stream=True))
    assert all(p.created_at for p in parts)
    assert parts[-1].done and parts[-1].message.content == " [1]."  # the last piece comes with done
    assert parts[-1].load_duration >= 0.2e9
    assert ask(OllamaLLM(standin.url, MODEL)).text == ANSWER  # the final chunk's text is kept


def test_prompt_count_without_cached_tokens_raises_no_false_alarm(standin):
    standin.prompt_count_omits_cache = True  # Ollama 0.30.x: prompt_eval_count leaves the cached prefix out
    llm = OllamaLLM(standin.url, MODEL, num_ctx=2048)
    sources = "Sources: " + " ".join(f"fact {i} is {i * 7}." for i in range(200))
    first = ask(llm, sources + " Q1?")
    second = ask(llm, sources + " Q2?")
    assert second.usage.prompt_tokens < first.usage.prompt_tokens / 10  # only the new tail was counted
    with pytest.raises(ContextOverflowError):  # and a prompt that does not fit is still caught
        ask(llm, sources * 3 + " Q3?")


def test_truncation_by_the_go_runner_is_detected(standin, caplog):
    standin.truncation = "runner"  # the runners before Ollama 0.30 keep exactly num_ctx tokens
    standin.token_factor = 2  # the model's tokenizer makes twice the tokens paperchat counts
    llm = OllamaLLM(standin.url, MODEL, num_ctx=1024)
    sources = "Sources: " + " ".join(f"fact {i} is {i * 7}." for i in range(100))
    ours = estimate_prompt_tokens([Message("system", "Answer from the sources."), Message("user", sources)])
    assert ours + 64 <= 1024 < 2 * ours  # fits by paperchat's count, not by the model's
    with caplog.at_level(logging.WARNING, logger="paperchat.rag.ollama"), pytest.raises(
        ContextOverflowError, match="1,024 prompt .*cut the prompt.*PAPERCHAT_OLLAMA__NUM_CTX"
    ):
        ask(llm, sources, max_tokens=64)
    assert standin.truncated and standin.truncated[-1][1] == 1024
    assert "context overflow" in caplog.text


def test_prompt_the_server_would_cut_is_never_sent(standin):
    llm = OllamaLLM(standin.url, MODEL, num_ctx=1024)
    sources = "Sources: " + " ".join(f"fact {i} is {i * 7}." for i in range(200))
    raw = ollama.Client(host=standin.url).chat(
        model=MODEL, messages=[{"role": "user", "content": sources}], options={"num_ctx": 1024}
    )
    assert standin.truncated and raw.prompt_eval_count < 1024  # Ollama now: cut silently, count below num_ctx
    with pytest.raises(ContextOverflowError, match="does not fit|context of 1,024"):
        ask(llm, sources)
    assert len(standin.chats()) == 1  # only the raw request reached the server
    standin.context_shift = False  # with context shift off the server refuses instead
    with pytest.raises(ollama.ResponseError, match="longer than the context length"):
        ollama.Client(host=standin.url).chat(
            model=MODEL, messages=[{"role": "user", "content": sources}], options={"num_ctx": 1024}
        )


def test_auto_does_not_retry_a_context_overflow_elsewhere(standin):
    fallback = ScriptedLLM(lambda r: "embedded answer")
    auto = AutoLLM(OllamaLLM(standin.url, MODEL, num_ctx=512), lambda: fallback, recheck_s=60)
    with pytest.raises(ContextOverflowError):
        ask(auto, "word " * 600)
    assert fallback.requests == []


def test_auto_preloads_when_it_switches_to_ollama(standin):
    standin.load_s = 0.3
    llm = OllamaLLM(standin.url, MODEL, num_ctx=4096, keep_alive="15m")
    auto = AutoLLM(llm, lambda: ScriptedLLM(["x"]), recheck_s=0)
    assert auto.active() is llm
    auto.ollama.preloading.join(10)
    preload = [b for p, b in standin.requests if p == "/api/chat"]
    assert preload == [{"model": MODEL, "messages": [], "tools": [], "stream": False,
                        "options": {"num_ctx": 4096}, "keep_alive": "15m"}]
    assert standin.loads == [(MODEL, 4096)]
    entry = llm.loaded()
    assert entry is not None and entry.context_length == 4096 and entry.expires_at is not None
    ask(auto)
    assert standin.loads == [(MODEL, 4096)]  # the first question found it loaded with the same num_ctx
    auto.active()
    assert standin.loads == [(MODEL, 4096)]  # still up: no second preload


def test_no_preload_with_keep_alive_zero(standin):
    assert OllamaLLM(standin.url, MODEL, keep_alive=0).preload() is False
    assert OllamaLLM(standin.url, MODEL, keep_alive="0s").preload() is False
    assert standin.chats() == [] and standin.loads == []


def test_doctor_shows_what_the_server_says(standin):
    standin.models = [StandInModel("qwen3:8b", capabilities=("completion", "thinking"), context_length=40960)]
    llm = OllamaLLM(standin.url, "qwen3:8b", num_ctx=8192)
    llm.check()
    text = "\n".join(llm.server_facts())
    assert "trained context 40,960 tokens; num_ctx sent 8,192" in text
    assert "thinking: yes (paperchat sends think=false)" in text
    assert "loaded: no" in text
    llm.preload()
    text = "\n".join(llm.server_facts())
    assert "loaded: yes, context 8,192, until" in text


def test_doctor_report_with_ollama(standin, tmp_path):
    from paperchat.rag.doctor import report

    settings = Settings(data_dir=tmp_path / "d", model={"backend": "ollama"}, ollama={"host": standin.url})
    text, _ = report(settings)
    assert "-> ready" in text and "trained context 32,768 tokens" in text and "loaded: no" in text


def test_keep_alive_validation_agrees_with_the_servers_parser():
    from paperchat.rag.settings import parse_keep_alive

    from .ollama_standin import keep_alive_seconds

    examples = ["30m", "1h30m", "-1s", "1.5h", ".5m", "0", "+0", "300ms", "2h45m30.5s", "1h30", "h", "5 m", "1d", "-"]
    for text in examples:
        try:
            value = parse_keep_alive(text)
        except ValueError:
            value = None
        try:
            server = keep_alive_seconds(value if value is not None else text)
        except ValueError:
            server = None
        assert (value is None) == (server is None), text  # accepted here exactly when the server accepts it
