"""Structured answers and the Papers tab in a real headless Chromium.

List answers show as lists, comparisons as tables, withheld answers as withheld with what
the abstracts do state; the Papers tab shows all five columns in a 1280 px window, sorts,
and opens a paper's abstract with a button that prefills a question about it. The
screenshots land in test-output/ (docs/chat-list.png, docs/chat-comparison.png and
docs/papers.png are copies of them).
"""

from __future__ import annotations

import time

import pytest

from paperchat.rag.pipeline import Pipeline
from paperchat.rag.retrieval import Retriever
from paperchat.ui.render import MISSING_SIDE, RELATED_LABEL
from paperchat.ui.server import create_app

from .fakes import ScriptedLLM, copying_reply
from .live import OUT, XSS, ask_in_page, browser, live_server
from .shaped import ShapedPipeline

pytestmark = pytest.mark.browser
WIDTH = 1280
RED = "rgb(207, 34, 46)"


@pytest.fixture
def shaped_app(fake_index, settings):
    retriever = Retriever(fake_index)
    return create_app(settings, ShapedPipeline(settings, retriever), retriever)


def open_chat(b, url: str, height: int = 900):
    page = b.new_page(viewport={"width": WIDTH, "height": height})
    page.goto(url + "/")
    page.wait_for_selector("#pc-question textarea", timeout=60_000)
    return page


def test_list_comparison_and_withheld_answers_render_as_list_table_and_labelled_facts(shaped_app):
    OUT.mkdir(exist_ok=True)
    with live_server(shaped_app) as url, browser() as b:
        page = open_chat(b, url)
        ask_in_page(page, "Which papers use self-play?")
        answer = page.locator(".pc-answer").last
        items = answer.locator("ul.pc-list > li.pc-row")
        assert items.count() == 3
        texts = [items.nth(i).inner_text() for i in range(3)]
        bold = [items.nth(i).locator("b").inner_text() for i in range(3)]
        assert any(t.startswith("SPELL: Self-Play") for t in bold) and any(t.startswith("SPaR") for t in bold)
        assert all(f"[{i + 1}]" in t for i, t in enumerate(texts))  # each item carries its citation
        assert answer.locator("table").count() == 0
        answer.screenshot(path=str(OUT / "chat-list.png"))

        ask_in_page(page, "Compare SPELL and SPaR")
        table = page.locator(".pc-answer").last.locator("table.pc-comparison")
        assert table.count() == 1
        assert [h.inner_text().strip() for h in table.locator("th").all()] == ["Side", "What its paper states", "Source"]
        rows = table.locator("tbody tr")
        assert rows.count() == 2
        assert rows.nth(0).locator("td").nth(0).inner_text().strip() == "SPELL"
        assert "[1]" in rows.nth(0).locator("td").nth(1).inner_text()
        assert "[2] SPaR" in rows.nth(1).locator("td").nth(2).inner_text()
        page.locator(".pc-answer").last.screenshot(path=str(OUT / "chat-comparison.png"))

        ask_in_page(page, "Compare SPELL and AlphaZero")
        missing = page.locator(".pc-answer").last.locator("tr.pc-row-missing")
        assert missing.count() == 1 and MISSING_SIDE in missing.inner_text()
        assert "AlphaZero" in missing.inner_text()

        ask_in_page(page, "How long a context does SPELL reach?")
        answer = page.locator(".pc-answer").last
        badge = answer.locator(".pc-badge.pc-verdict-not-supported")
        assert "withheld: not supported by the abstracts" in badge.inner_text()
        assert badge.evaluate("b => getComputedStyle(b).backgroundColor") != RED
        assert "draft answer was withheld" in answer.inner_text()
        related = answer.locator(".pc-related")
        assert RELATED_LABEL in related.inner_text() and "we propose SPELL" in related.inner_text()
        answer.locator(".pc-claims summary").click()
        claims = answer.locator(".pc-claims").inner_text()
        assert "withheld" in claims and "removed" not in claims
        answer.screenshot(path=str(OUT / "chat-withheld.png"))


def test_papers_tab_shows_every_column_sorts_and_opens_an_abstract_to_ask_about(fake_index, settings):
    OUT.mkdir(exist_ok=True)
    retriever = Retriever(fake_index)
    app = create_app(settings, Pipeline(settings, retriever, ScriptedLLM(copying_reply)), retriever)
    papers = retriever.papers()
    with live_server(app) as url, browser() as b:
        page = open_chat(b, url)
        page.get_by_role("tab", name="Papers").click()
        grid = page.locator("#pc-papers")
        grid.locator('[data-testid="cell-0-0"]').wait_for(timeout=10_000)

        # all five columns inside the 1280 px window, none clipped
        headers = grid.locator("th[role=columnheader]")
        assert [h.inner_text().strip() for h in headers.all()] == ["title", "date", "authors", "upvotes", "links"]
        for h in headers.all():
            box = h.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH and box["width"] >= 70, (h.inner_text(), box)
        clipped = grid.evaluate(
            "g => [...g.querySelectorAll('[role=gridcell] .cell-wrap')].filter(c => c.scrollWidth > c.clientWidth + 1)"
            ".map(c => c.innerText)"
        )
        assert clipped == []
        first = papers[0]
        assert grid.locator('[data-testid="cell-0-0"]').inner_text().strip() == first.title
        assert grid.locator('[data-testid="cell-0-2"]').inner_text().strip() == str(first.authors)
        link = grid.locator("[role=gridcell] a").first
        assert link.get_attribute("href").startswith("https://") and link.get_attribute("target") == "_blank"
        box = link.bounding_box()
        assert box and box["x"] + box["width"] <= WIDTH

        # selecting a paper opens its abstract, metadata and links under the table
        page.fill("#pc-paper-search input, #pc-paper-search textarea", "self-play")
        spell = next(p for p in papers if p.title.startswith("SPELL"))
        cell = grid.locator("[role=gridcell]", has_text=spell.title).first
        cell.wait_for(timeout=10_000)
        cell.click()
        panel = page.locator(".pc-paper")
        panel.wait_for(timeout=10_000)
        assert spell.title in panel.inner_text() and spell.abstract[:60] in panel.inner_text()
        assert "8 authors" in panel.inner_text()
        time.sleep(0.3)
        page.screenshot(path=str(OUT / "papers.png"), full_page=True)
        page.fill("#pc-paper-search input, #pc-paper-search textarea", "")
        grid.locator(f'[role=grid][aria-rowcount="{len(papers) + 1}"]').wait_for(timeout=10_000)  # all rows back

        # sorting: our order menu, and the table's own column menu
        page.locator("#pc-paper-sort input").click()
        page.get_by_role("option", name="upvotes (most first)").click()
        top = max((p for p in papers if p.upvotes is not None), key=lambda p: p.upvotes)
        page.wait_for_function(
            "t => document.querySelector('#pc-papers [data-testid=\"cell-0-0\"]').innerText.trim() === t", arg=top.title,
            timeout=10_000,
        )
        assert grid.locator('[data-testid="cell-0-3"]').inner_text().strip() == str(top.upvotes)
        header = grid.locator('[data-testid="header-2"]')
        header.hover()
        header.locator(".cell-menu-button").click(force=True)
        page.get_by_role("menuitem", name="Sort descending").click()
        most = max((p for p in papers if p.authors is not None), key=lambda p: p.authors)
        page.wait_for_function(
            "t => document.querySelector('#pc-papers .virtual-row').innerText.startsWith(t)", arg=most.title,
            timeout=10_000,
        )

        # selecting a paper in the full (re-sorted) table brings that paper's abstract into view
        grid.locator(".virtual-row [role=gridcell]").first.click()
        page.wait_for_function(
            "t => (document.querySelector('.pc-paper') || {innerText: ''}).innerText.startsWith(t)", arg=most.title,
            timeout=10_000,
        )
        page.wait_for_function(
            "() => { const r = document.querySelector('#pc-ask-paper').getBoundingClientRect();"
            " return r.height > 0 && r.bottom <= window.innerHeight; }",
            timeout=10_000,
        )

        # "Ask about this paper" switches to the chat with the question filled in, ready to send
        page.click("#pc-ask-paper")
        question = f'What does "{most.title}" propose?'
        page.wait_for_function(
            "q => document.querySelector('#pc-question textarea').value === q", arg=question, timeout=10_000
        )
        assert page.get_by_role("tab", name="Chat").get_attribute("aria-selected") == "true"
        assert page.locator("#pc-question textarea").is_visible()
        assert page.locator(".pc-badge").count() == 0  # filled in, not sent
        ask_in_page(page, question)
        assert most.title in page.locator(".pc-citation").first.inner_text()

def test_html_in_titles_and_abstracts_stays_text_in_the_papers_tab(fake_index, settings):

    fake_index.ingest(XSS)
    retriever = Retriever(fake_index)
    app = create_app(settings, ShapedPipeline(settings, retriever), retriever)
    with live_server(app) as url, browser() as b:
        page = open_chat(b, url)
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.get_by_role("tab", name="Papers").click()
        page.fill("#pc-paper-search textarea, #pc-paper-search input", "quasar")
        grid = page.locator("#pc-papers")
        cell = grid.locator("[role=gridcell]", has_text="Quasar").first
        cell.wait_for(timeout=10_000)
        assert "<script>window.__pwned=1</script>" in cell.inner_text()  # shown literally
        link = grid.locator("[role=gridcell] a")
        assert link.count() == 1 and link.get_attribute("href") == "https://example.org/quasar"
        cell.click()
        panel = page.locator(".pc-paper")
        panel.wait_for(timeout=10_000)
        assert '<img src=x onerror="window.__pwned=2">' in panel.inner_text()
        time.sleep(0.5)
        assert page.evaluate("window.__pwned") is None and dialogs == []
        assert page.locator("#pc-papers script, .pc-paper script, #pc-papers img, .pc-paper img").count() == 0
        page.click("#pc-ask-paper")
        page.wait_for_function(
            "() => document.querySelector('#pc-question textarea').value.startsWith('What does \"Quasar <script>')",
            timeout=10_000,
        )
