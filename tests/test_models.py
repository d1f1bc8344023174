"""Model backends: the Ollama wire protocol against a stand-in, auto fallback, the embedded model."""

from __future__ import annotations

import pytest

from paperchat.rag.backends import AutoLLM, OllamaLLM, OllamaModelInfo, choose_llm
from paperchat.rag.errors import ModelFileError, ModelNotPulledError, ModelTimeoutError, ModelUnavailableError
from paperchat.rag.models import Message, Request, Usage
from paperchat.rag.settings import Settings

from .fakes import ScriptedLLM
from .live import free_port
from .ollama_standin import OllamaStandIn

SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"type": "string", "enum": ["supported", "unsupported"]}, "quote": {"type": "string"}},
    "required": ["verdict", "quote"],
}


@pytest.fixture
def standin():
    server = OllamaStandIn(reply=lambda body: "SPELL trains long-context reasoning by self-play [1].").start()
    yield server
    server.stop()


def test_ollama_request_carries_our_settings(standin):
    llm = OllamaLLM(standin.url, "qwen2.5:7b-instruct", num_ctx=8192, keep_alive="15m", timeout_s=30)
    pieces = list(llm.stream(Request([Message("system", "S"), Message("user", "Q")], max_tokens=99, json_schema=SCHEMA)))
    text = "".join(p for p in pieces if isinstance(p, str))
    assert text == "SPELL trains long-context reasoning by self-play [1]."
    usage = pieces[-1]
    assert isinstance(usage, Usage) and usage.prompt_seconds == pytest.approx(0.21)
    assert usage.prompt_tokens == standin.prompt_counts[-1] > 0
    (body,) = standin.chats()
    assert body["model"] == "qwen2.5:7b-instruct"
    assert body["stream"] is True
    assert body["format"] == SCHEMA
    assert body["keep_alive"] == "15m"
    assert body["options"]["num_ctx"] == 8192  # never Ollama's small default
    assert body["options"]["num_predict"] == 99 and body["options"]["temperature"] == 0
    assert body["messages"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]


def test_ollama_check_asks_the_server_about_the_model(standin):
    OllamaLLM(standin.url, "qwen2.5:7b-instruct").check()
    assert standin.requests[-1] == ("/api/show", {"model": "qwen2.5:7b-instruct"})
    with pytest.raises(ModelNotPulledError, match="ollama pull llama3.1:8b"):
        OllamaLLM(standin.url, "llama3.1:8b").check()


def test_ollama_model_missing_at_chat_time(standin):
    standin.models = []
    with pytest.raises(ModelNotPulledError, match="ollama pull"):
        OllamaLLM(standin.url, "qwen2.5:7b-instruct").complete(Request([Message("user", "hi")]))


def test_ollama_unreachable_is_a_sentence():
    llm = OllamaLLM(f"http://127.0.0.1:{free_port()}", "m", timeout_s=2, probe_timeout_s=1)
    with pytest.raises(ModelUnavailableError, match="ollama serve"):
        llm.check()
    with pytest.raises(ModelUnavailableError, match="ollama serve"):
        llm.complete(Request([Message("user", "hi")]))  # asks /api/show first: nobody answers
    llm.info = OllamaModelInfo()  # as if the server answered the check and went away since
    with pytest.raises(ModelUnavailableError, match="stopped answering"):
        llm.complete(Request([Message("user", "hi")]))


def test_ollama_timeout(standin):
    standin.delay_s = 2.0
    llm = OllamaLLM(standin.url, "qwen2.5:7b-instruct", timeout_s=0.5)
    with pytest.raises(ModelTimeoutError, match="did not answer within"):
        llm.complete(Request([Message("user", "hi")]))


def test_ollama_dies_mid_stream_then_next_request_works(standin):
    llm = OllamaLLM(standin.url, "qwen2.5:7b-instruct", timeout_s=5)
    standin.die_after = 2
    with pytest.raises(ModelUnavailableError):
        llm.complete(Request([Message("user", "hi")]))
    standin.die_after = None
    assert llm.complete(Request([Message("user", "hi")])).text.startswith("SPELL")


def test_auto_falls_back_when_down_and_switches_when_up():
    port = free_port()
    fallback = ScriptedLLM(lambda r: "embedded answer", model="embedded-fake")
    auto = AutoLLM(OllamaLLM(f"http://127.0.0.1:{port}", "qwen2.5:7b-instruct", probe_timeout_s=1), lambda: fallback, recheck_s=0)
    assert auto.active() is fallback
    assert auto.complete(Request([Message("user", "hi")])).text == "embedded answer"
    assert "ollama serve" in auto.describe()["fallback_reason"]
    server = OllamaStandIn(reply=lambda b: "ollama answer").start(port=port)
    try:
        assert auto.complete(Request([Message("user", "hi")])).text == "ollama answer"
        assert auto.describe()["backend"] == "ollama"
        auto.ollama.preloading.join(10)
        server.die_after = 0  # fails before any text: retried on the embedded model
        assert auto.complete(Request([Message("user", "hi")])).text == "embedded answer"
    finally:
        server.stop()
    assert auto.complete(Request([Message("user", "hi")])).text == "embedded answer"


def test_choose_llm_honours_the_backend_setting(standin):
    fake = ScriptedLLM(["x"])
    s = Settings(model={"backend": "embedded"})
    assert choose_llm(s, embedded_factory=lambda _: fake) is fake
    s = Settings(model={"backend": "ollama"}, ollama={"host": standin.url})
    chosen = choose_llm(s)
    assert isinstance(chosen, OllamaLLM)
    chosen.preloading.join(10)  # the model is loaded in the background
    assert standin.loads == [("qwen2.5:7b-instruct", 8192)]
    s = Settings(model={"backend": "ollama"}, ollama={"host": f"127.0.0.1:{free_port()}", "probe_timeout_s": 1})
    with pytest.raises(ModelUnavailableError):
        choose_llm(s)
    s = Settings(model={"backend": "auto"}, ollama={"host": standin.url})
    auto = choose_llm(s, embedded_factory=lambda _: fake)
    assert auto.describe()["backend"] == "ollama"
    auto.ollama.preloading.join(10)


def test_ollama_host_forms(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:11500")
    assert Settings().ollama.host == "http://127.0.0.1:11500"
    # the ollama client's own parser decides (Ollama's envconfig.Host rules); only bind-all becomes loopback
    for given, url in [
        ("https://h/ollama", "https://h:443/ollama"),  # the path is kept, the port not appended to it
        ("http://h", "http://h:80"),
        ("h", "http://h:11434"),
        ("[::1]:11434", "http://[::1]:11434"),
        ("::1", "http://[::1]:11434"),
        ("::", "http://[::1]:11434"),
        ("", "http://127.0.0.1:11434"),
    ]:
        monkeypatch.setenv("OLLAMA_HOST", given)
        assert Settings().ollama.host == url, given
    monkeypatch.setenv("OLLAMA_HOST", "http://h:99999")
    with pytest.raises(ValueError, match="PAPERCHAT_OLLAMA__HOST"):
        Settings()
    monkeypatch.setenv("PAPERCHAT_OLLAMA__HOST", "http://gpu:1234")
    assert Settings().ollama.host == "http://gpu:1234"


def test_not_a_gguf_file_is_refused_before_llama_cpp_sees_it(tmp_path):
    from paperchat.rag.embedded import EmbeddedLLM

    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelFileError, match="not a GGUF model file"):
        EmbeddedLLM(bad, "bad")
    s = Settings(embedded={"model": str(tmp_path / "missing.gguf")})
    with pytest.raises(ModelFileError, match="neither a known model"):
        EmbeddedLLM.from_settings(s)


def test_truncated_gguf_is_a_clear_error(tmp_path):
    from paperchat.rag.embedded import EmbeddedLLM, MODELS, _part_files

    first_part = _part_files(MODELS["qwen2.5-1.5b"])[0]
    bad = tmp_path / "truncated.gguf"
    bad.write_bytes(first_part.read_bytes()[: 4 << 20])
    with pytest.raises(ModelFileError, match="could not load"):
        EmbeddedLLM(bad, "truncated")


def test_damaged_part_fails_the_hash_check(tmp_path):
    from dataclasses import replace

    from paperchat.rag.embedded import MODELS, model_file

    spec = replace(MODELS["qwen2.5-1.5b"], key="one-part", parts=1, sha256="0" * 64)
    with pytest.raises(ModelFileError, match="sha256"):
        model_file(spec, tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written is left behind


@pytest.mark.slow
def test_embedded_model_answers_streams_and_follows_a_schema(real_settings):
    from paperchat.rag.embedded import EmbeddedLLM

    llm = EmbeddedLLM.from_settings(real_settings)
    seen: list[str] = []
    out = llm.complete(
        Request([Message("user", "What is the capital of France? Answer in one word.")], max_tokens=8),
        on_text=seen.append,
    )
    assert "paris" in out.text.lower()
    assert len(seen) >= 1 and out.usage.completion_tokens >= 1 and out.usage.first_token_seconds is not None
    judged = llm.complete(
        Request(
            [Message("user", "Source: Water boils at 100 C at sea level.\nClaim: Water boils at 100 C at sea level.\n"
                     "Does the source support the claim? Reply as JSON with a verdict and a quote.")],
            max_tokens=80,
            json_schema=SCHEMA,
        )
    ).json()
    assert judged["verdict"] in ("supported", "unsupported") and isinstance(judged["quote"], str)


@pytest.mark.slow
def test_embedded_prefix_cache_skips_the_shared_prefix(real_settings):
    from paperchat.rag.embedded import EmbeddedLLM

    llm = EmbeddedLLM.from_settings(real_settings)
    prefix = "Sources:\n" + " ".join(f"Fact {i}: the value of item {i} is {i * 7}." for i in range(60))
    a = llm.complete(Request([Message("system", "Answer briefly."), Message("user", prefix + "\nQ: value of item 3?")], max_tokens=8))
    b = llm.complete(Request([Message("system", "Answer briefly."), Message("user", prefix + "\nQ: value of item 5?")], max_tokens=8))
    assert a.usage.prompt_tokens > 500
    assert b.usage.cached_tokens >= 0.9 * a.usage.prompt_tokens
    assert b.usage.prompt_seconds < a.usage.prompt_seconds / 3


def test_model_judge_setting_takes_its_modes_and_the_old_true_false(monkeypatch):
    assert Settings().answer.model_judge == "auto"
    for given, mode in [("always", "always"), ("never", "never"), ("true", "always"), ("false", "never"), ("0", "never")]:
        monkeypatch.setenv("PAPERCHAT_ANSWER__MODEL_JUDGE", given)
        assert Settings().answer.model_judge == mode, given
    monkeypatch.setenv("PAPERCHAT_ANSWER__MODEL_JUDGE", "sometimes")
    with pytest.raises(ValueError):
        Settings()
