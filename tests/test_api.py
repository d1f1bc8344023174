"""The HTTP API of ``ui/server.py``, against a real uvicorn server on loopback."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode

from paperchat.rag.embeddings import HashingEmbedder
from paperchat.rag.pipeline import Pipeline
from paperchat.rag.retrieval import Retriever
from paperchat.rag.settings import ServerSettings, Settings
from paperchat.rag.store import PaperIndex
from paperchat.ui.server import create_app

from .fakes import ScriptedLLM, copying_reply
from .live import live_server

API = "/api/v1"
WIKI = "http://wiki.example"


@pytest.fixture
def serve(start):
    """``serve(**server_settings)``: the conftest's ``start``, returning only the URL."""
    return lambda **kw: start(**kw)[0]


def ask(url: str, body, **kw) -> httpx.Response:
    return httpx.post(f"{url}{API}/ask", json=body, timeout=60, **kw)


# -- answers --------------------------------------------------------------------------------


def test_ask_returns_a_checked_answer_with_citations(serve):
    url = serve()
    r = ask(url, {"question": "What does SPELL propose for long-context language models?"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    a = r.json()
    assert a["question"] == "What does SPELL propose for long-context language models?"
    assert a["verdict"] == "supported" and a["pipeline"] == "paperchat"
    assert a["backend"] == "scripted" and a["model"] == "scripted"
    assert a["answer"].endswith("[1].")
    assert a["citations"] and a["citations"][0]["n"] == 1 and a["citations"][0]["title"].startswith("SPELL")
    assert a["citations"][0]["supporting"] and a["citations"][0]["abstract"]
    assert a["claims"] and all(c["verdict"] == "supported" for c in a["claims"])
    t = a["timings"]
    assert {"retrieval", "first_token", "draft", "critique", "total"} <= t.keys()
    assert t["total"] > 0 and t["total"] >= t["draft"]
    assert "Content-Security-Policy" not in r.headers  # API answers are not pages


def test_ask_with_history_rewrites_the_follow_up(serve):
    url = serve()
    r = ask(url, {"question": "What roles does it use?",
                  "history": [["user", "What does SPELL propose?"], ["assistant", "SPELL is a self-play framework [1]."]]})
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["question"] == "What roles does it use?"
    assert a["standalone_question"] == "What roles does it use? (about: What does SPELL propose?)"
    assert a["timings"]["rewrite"] >= 0


def test_stream_sends_ndjson_tokens_then_the_answer(serve):
    url = serve()
    with httpx.stream("POST", f"{url}{API}/ask/stream", json={"question": "What does SPARK do?"}, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/x-ndjson")
        events = [json.loads(line) for line in r.iter_lines() if line.strip()]
    types = [e["type"] for e in events]
    assert types[0] == "status" and types[-1] == "answer"
    assert types.count("answer") == 1 and "error" not in types
    assert "token" in types and types.index("token") < types.index("answer")
    stages = [e["stage"] for e in events if e["type"] == "status"]
    assert stages[:3] == ["retrieval", "draft", "critique"]
    answer = events[-1]["answer"]
    tokens = "".join(e["text"] for e in events if e["type"] == "token")
    assert tokens.strip() == answer["draft"] and answer["verdict"] == "supported"
    assert answer["citations"][0]["title"].startswith("SPARK")


def test_papers_and_health(serve):
    url = serve()
    papers = httpx.get(f"{url}{API}/papers", timeout=30)
    assert papers.status_code == 200
    listed = papers.json()
    assert len(listed) == 46
    assert all(p["id"] and p["title"] and p["abstract"] for p in listed)
    titles = [p["title"] for p in listed]
    assert titles == sorted(titles, key=str.casefold) and len(set(titles)) == 46
    health = httpx.get(f"{url}{API}/health", timeout=30)
    assert health.status_code == 200
    h = health.json()
    assert h["status"] == "ok" and h["backend"] == "scripted" and h["model"] == "scripted"
    assert h["index"]["ready"] is True and h["index"]["papers"] == 46 and h["index"]["chunks"] >= 46


# -- access control and limits -----------------------------------------------------------------


def test_token_is_required_when_set(serve):
    url = serve(api_token="s3cret-token", allowed_origins=[WIKI])
    q = {"question": "What does SPELL propose?"}
    missing = ask(url, q)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"] == "unauthorized" and "Authorization: Bearer" in missing.json()["message"]
    assert ask(url, q, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert ask(url, q, headers={"Authorization": "Basic s3cret-token"}).status_code == 401
    assert httpx.get(f"{url}{API}/papers").status_code == 401
    ok = ask(url, q, headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200 and ok.json()["verdict"]
    assert httpx.get(f"{url}{API}/papers", headers={"Authorization": "bearer s3cret-token"}).status_code == 200
    # health and the schema stay public, for load balancers and client generators
    assert httpx.get(f"{url}{API}/health").status_code == 200
    assert httpx.get(f"{url}{API}/openapi.json").status_code == 200
    # a browser gets the 401 too, with CORS headers so the page can read it
    refused = ask(url, q, headers={"Origin": WIKI})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == WIKI
    # pages: ?token= once, then the cookie
    page = httpx.get(f"{url}/embed/config")  # a page (the UI is not mounted here: let in, it is a 404)
    assert page.status_code == 401 and "?token=" in page.json()["message"]
    assert httpx.get(f"{url}/embed/gradio.js").status_code == 200  # the web-component loader needs no credential
    with httpx.Client(base_url=url) as client:
        first = client.get("/embed/config", params={"token": "s3cret-token"})
        assert first.status_code == 404
        cookie = first.headers["set-cookie"]
        assert cookie.startswith("paperchat_session=pc1.page.") and "s3cret-token" not in cookie  # never the token
        assert "httponly" in cookie.lower() and "path=/" in cookie.lower() and "samesite=lax" in cookie.lower()
        assert client.get("/embed/config").status_code == 404  # the cookie is enough now
        assert client.get(f"{API}/papers").status_code == 401  # but it is no API credential
        assert client.get(f"{API}/papers", params={"token": "s3cret-token"}).status_code == 401  # nor ?token= on the API


def test_oversized_body_and_overlong_question_get_413(serve, shared_index):
    url = serve()
    limit = ServerSettings().max_body_bytes
    big = ask(url, {"question": "What does SPELL propose?", "padding": "x" * (limit + 10)})
    assert big.status_code == 413
    assert big.json()["error"] == "too_large" and f"{limit:,} bytes" in big.json()["message"]
    max_chars = shared_index.settings.answer.max_question_chars
    long = {"question": "why " * (max_chars // 4) + "?"}
    assert max_chars < len(long["question"]) < limit
    for path in ("/ask", "/ask/stream"):
        r = httpx.post(f"{url}{API}{path}", json=long, timeout=30)
        assert r.status_code == 413
        body = r.json()
        assert body["error"] == "bad_question"
        assert f"the limit is {max_chars:,}" in body["message"] and body["message"].endswith(".")
    exact = ask(url, {"question": "x" * (max_chars - 2) + " ?"})
    assert exact.status_code != 413  # at the limit is still accepted


def test_chunked_oversized_body_gets_413(serve):
    url = serve()
    limit = ServerSettings().max_body_bytes
    payload = json.dumps({"question": "What does SPELL propose?", "padding": "x" * (limit * 4)}).encode()

    def chunks():
        for i in range(0, len(payload), 8192):
            yield payload[i : i + 8192]

    r = httpx.post(f"{url}{API}/ask", content=chunks(), headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 413


def test_empty_or_malformed_question_gets_400_with_a_sentence(serve):
    url = serve()
    for question in ("", "   ", "\x00\n\t"):
        r = ask(url, {"question": question})
        assert r.status_code == 400, (question, r.text)
        body = r.json()
        assert body["error"] == "bad_question"
        assert body["message"].startswith("The question is empty.") and body["message"].endswith(".")
    assert ask(url, {"history": []}).status_code == 422  # no question at all: schema validation
    assert ask(url, {"question": 42}).status_code == 422
    bad_json = httpx.post(f"{url}{API}/ask", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 422


@pytest.mark.parametrize(
    "raw",
    [b'{"question": "What is \\ud800 SPELL?"}', b'{"question": "What is SPELL?", "history": [["user", "\\udc00"]]}'],
    ids=["question", "history"],
)
def test_lone_surrogate_in_the_body_is_replaced_not_a_500(serve, raw):
    url = serve()
    r = httpx.post(f"{url}{API}/ask", content=raw, headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 200, (r.status_code, r.text)
    assert "\ufffd" in r.json()["standalone_question"]  # the broken character became U+FFFD


def test_rate_limit_answers_429_with_retry_after(serve):
    url = serve(rate_limit_per_minute=3)
    q = {"question": "What does SPELL propose?"}
    assert [ask(url, q).status_code for _ in range(3)] == [200, 200, 200]
    limited = ask(url, q)
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited" and "Too many questions" in limited.json()["message"]
    assert 1 <= int(limited.headers["retry-after"]) <= 61
    assert httpx.post(f"{url}{API}/ask/stream", json=q).status_code == 429
    assert httpx.get(f"{url}{API}/papers").status_code == 200  # reading the paper list is not limited


def test_rate_limit_cannot_be_dodged_by_changing_the_authorization_header(serve):
    url = serve(rate_limit_per_minute=3)
    q = {"question": "What does SPELL propose?"}
    codes = [ask(url, q, headers={"Authorization": f"Bearer anything-{i}"}).status_code for i in range(5)]
    assert 429 in codes, codes


def test_cors_allows_listed_origins_only(serve):
    url = serve(allowed_origins=[WIKI])
    pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,authorization"}
    ok = httpx.options(f"{url}{API}/ask", headers={"Origin": WIKI, **pre})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == WIKI
    assert ok.headers["access-control-allow-credentials"] == "true"
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    evil = httpx.options(f"{url}{API}/ask", headers={"Origin": "http://evil.example", **pre})
    assert evil.status_code == 400 and "access-control-allow-origin" not in evil.headers
    got = httpx.get(f"{url}{API}/papers", headers={"Origin": WIKI})
    assert got.status_code == 200 and got.headers["access-control-allow-origin"] == WIKI
    other = httpx.get(f"{url}{API}/papers", headers={"Origin": "http://evil.example"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
    answered = ask(url, {"question": "What does SPELL propose?"}, headers={"Origin": WIKI})
    assert answered.status_code == 200 and answered.headers["access-control-allow-origin"] == WIKI


def test_pages_carry_frame_ancestors(serve):
    url = serve(allowed_origins=[WIKI])
    page = httpx.get(f"{url}/embed/gradio.js")
    assert page.status_code == 200 and "javascript" in page.headers["content-type"]
    assert page.headers["content-security-policy"] == f"frame-ancestors 'self' {WIKI}"
    plain = serve()
    assert httpx.get(f"{plain}/embed/gradio.js").headers["content-security-policy"] == "frame-ancestors 'self'"


def test_missing_index_gives_503_with_the_fix(serve, tmp_path):
    empty = PaperIndex(Settings(data_dir=tmp_path / "none", model={"backend": "embedded"}), HashingEmbedder())
    url = serve(index=empty)
    for r in (ask(url, {"question": "What does SPELL propose?"}), httpx.get(f"{url}{API}/papers")):
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["error"] == "index" and "paperchat ingest" in body["message"]
    health = httpx.get(f"{url}{API}/health")
    assert health.status_code == 503
    assert health.json()["status"] == "degraded" and health.json()["index"]["ready"] is False
    with httpx.stream("POST", f"{url}{API}/ask/stream", json={"question": "What does SPELL propose?"}) as r:
        events = [json.loads(line) for line in r.iter_lines() if line.strip()]
    assert events[-1]["type"] == "error" and "paperchat ingest" in events[-1]["message"]
    assert "answer" not in [e["type"] for e in events]


def test_unexpected_model_failure_in_the_stream_is_an_error_event(serve):
    def broken(request):
        raise RuntimeError("segfault-ish")

    url = serve(llm=ScriptedLLM(broken))
    with httpx.stream("POST", f"{url}{API}/ask/stream", json={"question": "What does SPELL propose?"}) as r:
        events = [json.loads(line) for line in r.iter_lines() if line.strip()]
    assert events[-1] == {"type": "error", "error": "internal", "message": "Something went wrong; ask again."}
    assert "segfault" not in json.dumps(events)  # internals are not shown to clients


# -- the Gradio UI on the same server -------------------------------------------------------------


def test_ui_pages_and_gradio_named_endpoint(serve, monkeypatch):
    # gradio_client starts its telemetry thread unless this variable says no (the argument alone cannot turn it off)
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    attempts = []
    guarded = socket.socket.connect

    def recording_connect(sock, address):
        attempts.append(address)
        return guarded(sock, address)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    url = serve(mount_ui=True, allowed_origins=[WIKI])
    for path in ("/", "/embed/"):
        page = httpx.get(url + path, timeout=60)
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        assert "<html" in page.text.lower()
        assert page.headers["content-security-policy"] == f"frame-ancestors 'self' {WIKI}"
    from gradio_client import Client

    client = Client(url + "/", verbose=False, analytics_enabled=False)
    try:
        result = client.predict("What does SPELL propose?", api_name="/ask")
    finally:
        client.close()
    assert isinstance(result, dict)
    assert result["answer"].endswith("[1].") and result["verdict"] == "supported"
    assert result["citations"][0]["title"].startswith("SPELL")
    embed = Client(url + "/embed/", verbose=False, analytics_enabled=False)
    try:
        assert embed.predict("What does SPARK do?", api_name="/ask")["citations"][0]["title"].startswith("SPARK")
    finally:
        embed.close()
    outside = [a for a in attempts if isinstance(a, tuple) and a[0] not in ("127.0.0.1", "::1")]
    assert outside == [], f"the UI or its client reached for the network: {outside}"


# -- the OpenAPI schema, fuzzed ----------------------------------------------------------------
#
# ``schemathesis.pytest.from_fixture(...).parametrize()`` fails under pytest 9 with schemathesis 4.32
# ("'Function' object has no attribute '_nodeid'", schemathesis/pytest/lazy.py), so each operation's
# Hypothesis strategy is driven with ``@given`` inside the test instead.


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_openapi_schema_fuzzing_finds_no_server_errors(serve, mode):
    url = serve(rate_limit_per_minute=100_000)
    schema = schemathesis.openapi.from_url(f"{url}{API}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {
        f"POST {API}/ask", f"POST {API}/ask/stream", f"GET {API}/papers", f"GET {API}/health",
    }
    seen: dict[str, set[int]] = {}
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # no parameters or body to get wrong

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call(base_url=url, timeout=60)
            seen.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)
            assert response.status_code < 500, (
                f"{case.method} {case.path} {case.body!r} -> {response.status_code}: {response.text[:300]}"
            )

        check()
    assert seen, "nothing was sent"
    if mode is GenerationMode.NEGATIVE:
        assert any(code in (400, 413, 422) for codes in seen.values() for code in codes), seen
    else:
        assert 200 in seen[f"POST {API}/ask"], seen


def test_behind_a_reverse_proxy_under_a_sub_path(shared_index):
    """What a proxy forwarding /paperchat/* (prefix stripped) sees: links and the app's root carry the prefix."""
    settings = shared_index.settings.model_copy(deep=True)
    settings.server.root_path = "/paperchat"
    retriever = Retriever(shared_index)
    app = create_app(settings, Pipeline(settings, retriever, ScriptedLLM(copying_reply)), retriever)
    with live_server(app, root_path="/paperchat") as url:
        assert httpx.get(f"{url}{API}/health").json()["index"]["papers"] == 46
        schema = httpx.get(f"{url}{API}/openapi.json").json()
        assert schema.get("servers", [{}])[0].get("url") == "/paperchat"
        page = httpx.get(f"{url}/", headers={"X-Forwarded-Host": "wiki.example", "X-Forwarded-Proto": "https"})
        assert page.status_code == 200
        assert "/paperchat" in page.text  # Gradio builds its asset and API URLs under the sub-path
        embed = httpx.get(f"{url}/embed/")
        assert embed.status_code == 200 and "/paperchat/embed" in embed.text
