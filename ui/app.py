"""The Gradio chat: wires the answering pipeline to the browser, nothing more."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Sequence

import gradio as gr

from paperchat.rag.answer import Done, Status, Token
from paperchat.rag.errors import PaperchatError
from paperchat.rag.pipeline import Pipeline
from paperchat.rag.retrieval import Retriever

from .admission import POLL_S
from .render import answer_html, ask_about, date_key, draft_html, e, paper_html, paper_row

log = logging.getLogger(__name__)

CSS = """
.pc-citation{border:1px solid var(--border-color-primary);border-radius:8px;padding:4px 8px;margin:4px 0}
.pc-citation summary{cursor:pointer}
.pc-abstract{font-size:0.9em;margin-top:6px;line-height:1.45}
.pc-abstract mark{background:#fff3b0;color:inherit;padding:0 2px}
.pc-claims{margin-top:6px;font-size:0.9em}
.pc-footer{font-size:0.85em;opacity:0.8}
.pc-rows{margin:6px 0}
ul.pc-list{padding-left:1.2em}
ul.pc-list li{margin:3px 0}
.pc-rows b,.pc-related b{font-size:inherit;font-family:inherit;font-weight:600}
table.pc-comparison{border-collapse:collapse;font-size:0.92em;margin:6px 0;width:100%;table-layout:auto}
table.pc-comparison th,table.pc-comparison td{border:1px solid var(--border-color-primary);padding:4px 8px;text-align:left;vertical-align:top;word-break:normal;overflow-wrap:normal}
table.pc-comparison td:first-child{white-space:nowrap}
table.pc-comparison td:last-child{width:30%;font-size:0.92em}
table.pc-comparison th{background:var(--background-fill-secondary)}
.pc-missing{color:var(--body-text-color-subdued);font-style:italic}
.pc-related{border:1px dashed var(--border-color-primary);border-radius:8px;padding:4px 10px;margin:6px 0;font-size:0.92em}
.pc-related p{margin:2px 0}
.pc-related-source{opacity:0.75}
#pc-papers [role=gridcell],#pc-papers [role=gridcell] *,#pc-papers th *{overflow-wrap:anywhere;font-family:var(--font)}
#pc-papers a{text-decoration:underline}
.pc-paper{border:1px solid var(--border-color-primary);border-radius:8px;padding:8px 12px}
.pc-paper-title{margin:0 0 4px 0}
.pc-paper .pc-abstract{font-size:0.95em}
"""

#: Papers tab: the columns, their types and widths (all five fit a 1280 px window).
PAPER_HEADERS = ["title", "date", "authors", "upvotes", "links"]
PAPER_TYPES = ["str", "str", "number", "number", "html"]
PAPER_WIDTHS = ["42%", "13%", "10%", "10%", "25%"]
#: Brings the opened abstract into view (it sits under a table that may fill the window).
SHOW_PAPER = (
    "() => { setTimeout(() => { const el = document.querySelector('#pc-paper');"
    " if (el) el.scrollIntoView({block: 'start'}); }, 100); }"
)
#: Sort orders of the Papers tab (the table's own column headers sort too).
SORTS = {
    "title (A to Z)": (lambda p: p.title.casefold(), False),
    "date (newest first)": (lambda p: date_key(p.date), True),
    "upvotes (most first)": (lambda p: p.upvotes if p.upvotes is not None else -1, True),
    "authors (most first)": (lambda p: p.authors if p.authors is not None else -1, True),
}

TEMPLATES = (
    "What does {name} propose?",
    "What results does {name} report?",
    "How does {name} work?",
)

UNEXPECTED = "Something went wrong while answering. Please ask again; if it keeps happening, run `paperchat doctor`."


def example_questions(titles: Sequence[str], n: int = 5) -> list[str]:
    """Questions about papers of the corpus, stable for a given corpus.

    >>> example_questions(["FooNet: Sparse Audio Denoising", "BarGAN"], n=2)
    ['What does BarGAN propose?', 'What results does FooNet report?']
    """
    ordered = sorted(titles, key=lambda t: hashlib.sha256(t.encode()).hexdigest())
    out = []
    for i, title in enumerate(ordered[:n]):
        head = title.split(":")[0].strip()
        name = head if len(head) <= 40 else " ".join(head.split()[:6])
        out.append(TEMPLATES[i % len(TEMPLATES)].format(name=name))
    return out


def footer_text(info: dict) -> str:
    backend = info.get("backend", "?")
    model = info.get("model", "?")
    extra = " (Ollama unavailable: using the embedded model)" if info.get("fallback_reason") else ""
    return f'<div class="pc-footer">Answering with <b>{e(str(model))}</b> via <b>{e(str(backend))}</b>{e(extra)} · answers are checked against the abstracts they cite.</div>'


class Handlers:
    """What the chat's events call: answering (sharing the gate's answer slots) and the papers tab."""

    def __init__(self, pipeline: Pipeline, retriever: Retriever, gate=None):
        self.pipeline = pipeline
        self.retriever = retriever
        self.gate = gate

    def exclusive(self):
        return self.gate.exclusive(queue=False) if self.gate is not None else contextlib.nullcontext()

    def turn(self):
        """This answer's way to a model slot (Gradio's own queue bounds how many wait here), or none without a gate."""
        return self.gate.turn(queue=False) if self.gate is not None else contextlib.nullcontext()

    def respond(self, message: str, chat: list, history: list):
        """Stream one answer into the chat: the draft as it is written, then the checked answer."""
        chat = list(chat or [])
        history = list(history or [])
        chat.append({"role": "user", "content": e(message or "")})
        chat.append({"role": "assistant", "content": draft_html("", "Searching the papers…")})
        yield chat, history, "", gr.update()
        try:
            yield from self._answer(message, chat, history)
        except PaperchatError as err:
            chat[-1] = {"role": "assistant", "content": f'<p class="pc-error">⚠ {e(str(err))}</p>'}
            yield chat, history, message, gr.update()
            raise gr.Error(str(err)) from None
        except Exception:
            log.exception("unexpected error while answering")
            chat[-1] = {"role": "assistant", "content": f'<p class="pc-error">⚠ {e(UNEXPECTED)}</p>'}
            yield chat, history, message, gr.update()
            raise gr.Error(UNEXPECTED) from None

    def _answer(self, message: str, chat: list, history: list):
        text, status = "", "Searching the papers…"
        with self.turn() as turn:
            while turn is not None and not turn.ready():  # another reader's answer holds the model: say where we stand
                if place := turn.moved():
                    chat[-1] = {"role": "assistant", "content": draft_html("", place.sentence())}
                    yield chat, history, "", gr.update()
                time.sleep(POLL_S)
            for event in self.pipeline.run(message, [tuple(h) for h in history]):
                if isinstance(event, Status):
                    status = event.message
                    text = "" if event.stage == "draft" else text
                elif isinstance(event, Token):
                    text += event.text
                elif isinstance(event, Done):
                    answer = event.answer
                    chat[-1] = {"role": "assistant", "content": answer_html(answer)}
                    history += [["user", answer.question], ["assistant", answer.answer]]
                    yield chat, history, "", footer_text(self.pipeline.llm.describe())
                    continue
                chat[-1] = {"role": "assistant", "content": draft_html(text, status)}
                yield chat, history, "", gr.update()

    def ask_json(self, message: str) -> dict:
        """One question in, the whole answer record out (for gradio_client)."""
        try:
            with self.exclusive():
                return self.pipeline.ask(message).model_dump()
        except PaperchatError as err:
            raise gr.Error(str(err)) from None

    def all_papers(self) -> list:
        try:
            return self.retriever.papers()
        except PaperchatError as err:
            raise gr.Error(str(err)) from None

    def papers_table(self, query: str = "", sort: str = next(iter(SORTS))) -> tuple[list[list], list[str]]:
        """The rows shown (filtered by ``query``, ordered by ``sort``) and their paper ids, in order."""
        q = (query or "").casefold().strip()
        papers = [p for p in self.all_papers() if not q or q in p.title.casefold() or q in p.abstract.casefold()]
        key, reverse = SORTS.get(sort, next(iter(SORTS.values())))
        papers = sorted(papers, key=key, reverse=reverse)
        return [paper_row(p) for p in papers], [p.id for p in papers]

    def open_paper(self, shown: list[str], evt: gr.SelectData):
        """A row of the table was selected: show that paper's abstract and the ask button."""
        by_id = {p.id: p for p in self.all_papers()}
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        title = (evt.row_value or [None])[0]
        paper = by_id.get(shown[row]) if isinstance(row, int) and 0 <= row < len(shown or []) else None
        if paper is None or (title is not None and paper.title != title):  # the table was re-sorted in the page
            paper = next((p for p in by_id.values() if p.title == title), paper)
        if paper is None:
            return gr.update(), gr.update(visible=False), None
        return paper_html(paper), gr.update(visible=True), paper.id

    def ask_about_paper(self, paper_id: str | None):
        """Switch to the chat with the question box filled in (not sent: the reader may edit it)."""
        paper = next((p for p in self.all_papers() if p.id == paper_id), None)
        if paper is None:
            return gr.update(), gr.update()
        return gr.Tabs(selected="chat"), ask_about(paper)


def build_blocks(
    pipeline: Pipeline, retriever: Retriever, *, compact: bool = False, title: str = "paperchat", gate=None
) -> gr.Blocks:
    """The chat page; ``compact`` drops the papers tab and the header, for embedding in an iframe.

    ``gate`` (a :class:`paperchat.ui.admission.Gate`) shares the answer slots with the HTTP API.
    """
    h = Handlers(pipeline, retriever, gate)
    try:
        titles = [p.title for p in retriever.papers()]
    except PaperchatError:
        titles = []
    with gr.Blocks(title=title, fill_height=compact) as blocks:
        history = gr.State([])
        if not compact:
            gr.Markdown(
                f"# {e(title)}\nAsk about the {len(titles) or ''} indexed papers. Answers cite the abstracts, "
                "and every claim is checked against them before you see it."
            )
        with gr.Tabs(selected="chat", elem_id="pc-tabs") as tabs:
            chatbot, box, send, clear = _chat_tab(pipeline, titles, compact)
            if not compact:
                _papers_tab(h, titles, tabs, box)
        footer = gr.HTML(footer_text(pipeline.llm.describe()), elem_id="pc-footer")
        hidden_json = gr.JSON(visible=False)
        hidden_btn = gr.Button(visible=False)

        outputs = [chatbot, history, box, footer]
        send.click(h.respond, inputs=[box, chatbot, history], outputs=outputs, api_name="chat")
        box.submit(h.respond, inputs=[box, chatbot, history], outputs=outputs, api_name=False)
        clear.click(lambda: ([], [], ""), outputs=[chatbot, history, box], api_name=False, queue=False)
        hidden_btn.click(h.ask_json, inputs=box, outputs=hidden_json, api_name="ask")
    return blocks


def _chat_tab(pipeline: Pipeline, titles: list[str], compact: bool):
    """The chat tab's components: (chatbot, question box, ask button, clear button)."""
    with gr.Tab("Chat", id="chat"):
        chatbot = gr.Chatbot(label="paperchat", height=360 if compact else 520, elem_id="pc-chat")
        with gr.Row():
            box = gr.Textbox(
                placeholder="Ask a question about the papers…", show_label=False, scale=8, elem_id="pc-question",
                max_length=pipeline.settings.answer.max_question_chars,
            )
            send = gr.Button("Ask", variant="primary", scale=1, elem_id="pc-ask")
        clear = gr.Button("Clear chat", size="sm", elem_id="pc-clear")
        if titles:
            gr.Examples(examples=example_questions(titles, n=3 if compact else 5), inputs=box, label="Try")
    return chatbot, box, send, clear


def _papers_tab(h: Handlers, titles: list[str], tabs, box) -> None:
    """The papers tab: a filterable, sortable table; a selected paper's abstract and an 'ask about it' button."""
    with gr.Tab("Papers", id="papers"):
        rows, ids = h.papers_table() if titles else ([], [])
        shown = gr.State(ids)
        chosen = gr.State(None)
        with gr.Row():
            search = gr.Textbox(
                placeholder="Filter by words in the title or abstract", show_label=False, scale=3,
                elem_id="pc-paper-search",
            )
            sort = gr.Dropdown(choices=list(SORTS), value=next(iter(SORTS)), show_label=False, scale=1, elem_id="pc-paper-sort")
        table = gr.Dataframe(
            headers=PAPER_HEADERS, datatype=PAPER_TYPES, column_widths=PAPER_WIDTHS, value=rows, interactive=False,
            wrap=True, max_height=520, elem_id="pc-papers",
        )
        gr.Markdown("Select a paper to read its abstract.", elem_id="pc-paper-hint")
        paper_view = gr.HTML("", elem_id="pc-paper")
        with gr.Row():
            ask_paper = gr.Button(
                "Ask about this paper", visible=False, variant="primary", scale=0, min_width=220, elem_id="pc-ask-paper",
            )
        for control in (search, sort):
            control.change(h.papers_table, inputs=[search, sort], outputs=[table, shown], api_visibility="private", queue=False)
        table.select(
            h.open_paper, inputs=shown, outputs=[paper_view, ask_paper, chosen], api_visibility="private", queue=False
        ).then(None, js=SHOW_PAPER)
        ask_paper.click(h.ask_about_paper, inputs=chosen, outputs=[tabs, box], api_visibility="private", queue=False)


def queue(blocks: gr.Blocks, concurrency: int, max_size: int) -> gr.Blocks:
    """One answer at a time per local model (configurable); others wait and see their queue position."""
    return blocks.queue(default_concurrency_limit=concurrency, max_size=max_size)


