"""The OpenAI-compatible backend: llama.cpp's real server (slow tests), and vLLM's differences through a stand-in."""

from __future__ import annotations

import json

import pytest

from paperchat.rag.backends import BACKENDS, OpenAICompatLLM, choose_llm
from paperchat.rag.errors import (
    ContextOverflowError,
    ModelAuthError,
    ModelTimeoutError,
    ModelUnavailableError,
    ServedModelMissingError,
)
from paperchat.rag.models import Message, Request, Usage
from paperchat.rag.settings import Settings

from .live import free_port, llama_cpp_server
from .openai_standin import OpenAIStandIn

SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"type": "string", "enum": ["supported", "unsupported"]}, "quote": {"type": "string"}},
    "required": ["verdict", "quote"],
}
ANSWER = "SPELL trains long-context reasoning by self-play [1]."
VLLM_MODEL = "Qwen/Qwen2.5-7B-Instruct"


def ask(llm, text: str = "Q?", **kw):
    return llm.complete(Request([Message("system", "Answer from the sources."), Message("user", text)], **kw))


@pytest.fixture
def standin():
    server = OpenAIStandIn(reply=lambda body: ANSWER).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_openai_env(monkeypatch):
    """The OpenAI client's own variables would change the defaults under test."""
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_request_carries_the_settings_and_the_answer_streams(standin):
    llm = OpenAICompatLLM(standin.url, VLLM_MODEL, api_key="k", timeout_s=30)
    standin.api_key = "k"
    pieces = list(llm.stream(Request([Message("system", "S"), Message("user", "Q")], max_tokens=99, json_schema=SCHEMA,
                                     stop=["\n\n"], seed=7)))
    assert "".join(p for p in pieces if isinstance(p, str)) == ANSWER
    assert sum(isinstance(p, str) for p in pieces) == len(ANSWER.split())  # streamed, one piece per word
    usage = pieces[-1]
    assert isinstance(usage, Usage) and usage.finish_reason == "stop"
    assert usage.prompt_tokens > 0 and usage.cached_tokens == usage.prompt_tokens // 2  # prompt_tokens_details
    assert usage.completion_tokens == len(ANSWER.split())
    (body,) = standin.bodies
    assert body["model"] == VLLM_MODEL and body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 99 and body["temperature"] == 0 and body["seed"] == 7 and body["stop"] == ["\n\n"]
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}
    assert body["messages"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    assert set(standin.auth_seen) == {"Bearer k"}
    assert llm.describe() == {"backend": "openai", "model": VLLM_MODEL, "base_url": standin.url}


def test_no_model_set_means_the_first_one_the_server_lists_and_json_schema_can_be_off(standin):
    standin.models = ["first-model", "second-model"]
    standin.cached_details = False  # vLLM without --enable-prompt-tokens-details
    llm = OpenAICompatLLM(standin.url, json_schema=False)
    out = ask(llm, json_schema=SCHEMA)
    assert out.text == ANSWER and llm.model == "first-model" and standin.bodies[-1]["model"] == "first-model"
    assert "response_format" not in standin.bodies[-1] and out.usage.cached_tokens == 0


def test_wrong_or_missing_api_key_is_a_sentence(standin):
    standin.api_key = "right"
    with pytest.raises(ModelAuthError, match=r"HTTP 401: Unauthorized\). It needs an API key: set PAPERCHAT_OPENAI__API_KEY"):
        OpenAICompatLLM(standin.url, VLLM_MODEL).check()
    with pytest.raises(ModelAuthError, match=r"HTTP 401: Unauthorized\). Set PAPERCHAT_OPENAI__API_KEY \(or OPENAI_API_KEY\)"):
        ask(OpenAICompatLLM(standin.url, VLLM_MODEL, api_key="wrong"))


def test_missing_model_is_a_sentence_naming_what_the_server_has(standin):
    with pytest.raises(ServedModelMissingError, match=r"does not serve the model 'llama3' \(it serves 'Qwen/Qwen2.5-7B"):
        OpenAICompatLLM(standin.url, "llama3").check()
    llm = OpenAICompatLLM(standin.url, VLLM_MODEL)
    assert ask(llm).text == ANSWER
    standin.models = ["another-model"]  # the server was restarted with another model: vLLM's 404 at chat time
    with pytest.raises(ServedModelMissingError, match="PAPERCHAT_OPENAI__MODEL"):
        ask(llm)


def test_wrong_address_is_a_sentence(standin):
    with pytest.raises(ModelUnavailableError, match=r"No server answers at http://127.0.0.1:\d+/v1 \(ConnectError\)"):
        ask(OpenAICompatLLM(f"http://127.0.0.1:{free_port()}/v1", "m", probe_timeout_s=2))
    wrong_path = standin.url.removesuffix("/v1") + "/api"  # a server is there, but not the OpenAI API
    with pytest.raises(ModelUnavailableError, match=r"HTTP 404 \(Not Found\) for /models: no OpenAI-compatible API.*ends in /v1"):
        OpenAICompatLLM(wrong_path, "m").check()


def test_timeout_is_a_sentence(standin):
    standin.delay_s = 2.0
    with pytest.raises(ModelTimeoutError, match="did not answer within 0.5 s. Raise PAPERCHAT_OPENAI__TIMEOUT_S"):
        ask(OpenAICompatLLM(standin.url, VLLM_MODEL, timeout_s=0.5))


def test_error_in_the_middle_of_the_stream_is_an_error_not_an_answer(standin):
    standin.error_after = 2
    llm = OpenAICompatLLM(standin.url, VLLM_MODEL)
    seen: list[str] = []
    with pytest.raises(ModelUnavailableError, match=r"failed in the middle of the answer \(EngineCore encountered"):
        llm.complete(Request([Message("user", "hi")]), on_text=seen.append)
    assert "".join(seen) == "SPELL trains"
    standin.error_after = None
    assert ask(llm).text == ANSWER


def test_a_reader_who_stops_reading_closes_the_connection_at_once(standin):
    standin.reply = lambda body: " ".join(["word"] * 200)
    standin.word_delay_s = 0.02  # 4 s for the whole answer
    stream = OpenAICompatLLM(standin.url, VLLM_MODEL).stream(Request([Message("user", "hi")]))
    assert next(stream) == "word"
    stream.close()  # as the chat does when a reader leaves
    assert standin.disconnected.wait(2.0)  # the server sees it while it still has ~195 words to write


def test_prompt_longer_than_the_served_context_is_a_context_error(standin):
    standin.max_model_len = 512
    with pytest.raises(ContextOverflowError, match=r"maximum context length is 512.*vLLM --max-model-len"):
        ask(OpenAICompatLLM(standin.url, VLLM_MODEL), "fact " * 600, max_tokens=64)


def test_settings_read_the_openai_clients_variables(monkeypatch):
    assert Settings().openai.base_url == "http://127.0.0.1:8080/v1" and Settings().openai.api_key is None
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gpu-box:8000")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    s = Settings(model={"backend": "openai"})
    assert s.openai.base_url == "http://gpu-box:8000/v1" and s.openai.api_key.get_secret_value() == "sk-local"
    assert "sk-local" not in repr(s) and "sk-local" not in s.model_dump_json()
    monkeypatch.setenv("PAPERCHAT_OPENAI__BASE_URL", "https://llm.example.org/v1/")
    assert Settings().openai.base_url == "https://llm.example.org/v1"
    monkeypatch.setenv("PAPERCHAT_OPENAI__BASE_URL", "gpu-box:8000")
    with pytest.raises(ValueError, match="Write it like http://127.0.0.1:8080/v1"):
        Settings()


def test_choose_llm_and_doctor_name_the_openai_backend(standin, tmp_path):
    from paperchat.rag.doctor import report

    s = Settings(data_dir=tmp_path, model={"backend": "openai"}, openai={"base_url": standin.url})
    chosen = choose_llm(s)
    assert isinstance(chosen, OpenAICompatLLM) and chosen.describe()["backend"] == "openai"
    assert BACKENDS["openai"].serves == ("openai",)
    text, _ = report(s)
    assert f"openai: {standin.url} model {VLLM_MODEL} (the first one it lists) -> ready" in text
    assert f"server lists: {VLLM_MODEL}; API key: none" in text and "in use: openai" in text
    down = Settings(data_dir=tmp_path, model={"backend": "openai"}, openai={"base_url": f"http://127.0.0.1:{free_port()}"})
    text, healthy = report(down)
    assert "-> unavailable" in text and "No server answers" in text and "in use: none" in text and not healthy
    assert "PAPERCHAT_OPENAI__BASE_URL" in text
    with pytest.raises(ModelUnavailableError, match="No server answers"):
        choose_llm(down)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """llama.cpp's own server on a loopback port, serving the embedded GGUF, with an API key."""
    from paperchat.rag.embedded import resolve_model

    gguf, _ = resolve_model(Settings(data_dir=tmp_path_factory.mktemp("llama")))
    with llama_cpp_server(gguf, api_key="test-key") as url:
        yield url


@pytest.mark.slow
def test_llama_cpp_server_answers_streams_follows_a_schema_and_caches_the_prefix(llama_server):
    llm = OpenAICompatLLM(llama_server, api_key="test-key", timeout_s=120)
    seen: list[str] = []
    out = llm.complete(Request([Message("user", "What is the capital of France? Answer in one word.")], max_tokens=8),
                       on_text=seen.append)
    assert "paris" in out.text.lower() and len(seen) >= 1 and out.usage.completion_tokens >= 1
    assert llm.model.endswith(".gguf")  # llama-server lists its model by file name
    judged = json.loads(llm.complete(Request(
        [Message("user", "Source: Water boils at 100 C at sea level.\nClaim: Water boils at 100 C.\n"
                 "Does the source support the claim? Reply as JSON with a verdict and a quote.")],
        max_tokens=60, json_schema=SCHEMA)).text)
    assert judged["verdict"] in ("supported", "unsupported") and isinstance(judged["quote"], str)
    prefix = "Sources:\n" + " ".join(f"Fact {i}: the value of item {i} is {i * 7}." for i in range(40))
    a = llm.complete(Request([Message("system", "Answer briefly."), Message("user", prefix + "\nQ: item 3?")], max_tokens=4))
    b = llm.complete(Request([Message("system", "Answer briefly."), Message("user", prefix + "\nQ: item 5?")], max_tokens=4))
    assert a.usage.prompt_tokens > 300 and b.usage.cached_tokens >= 0.9 * a.usage.prompt_tokens
    assert b.usage.prompt_seconds < a.usage.prompt_seconds / 3


@pytest.mark.slow
def test_llama_cpp_server_errors_are_sentences(llama_server):
    with pytest.raises(ModelAuthError, match=r"HTTP 401: Invalid API Key\). Set PAPERCHAT_OPENAI__API_KEY"):
        OpenAICompatLLM(llama_server, api_key="wrong").check()
    with pytest.raises(ServedModelMissingError, match=r"does not serve the model 'gpt-4o' \(it serves '.*\.gguf'\)"):
        OpenAICompatLLM(llama_server, "gpt-4o", api_key="test-key").check()
    with pytest.raises(ModelTimeoutError, match="did not answer within 0.05 s"):
        ask(OpenAICompatLLM(llama_server, api_key="test-key", timeout_s=0.05), "Write a long story.", max_tokens=200)
