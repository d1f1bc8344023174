"""Issue 25: limits that fail safe, replayed against real uvicorn servers on loopback (and the limiter by property)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperchat.ui.limits import RateLimiter, client_key, parse_networks
from paperchat.ui.signing import embed_token

from .fakes import SlowLLM
from .live import free_port, running
from .test_security import API, TOKEN, WIKI, Q, bearer  # noqa: F401 (the same served instance's names)


# -- high: the limiter's empty entry ---------------------------------------------------------------


def test_a_client_back_after_the_window_does_not_break_the_limiter():
    now = [0.0]
    lim = RateLimiter(limit=10, window=60, clock=lambda: now[0])
    lim.allow("203.0.113.7")  # an old failure
    now[0] = 61.0
    assert lim.wait("203.0.113.7") == 0  # was: left an empty entry behind
    assert lim.allow("198.51.100.1") == 0  # was: IndexError in _expire for every later request
    assert lim.count("203.0.113.7") == 0 and len(lim) == 1


OPS = st.lists(
    st.tuples(st.floats(0, 90, allow_nan=False), st.sampled_from("abcde"), st.sampled_from(["allow", "wait", "count"])),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(ops=OPS, limit=st.integers(1, 5), window=st.floats(0.5, 60))
def test_limiter_counts_exactly_like_a_sliding_window(ops, limit, window):
    now = [0.0]
    lim = RateLimiter(limit=limit, window=window, clock=lambda: now[0])
    model: dict[str, list[float]] = {}
    for step, key, op in ops:
        now[0] += step
        live = [t for t in model.get(key, []) if now[0] - t < window]
        model[key] = live
        if op == "allow":
            wait = lim.allow(key)
            if len(live) < limit:
                assert wait == 0
                live.append(now[0])
            else:
                assert 0 < wait <= window  # never over-counts, never lets one more in
        elif op == "wait":
            wait = lim.wait(key)
            assert (wait == 0) == (len(live) < limit)
        else:
            assert lim.count(key) == len(live)


@settings(max_examples=200, deadline=None)
@given(ops=OPS, max_keys=st.integers(1, 4))
def test_limiter_memory_stays_bounded_and_never_raises(ops, max_keys):
    now = [0.0]
    lim = RateLimiter(limit=2, window=10, max_keys=max_keys, clock=lambda: now[0])
    for step, key, op in ops:
        now[0] += step
        getattr(lim, op)(key)
        assert len(lim) <= max_keys
        assert all(len(h) > 0 for h in lim._hits.values())  # no empty entry is ever kept


# -- high: IPv4 clients on an IPv6 socket ----------------------------------------------------------


def test_ipv4_mapped_addresses_are_keyed_as_ipv4():
    assert client_key("::ffff:192.0.2.7", "", []) == "192.0.2.7"  # was '::/64': every IPv4 client shared one key
    assert client_key("::ffff:192.0.2.7", "", []) != client_key("::ffff:192.0.2.8", "", [])
    assert client_key("2001:db8::1", "", []) == client_key("2001:db8::2", "", []) == "2001:db8::/64"
    nets = parse_networks(["127.0.0.1"])
    assert client_key("::ffff:127.0.0.1", "203.0.113.7", nets) == "203.0.113.7"  # the proxy seen through a mapped peer
    assert client_key("::ffff:127.0.0.1", "203.0.113.7", parse_networks(["::ffff:127.0.0.1"])) == "203.0.113.7"


@contextlib.contextmanager
def dual_stack_server(app):
    """The app on ``::`` (IPv4 clients arrive as ::ffff:a.b.c.d), as `paperchat serve --host ::` runs it."""
    from paperchat.ui.server import bind, uvicorn_config

    port = free_port()
    with running(uvicorn_config(app, "::", port, timeout_graceful_shutdown=2), port, sockets=[bind("::", port)]) as url:
        yield url


def test_on_an_ipv6_socket_ipv4_clients_behind_a_trusted_proxy_have_their_own_budget(shared_index):
    from paperchat.rag.retrieval import Retriever
    from paperchat.rag.services import build_pipeline
    from paperchat.rag.settings import ServerSettings
    from paperchat.ui.server import create_app

    from .fakes import ScriptedLLM, copying_reply

    settings = shared_index.settings.model_copy(
        update={"server": ServerSettings(host="::", rate_limit_per_minute=2, trusted_proxies=["127.0.0.1"])})
    retriever = Retriever(shared_index)
    app = create_app(settings, build_pipeline(settings, retriever=retriever, llm=ScriptedLLM(copying_reply)), retriever,
                     mount_ui=False)
    with dual_stack_server(app) as url:
        ask = lambda xff: httpx.post(f"{url}{API}/ask", json=Q, headers={"X-Forwarded-For": xff}, timeout=60).status_code  # noqa: E731
        assert [ask("203.0.113.7") for _ in range(3)] == [200, 200, 429]
        assert ask("198.51.100.9") == 200  # was 429: the mapped peer was not seen as the proxy, all shared '::/64'


# -- medium: admission cannot deadlock ------------------------------------------------------------


class HeldLLM(SlowLLM):
    """A scripted model whose first answer waits for ``release`` (the running answer holds its slot as long as the
    test needs, however slowly the machine starts the queued requests); later answers come at once."""

    def __init__(self):
        super().__init__(words=10, delay=0.0)
        self.release = threading.Event()
        self.first = True

    def stream(self, request):
        if self.first:
            self.first = False
            self.release.wait(60)
        yield from super().stream(request)


def test_a_queue_longer_than_the_thread_pool_cannot_starve_the_running_answer(start):
    llm = HeldLLM()
    url, app = start(max_queue=64, rate_limit_per_minute=1000, llm=llm)
    results: list[int] = []
    with httpx.Client(timeout=120) as client, client.stream("POST", f"{url}{API}/ask/stream", json=Q) as stream:
        lines = stream.iter_lines()
        assert json.loads(next(lines))["type"] == "status"  # the stream holds the answer slot

        def ask():
            with contextlib.suppress(httpx.HTTPError):
                results.append(httpx.post(f"{url}{API}/ask", json=Q, timeout=120).status_code)

        waiters = [threading.Thread(target=ask, daemon=True) for _ in range(50)]  # more than anyio's 40 threads
        for w in waiters:
            w.start()
        deadline = time.monotonic() + 20
        while app.state.gate.waiting < 51 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.gate.waiting == 51, app.state.gate.waiting
        started = time.monotonic()
        assert httpx.get(f"{url}{API}/health", timeout=10).status_code == 200  # was: timed out (no thread free)
        assert httpx.get(f"{url}{API}/papers", timeout=10).status_code == 200
        assert time.monotonic() - started < 5
        llm.release.set()
        events = [json.loads(line)["type"] for line in lines]
        assert events[-1] == "answer"  # the running answer got threads for its tokens
    for w in waiters:
        w.join(timeout=120)
    assert results.count(200) == 50, results


# -- medium: missing credentials, static embed assets, a wiki behind one NAT ---------------------


def test_missing_credentials_are_not_failures_and_signed_ones_pass_a_throttled_address(start):
    url, _ = start(api_token=TOKEN, allowed_origins=[WIKI], auth_failures_per_minute=3, mount_ui=True)
    js = httpx.get(f"{url}/embed/gradio.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]  # was 401: the <script> has no credential
    codes = [httpx.get(f"{url}/embed/").status_code for _ in range(12)]  # wiki page views before the iframe loads
    assert codes == [401] * 12, codes  # was: 429 after 10, locking out the whole NAT
    assert httpx.get(f"{url}{API}/papers", headers=bearer()).status_code == 200
    guesses = [httpx.get(f"{url}{API}/papers", headers=bearer(f"guess-{i}")).status_code for i in range(5)]
    assert guesses == [401, 401, 401, 429, 429]  # wrong tokens are still throttled
    assert httpx.get(f"{url}{API}/papers", headers=bearer()).status_code == 429  # so a guess cannot get through
    reader = httpx.get(f"{url}/embed/", params={"embed": embed_token(TOKEN, WIKI, 1)})
    assert reader.status_code == 200  # a wiki reader behind the same address still gets the chat


# -- medium: uploads ------------------------------------------------------------------------------


def test_uploads_are_refused_cross_site_or_not(start):
    url, _ = start(mount_ui=True)  # no token: multipart from any page is a simple request
    files = {"files": ("x.txt", b"x" * 60_000, "text/plain")}
    evil = httpx.post(f"{url}/gradio_api/upload", files=files, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and evil.json()["error"] == "uploads_disabled"  # was 200, kept forever
    assert httpx.post(f"{url}/gradio_api/upload", files=files).status_code == 403
    assert httpx.post(f"{url}/embed/gradio_api/upload", files=files).status_code == 403
    cross = httpx.post(f"{url}/gradio_api/call/ask", json={"data": ["What does SPELL propose?"]},
                       headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403 and cross.json()["error"] == "cross_site"


# -- medium / low: header size and read timeouts ----------------------------------------------------


def _raw(port: int, data: bytes, wait: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        out = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                out += chunk
        return out


def test_request_heads_over_the_limit_get_431_before_auth(start):
    url, _ = start(api_token=TOKEN, max_header_bytes=16_384)
    port = int(url.rsplit(":", 1)[1])
    ok = httpx.get(f"{url}{API}/health", headers={"X-Pad": "a" * 8000})
    assert ok.status_code == 200
    big = httpx.get(f"{url}{API}/health", headers={"X-Pad": "a" * 20_000})
    assert big.status_code == 431 and big.json()["error"] == "headers_too_large"  # was: a 64 MiB header accepted
    head = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 4_000_000
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with contextlib.suppress(OSError):
            s.sendall(head)  # the server closes while this is still being sent
        reply = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                reply += chunk
    assert reply.startswith(b"HTTP/1.1 431"), reply[:80]
    body = {"question": "x" * 50_000}
    assert httpx.post(f"{url}{API}/ask", json=body, headers=bearer()).status_code != 431  # a large body is not a head


def test_slow_heads_and_slow_bodies_are_cut_off(start):
    url, _ = start(header_timeout_s=1, body_timeout_s=1)
    port = int(url.rsplit(":", 1)[1])
    started = time.monotonic()
    reply = _raw(port, b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", wait=10)
    assert time.monotonic() - started < 4 and reply.startswith(b"HTTP/1.1 408"), reply[:80]  # was: held 40-60 s
    started = time.monotonic()
    assert _raw(port, b"", wait=10) == b""  # a connection that sends nothing is closed too
    assert time.monotonic() - started < 4
    started = time.monotonic()
    reply = _raw(port, b"POST /api/v1/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 100\r\n\r\n{\"question\"", wait=10)
    assert time.monotonic() - started < 4 and reply.startswith(b"HTTP/1.1 408"), reply[:80]
    assert b"body_timeout" in reply
    with httpx.Client(timeout=10) as c:  # kept-alive connections still work
        assert [c.get(f"{url}{API}/health").status_code for _ in range(3)] == [200, 200, 200]


# -- low: what the embed credential reaches; forwarded headers; error shapes ---------------------


def test_the_embed_credential_reaches_only_what_the_compact_chat_needs(start):
    url, _ = start(api_token=TOKEN, allowed_origins=[WIKI], mount_ui=True)
    with httpx.Client(base_url=url, timeout=60) as c:
        assert c.get("/embed/", params={"embed": embed_token(TOKEN, WIKI, 1)}).status_code == 200
        for path in ("/embed/config", "/embed/gradio_api/info", "/embed/theme.css"):
            assert c.get(path).status_code == 200, path
        for path in ("/embed/monitoring/summary", "/embed/monitoring", "/embed/gradio_api/queue/status",
                     "/embed/gradio_api/file=/etc/hostname", "/embed/gradio_api/upload_progress"):
            refused = c.get(path)
            assert refused.status_code == 403 and refused.json()["error"] == "embed_scope", path  # was 200


def test_forwarded_host_from_an_untrusted_client_does_not_reach_gradio(start):
    url, _ = start(mount_ui=True)
    poisoned = httpx.get(f"{url}/config", headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"})
    assert "evil.example" not in poisoned.json()["root"] and poisoned.json()["root"].startswith("http://127.0.0.1")
    proxied, _ = start(mount_ui=True, trusted_proxies=["127.0.0.1"], allowed_hosts=["pc.example.org"])
    kept = httpx.get(f"{proxied}/config", headers={"X-Forwarded-Host": "pc.example.org", "X-Forwarded-Proto": "https"})
    assert kept.json()["root"].startswith("https://pc.example.org")  # a trusted proxy's are still honoured


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/gradio_api/run/ask", {"data": [""]}, 400),  # was 500 (the gr.Error of an empty question)
    ("/gradio_api/run/chat", {"data": [""]}, 400),  # was 500 (too few inputs: <Textbox object at 0x…>)
    ("/gradio_api/call/v2/ask", {"data": [""]}, 400),  # was 500 with a traceback
    ("/gradio_api/call/v2/ask", {"message": "\u3164\u2800"}, 400),
    ("/gradio_api/component_server", {"component_id": 99, "fn_name": "x", "data": None, "session_hash": "x"}, 404),
    ("/gradio_api/queue/join", {"fn_index": 0, "data": [], "session_hash": "x"}, 400),  # was 500
    ("/gradio_api/call/ask", {"data": [["not", "text"]]}, 400),
])
def test_bad_gradio_calls_get_a_sentence_not_a_500(start, path, body, status):
    url, _ = start(api_token=TOKEN, mount_ui=True)
    r = httpx.post(f"{url}{path}", json=body, headers=bearer(), timeout=60)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error", "message"} and r.json()["message"].endswith(".")


def test_good_gradio_calls_still_work(start):
    url, _ = start(api_token=TOKEN, mount_ui=True)
    for path, body in (("/gradio_api/call/ask", {"data": ["What does SPELL propose?"]}),
                       ("/gradio_api/call/v2/ask", {"message": "What does SPELL propose?"})):
        r = httpx.post(f"{url}{path}", json=body, headers=bearer(), timeout=60)
        assert r.status_code == 200 and "event_id" in r.json(), r.text


def test_a_refused_cors_preflight_is_in_the_error_shape(start):
    url, _ = start(allowed_origins=[WIKI])
    pre = lambda origin: httpx.options(f"{url}{API}/ask", headers={  # noqa: E731
        "Origin": origin, "Access-Control-Request-Method": "POST"})
    refused = pre("https://evil.example")
    assert refused.status_code == 400 and refused.json()["error"] == "cors_refused"  # was text/plain
    assert pre(WIKI).status_code == 200


def test_two_host_headers_are_refused(start):
    url, _ = start()
    port = int(url.rsplit(":", 1)[1])
    reply = _raw(port, b"GET /api/v1/health HTTP/1.1\r\nHost: evil.example\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400") and b'"error": "bad_request"' in reply  # was: the last one won


@pytest.mark.parametrize("question", ["\u3164", "\u2800\u2800", "\u115f\u1160 \uffa0"])
def test_a_question_of_blank_letters_is_empty(start, question):
    url, _ = start()
    r = httpx.post(f"{url}{API}/ask", json={"question": question}, timeout=60)
    assert r.status_code == 400 and "empty" in r.json()["message"]  # was 200 "refused"


def test_only_web_links_from_a_listing_reach_the_api():
    from paperchat.rag.corpus import parse_jsonl

    line = json.dumps({"title": "T", "abstract": "An abstract.", "urls": [
        "javascript:alert(1)", " JavaScript :alert(2)", "data:text/html,x", "https://ok.example/a", "github.com/a/b"]})
    assert parse_jsonl(line, "x.jsonl")[0].urls == ["https://ok.example/a", "github.com/a/b"]


@pytest.mark.parametrize(("name", "value", "said"), [
    ("PAPERCHAT_SERVER__ALLOWED_ORIGINS", "https://wiki.example.org", "PAPERCHAT_SERVER__ALLOWED_ORIGINS is not valid JSON"),
    ("PAPERCHAT_SERVER__EMBED_TOKEN_DAYS", "inf", "PAPERCHAT_SERVER__EMBED_TOKEN_DAYS is not valid"),
    ("PAPERCHAT_INDEX__COLLECTION", "../../x", "PAPERCHAT_INDEX__COLLECTION is not valid"),
    ("PAPERCHAT_SERVER__ROOT_PATH", "/pc;Domain=evil.example", "PAPERCHAT_SERVER__ROOT_PATH is not valid"),
    ("PAPERCHAT_SERVER__ROOT_PATH", "/<script>", "PAPERCHAT_SERVER__ROOT_PATH is not valid"),
])
def test_bad_settings_are_sentences(tmp_path, monkeypatch, capsys, name, value, said):
    from paperchat.cli import main

    monkeypatch.setenv(name, value)
    assert main(["--data-dir", str(tmp_path), "embed-snippet", "--url", "http://127.0.0.1:7860"]) == 2  # was 1
    err = capsys.readouterr().err
    assert said in err and "unexpected" not in err


def test_embed_snippet_reads_the_token_from_a_file_and_warns_about_token_on_the_command_line(tmp_path, monkeypatch, capsys,
                                                                                              caplog):
    from paperchat.cli import main
    from paperchat.ui.signing import Signer

    monkeypatch.setenv("PAPERCHAT_SERVER__ALLOWED_ORIGINS", json.dumps([WIKI]))
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    assert main(["--data-dir", str(tmp_path), "embed-snippet", "--token-file", str(secret), "--origin", WIKI]) == 0
    credential = capsys.readouterr().out.split("?embed=")[1].split('"')[0]
    assert Signer(TOKEN).verify(credential) is not None
    assert main(["--data-dir", str(tmp_path), "embed-snippet", "--token", TOKEN, "--origin", WIKI]) == 0
    assert "process list" in capsys.readouterr().err + caplog.text
    (tmp_path / "empty").write_text("\n")
    assert main(["--data-dir", str(tmp_path), "embed-snippet", "--token-file", str(tmp_path / "empty"), "--origin", WIKI]) == 2
