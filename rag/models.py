"""Language models behind one small interface (interface only: no backend lives here).

:class:`LLM` has one abstract method, :meth:`LLM.stream`, which yields the answer's
text as it is generated and finishes with a :class:`Usage`. The backends live one per module
(:mod:`paperchat.rag.ollama`, :mod:`paperchat.rag.embedded`, :mod:`paperchat.rag.openai_compat`);
:mod:`paperchat.rag.backends` holds ``auto`` and the registry, and its
:func:`paperchat.rag.backends.choose_llm` finds one by name.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from .errors import PaperchatError

Role = Literal["system", "user", "assistant"]


@dataclass
class Message:
    """One chat message."""

    role: Role
    content: str


@dataclass
class Request:
    """What to generate: the messages and how.

    Callers that send several requests sharing a long beginning (the sources, say)
    should put that beginning first and keep it byte-identical, so backends that cache
    the prompt's prefix (llama.cpp, Ollama) do not evaluate it twice.
    """

    messages: Sequence[Message]
    max_tokens: int = 256
    temperature: float = 0.0
    json_schema: dict | None = None
    stop: Sequence[str] = ()
    seed: int = 42


class TokenCounts(BaseModel):
    """The tokens a generation read (``cached_tokens`` of them from the prompt cache) and wrote."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def add(self, other: TokenCounts) -> None:
        """Count ``other``'s tokens too."""
        for name in TokenCounts.model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Usage(TokenCounts):
    """What a generation cost."""

    prompt_seconds: float = 0.0
    generation_seconds: float = 0.0
    total_seconds: float = 0.0
    first_token_seconds: float | None = None
    finish_reason: str = ""

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.generation_seconds if self.generation_seconds else 0.0


@dataclass
class Completion:
    """A finished generation."""

    text: str
    usage: Usage = field(default_factory=Usage)

    def json(self) -> Any:
        """The text parsed as JSON (for requests with a ``json_schema``); raises ValueError."""
        return json.loads(self.text)


class Collected:
    """A model's stream read once: iterate for the text pieces as they come; then :attr:`completion` holds it all.

    >>> c = Collected(iter(["Hel", "lo", Usage(completion_tokens=2)]))
    >>> list(c), c.completion.text, c.completion.usage.completion_tokens
    (['Hel', 'lo'], 'Hello', 2)
    """

    def __init__(self, stream: Iterable[str | Usage]):
        self.stream = stream
        self.completion = Completion("")

    def __iter__(self) -> Iterator[str]:
        pieces: list[str] = []
        usage = Usage()
        first: float | None = None
        started = time.perf_counter()
        for item in self.stream:
            if isinstance(item, Usage):
                usage = item
                continue
            if first is None and item:
                first = time.perf_counter() - started
            pieces.append(item)
            yield item
        usage.first_token_seconds = first
        if not usage.total_seconds:
            usage.total_seconds = time.perf_counter() - started
        self.completion = Completion("".join(pieces), usage)


class LLM(ABC):
    """A chat model. ``stream`` yields text pieces, then exactly one :class:`Usage`."""

    backend: str = "llm"
    model: str = ""

    @abstractmethod
    def stream(self, request: Request) -> Iterator[str | Usage]:
        """Generate for ``request``: text pieces as they come, then the Usage. Raises PaperchatError."""

    def complete(self, request: Request, on_text: Callable[[str], None] | None = None) -> Completion:
        """Generate and return the whole text (calling ``on_text`` with each piece)."""
        collected = Collected(self.stream(request))
        for piece in collected:
            if on_text:
                on_text(piece)
        return collected.completion

    def describe(self) -> dict:
        """Backend and model, for logs, the footer and ``doctor``."""
        return {"backend": self.backend, "model": self.model}


@dataclass
class Diagnosis:
    """What a backend says about itself for ``paperchat doctor``: whether it can answer, and the report lines."""

    ready: bool
    lines: list[str] = field(default_factory=list)

    @classmethod
    def probing(cls, name: str, where: Callable[[], str], check: Callable[[], object], probe: bool) -> Diagnosis:
        """A server backend's first report line: ``check`` run when ``probe`` (its error sentence, if any, on the
        next line), then ``where()`` (what the check may have learnt, such as the model served); ``ready`` says
        whether the check passed. Errors other than PaperchatError propagate."""
        ok, problem = False, ""
        if probe:
            try:
                check()
                ok = True
            except PaperchatError as err:
                problem = str(err)
        state = "ready" if ok else "unavailable" if probe else "not used"
        return cls(ok, [f"  {name}: {where()} -> {state}", *([f"    {problem}"] if problem else [])])

