"""The chat in a real headless Chromium: streaming, citations, verdict badge, escaping, wiki embedding."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from paperchat.rag.pipeline import Pipeline
from paperchat.rag.retrieval import Retriever
from paperchat.ui.embed import snippet
from paperchat.ui.server import create_app

from .fakes import ScriptedLLM, copying_reply
from .live import XSS, ask_in_page, browser, free_port, live_server

pytestmark = pytest.mark.browser
@pytest.fixture
def scripted_app(fake_index, settings):
    retriever = Retriever(fake_index)
    return create_app(settings, Pipeline(settings, retriever, ScriptedLLM(copying_reply)), retriever), fake_index


def test_chat_streams_and_shows_citations_and_verdict(scripted_app, tmp_path):
    app, _ = scripted_app
    with live_server(app) as url, browser() as b:
        page = b.new_page(viewport={"width": 1200, "height": 900})
        page.goto(url + "/")
        page.wait_for_selector("#pc-question textarea", timeout=60_000)
        ask_in_page(page, "What does SPELL use self-play for?")
        assert page.locator(".pc-badge.pc-verdict-supported").count() == 1
        card = page.locator(".pc-citation").first
        assert "SPELL" in card.inner_text()
        card.locator("summary").click()
        assert page.locator(".pc-citation mark").count() >= 1  # the supporting sentence is highlighted
        assert "Qwen" in page.locator("#pc-footer").inner_text() or "scripted" in page.locator("#pc-footer").inner_text()
        page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)
        # multi-turn: a follow-up is answered in the same conversation, and clear empties it
        ask_in_page(page, "and what roles does it combine?")
        assert page.locator(".pc-badge").count() == 2
        page.click("#pc-clear")
        page.wait_for_function("document.querySelectorAll('.pc-badge').length === 0", timeout=10_000)
        # the papers tab lists and filters the corpus
        page.get_by_role("tab", name="Papers").click()
        page.wait_for_selector("#pc-papers", timeout=10_000)
        assert "Aligning Large Language Models" in page.locator("#pc-papers").inner_text()  # first by title
        # the table scrolls inside itself (only the rows in view are in the page): filter to find one
        page.fill("#pc-paper-search textarea, #pc-paper-search input", "music")
        page.wait_for_function(
            "() => document.querySelector('#pc-papers').innerText.includes('Music Transformer')", timeout=10_000
        )
        assert "Aligning Large Language Models" not in page.locator("#pc-papers").inner_text()


def test_html_in_abstracts_renders_as_text(scripted_app, tmp_path):
    app, index = scripted_app
    index.ingest(XSS)
    with live_server(app) as url, browser() as b:
        page = b.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url + "/")
        page.wait_for_selector("#pc-question textarea", timeout=60_000)
        ask_in_page(page, "How much does Quasar Decoding speed up speculative decoding?")
        page.locator(".pc-citation summary").first.click()
        time.sleep(0.5)
        assert page.evaluate("window.__pwned") is None
        assert dialogs == []
        text = page.locator("#pc-chat").inner_text()
        assert "<script>window.__pwned=1</script>" in text  # shown literally, in the card title
        assert page.locator("#pc-chat script").count() == 0
        assert page.locator("#pc-chat img[src=x]").count() == 0
        page.screenshot(path=str(tmp_path / "xss.png"), full_page=True)


def test_wiki_page_embeds_the_chat_by_iframe_and_web_component(fake_index, settings, tmp_path):
    settings.server.allowed_origins = []  # filled below once the wiki's port is known
    wiki_port = free_port()
    wiki_origin = f"http://localhost:{wiki_port}"
    settings.server.allowed_origins = [wiki_origin]
    retriever = Retriever(fake_index)
    app = create_app(settings, Pipeline(settings, retriever, ScriptedLLM(copying_reply)), retriever)
    with live_server(app) as url:
        wiki = tmp_path / "wiki"
        wiki.mkdir()
        (wiki / "index.html").write_text(
            "<!doctype html><html><body><h1>Team wiki</h1><p>Ask our papers:</p>" + snippet(url) + "</body></html>"
        )
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(wiki), **k)  # noqa: E731
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", wiki_port), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            with browser() as b:
                page = b.new_page(viewport={"width": 1100, "height": 1600})
                page.goto(f"{wiki_origin}/index.html")
                frame = page.frame_locator("iframe")
                frame.locator("#pc-question textarea").fill("What does SPELL use self-play for?")
                frame.locator("#pc-ask").click()
                frame.locator(".pc-badge").wait_for(timeout=120_000)
                assert "SPELL" in frame.locator("#pc-chat").inner_text()
                component = page.locator("gradio-app")
                component.locator("#pc-question textarea").wait_for(timeout=60_000)
                component.locator("#pc-question textarea").fill("What roles does SPELL combine?")
                component.locator("#pc-ask").click()
                component.locator(".pc-badge").wait_for(timeout=120_000)
                assert "SPELL" in component.locator("#pc-chat").inner_text()
                page.screenshot(path=str(tmp_path / "wiki.png"), full_page=True)
        finally:
            httpd.shutdown()


def test_errors_reach_the_user_as_sentences_not_tracebacks(scripted_app):
    import shutil

    app, index = scripted_app
    with live_server(app) as url, browser() as b:
        page = b.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#pc-question textarea", timeout=60_000)
        shutil.rmtree(index.settings.index_dir)  # the index disappears while the chat is open
        page.fill("#pc-question textarea", "What does SPELL propose?")
        page.click("#pc-ask")
        page.wait_for_selector(".pc-error", timeout=60_000)
        shown = page.locator("body").inner_text()
        assert "Run `paperchat ingest`" in shown or "paperchat ingest" in shown
        assert "Traceback" not in shown
