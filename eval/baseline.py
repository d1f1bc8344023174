"""The stock llama-index pipeline, as the tutorial builds it, over the same Chroma collection.

``VectorStoreIndex.from_vector_store(...).as_query_engine()`` with llama-index's
defaults (top-2 dense retrieval, its default QA prompt, no critique), driven by the
same language model as paperchat through a thin llama-index LLM adapter; one node
postprocessor gives each node its chunk's text, which the index keeps in the paper's record.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from paperchat.rag.answer import Answer, Citation, Timings
from paperchat.rag.models import LLM as PaperLLM
from paperchat.rag.models import Collected, Message, Request
from paperchat.rag.question import check_question
from paperchat.rag.records import chunk_text, paper_ref
from paperchat.rag.retrieval import Retriever


def llama_llm(llm: PaperLLM, max_tokens: int = 320, context_window: int = 8192):
    """Wrap a paperchat :class:`~paperchat.rag.models.LLM` as a llama-index chat LLM."""
    from llama_index.core.base.llms.types import (
        ChatMessage,
        ChatResponse,
        CompletionResponse,
        LLMMetadata,
        MessageRole,
    )
    from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
    from llama_index.core.llms.custom import CustomLLM

    def to_request(messages: Sequence[ChatMessage]) -> Request:
        converted = []
        for m in messages:
            role = "assistant" if m.role == MessageRole.ASSISTANT else "system" if m.role == MessageRole.SYSTEM else "user"
            converted.append(Message(role, m.content or ""))
        return Request(converted, max_tokens=max_tokens, temperature=0.0)

    def deltas(request: Request, respond: Any):
        """llama-index's streamed responses: ``respond(text so far, new piece)`` for each piece the model writes."""
        text = ""
        for piece in Collected(llm.stream(request)):
            text += piece
            yield respond(text, piece)

    class Adapter(CustomLLM):
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(
                context_window=context_window, num_output=max_tokens, is_chat_model=True, model_name=llm.model
            )

        @llm_chat_callback()
        def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
            text = llm.complete(to_request(messages)).text
            return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text))

        @llm_chat_callback()
        def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any):
            return deltas(to_request(messages), lambda text, piece: ChatResponse(
                message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=piece))

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
            return CompletionResponse(text=llm.complete(to_request([ChatMessage(role=MessageRole.USER, content=prompt)])).text)

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
            return deltas(to_request([ChatMessage(role=MessageRole.USER, content=prompt)]),
                          lambda text, piece: CompletionResponse(text=text, delta=piece))

    return Adapter()


def chunk_texts(retriever: Retriever):
    """A llama-index node postprocessor that gives each retrieved node its chunk's text: the index keeps a chunk's
    text once, in its paper's record (:class:`~paperchat.rag.records.LeanCollection`), so the stock engine would
    otherwise read empty nodes. It changes nothing else of the stock pipeline."""
    from llama_index.core.postprocessor.types import BaseNodePostprocessor

    class ChunkTexts(BaseNodePostprocessor):
        def _postprocess_nodes(self, nodes, query_bundle=None):
            papers = retriever.snapshot().papers
            for scored in nodes:
                node = scored.node
                if not node.get_content():
                    meta = node.metadata or {}
                    node.set_content(chunk_text(meta, None, papers.get(paper_ref(meta).paper_id)) or "")
            return nodes

    return ChunkTexts()


class BaselinePipeline:
    """Answers with llama-index's stock query engine (same index, same model, no critique)."""

    name = "baseline"
    critiqued = None  # no critique for the planted-error checks to test

    def __init__(self, retriever: Retriever, llm: PaperLLM, max_question_chars: int = 2000):
        from llama_index.core import VectorStoreIndex
        from llama_index.vector_stores.chroma import ChromaVectorStore

        from paperchat.rag.embeddings import as_llama_embedding

        self.retriever = retriever
        self.llm = llm
        self.max_question_chars = max_question_chars
        index = retriever.index
        generation = index.current_manifest().generation
        self._vindex = VectorStoreIndex.from_vector_store(
            ChromaVectorStore(chroma_collection=index.place.collection(generation)),
            embed_model=as_llama_embedding(retriever.embedder),
        )
        self._engine = self._vindex.as_query_engine(
            llm=llama_llm(llm), streaming=True, node_postprocessors=[chunk_texts(retriever)]
        )

    def retrieve_titles(self, question: str, k: int = 5) -> list[str]:
        """Titles the stock dense retriever finds, best first, one per paper."""
        nodes = self._vindex.as_retriever(similarity_top_k=k * 3).retrieve(question)
        titles: list[str] = []
        for n in nodes:
            title = paper_ref(n.node.metadata).title
            if title not in titles:
                titles.append(title)
        return titles[:k]

    def retrieved_titles(self, question: str, answer: Answer, k: int = 5) -> list[str]:
        """The eval protocol's name for :meth:`retrieve_titles` (the stock retriever searches the question as asked)."""
        return self.retrieve_titles(question, k)

    def ask(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Answer:
        question = check_question(question, self.max_question_chars)
        started = time.perf_counter()
        response = self._engine.query(question)
        first = None
        pieces: list[str] = []
        for piece in response.response_gen:
            if first is None:
                first = time.perf_counter() - started
            pieces.append(piece)
        text = "".join(pieces).strip()
        total = time.perf_counter() - started
        citations, seen = [], set()
        for node in response.source_nodes:
            ref = paper_ref(node.node.metadata)
            if ref.paper_id in seen:
                continue
            seen.add(ref.paper_id)
            citations.append(
                Citation(n=len(citations) + 1, title=ref.title, paper_id=ref.paper_id,
                         abstract="", chunk=node.node.get_content())
            )
        info = self.llm.describe()
        return Answer(
            question=question, standalone_question=question, answer=text, verdict="supported" if text else "refused",
            citations=citations, claims=[], draft=text,
            timings=Timings(first_token=round(first, 3) if first else None, draft=round(total, 3), total=round(total, 3)),
            backend=str(info.get("backend", "")), model=str(info.get("model", "")), pipeline=self.name,
        )
