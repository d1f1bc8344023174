"""The Gradio chat: wires the answering pipeline to the browser, nothing more."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Sequence

import gradio as gr

from rag.errors import PaperchatError
from rag.pipeline import Done, Pipeline, Status, Token
from rag.retrieval import Retriever

from .render import answer_html, draft_html, e

log = logging.getLogger(__name__)

CSS = """
.pc-citation{border:1px solid var(--border-color-primary);border-radius:8px;padding:4px 8px;margin:4px 0}
.pc-citation summary{cursor:pointer}
.pc-abstract{font-size:0.9em;margin-top:6px;line-height:1.45}
.pc-abstract mark{background:#fff3b0;color:inherit;padding:0 2px}
.pc-claims{margin-top:6px;font-size:0.9em}
.pc-footer{font-size:0.85em;opacity:0.8}
"""

TEMPLATES = (
    "What does {name} propose?",
    "What results does {name} report?",
    "How does {name} work?",
)

UNEXPECTED = "Something went wrong while answering. Please ask again; if it keeps happening, run `paperchat doctor`."


def example_questions(titles: Sequence[str], n: int = 5) -> list[str]:
    """Questions about papers of the corpus, stable for a given corpus.

    >>> example_questions(["SPELL: Self-Play Reinforcement Learning", "Music Transformer"], n=2)
    ['What does SPELL propose?', 'What results does Music Transformer report?']
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


def build_blocks(
    pipeline: Pipeline, retriever: Retriever, *, compact: bool = False, title: str = "paperchat", gate=None
) -> gr.Blocks:
    """The chat page; ``compact`` drops the papers tab and the header, for embedding in an iframe.

    ``gate`` (a :class:`ui.security.Gate`) shares the answer slots with the HTTP API.
    """

    def exclusive():
        return gate.exclusive(queue=False) if gate is not None else contextlib.nullcontext()

    try:
        titles = [p.title for p in retriever.papers()]
    except PaperchatError:
        titles = []

    def respond(message: str, chat: list, history: list):
        chat = list(chat or [])
        history = list(history or [])
        chat.append({"role": "user", "content": e(message or "")})
        chat.append({"role": "assistant", "content": draft_html("", "Searching the papers…")})
        yield chat, history, "", gr.update()
        text, status = "", "Searching the papers…"
        try:
            with exclusive():
                for event in pipeline.run(message, [tuple(h) for h in history]):
                    if isinstance(event, Status):
                        status = event.message
                        if event.stage == "draft":
                            text = ""
                        chat[-1] = {"role": "assistant", "content": draft_html(text, status)}
                        yield chat, history, "", gr.update()
                    elif isinstance(event, Token):
                        text += event.text
                        chat[-1] = {"role": "assistant", "content": draft_html(text, status)}
                        yield chat, history, "", gr.update()
                    elif isinstance(event, Done):
                        answer = event.answer
                        chat[-1] = {"role": "assistant", "content": answer_html(answer)}
                        history += [["user", answer.question], ["assistant", answer.answer]]
                        yield chat, history, "", footer_text(pipeline.llm.describe())
        except PaperchatError as err:
            chat[-1] = {"role": "assistant", "content": f'<p class="pc-error">⚠ {e(str(err))}</p>'}
            yield chat, history, message, gr.update()
            raise gr.Error(str(err)) from None
        except Exception:
            log.exception("unexpected error while answering")
            chat[-1] = {"role": "assistant", "content": f'<p class="pc-error">⚠ {e(UNEXPECTED)}</p>'}
            yield chat, history, message, gr.update()
            raise gr.Error(UNEXPECTED) from None

    def ask_json(message: str) -> dict:
        """One question in, the whole answer record out (for gradio_client)."""
        try:
            with exclusive():
                return pipeline.ask(message).model_dump()
        except PaperchatError as err:
            raise gr.Error(str(err)) from None

    def papers_table(query: str = "") -> list[list]:
        q = (query or "").casefold().strip()
        rows = []
        try:
            papers = retriever.papers()
        except PaperchatError as err:
            raise gr.Error(str(err)) from None
        for p in papers:
            if q and q not in p.title.casefold() and q not in p.abstract.casefold():
                continue
            rows.append([p.title, p.date or "", p.authors or "", p.upvotes or "", " ".join(p.urls)])
        return rows

    with gr.Blocks(title=title, fill_height=compact) as blocks:
        history = gr.State([])
        if not compact:
            gr.Markdown(
                f"# {e(title)}\nAsk about the {len(titles) or ''} indexed papers. Answers cite the abstracts, "
                "and every claim is checked against them before you see it."
            )
        with gr.Tab("Chat"):
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
        if not compact:
            with gr.Tab("Papers"):
                search = gr.Textbox(placeholder="Filter by words in the title or abstract", show_label=False, elem_id="pc-paper-search")
                table = gr.Dataframe(
                    headers=["title", "date", "authors", "upvotes", "links"],
                    value=papers_table() if titles else [],
                    interactive=False,
                    wrap=True,
                    elem_id="pc-papers",
                )
                search.change(papers_table, inputs=search, outputs=table, api_name=False, queue=False)
        footer = gr.HTML(footer_text(pipeline.llm.describe()), elem_id="pc-footer")
        hidden_json = gr.JSON(visible=False)
        hidden_btn = gr.Button(visible=False)

        outputs = [chatbot, history, box, footer]
        send.click(respond, inputs=[box, chatbot, history], outputs=outputs, api_name="chat")
        box.submit(respond, inputs=[box, chatbot, history], outputs=outputs, api_name=False)
        clear.click(lambda: ([], [], ""), outputs=[chatbot, history, box], api_name=False, queue=False)
        hidden_btn.click(ask_json, inputs=box, outputs=hidden_json, api_name="ask")
    return blocks


def queue(blocks: gr.Blocks, concurrency: int, max_size: int) -> gr.Blocks:
    """One answer at a time per local model (configurable); others wait and see their queue position."""
    return blocks.queue(default_concurrency_limit=concurrency, max_size=max_size)


