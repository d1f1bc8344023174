"""A model served by Ollama (``/api/chat``), through the official ``ollama`` client.

:class:`OllamaLLM` asks the server about the model (``/api/show``), and sets context size,
keep-alive, thinking, timeout and JSON-schema output on every request. Chosen with
``PAPERCHAT_MODEL__BACKEND=ollama`` (or by ``auto``, see :mod:`paperchat.rag.backends`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import (
    ContextOverflowError,
    ModelNotPulledError,
    ModelTimeoutError,
    ModelUnavailableError,
    PaperchatError,
)
from .models import LLM, Diagnosis, Message, Request, Usage
from .settings import Settings

log = logging.getLogger(__name__)


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

    def _options(self, request: Request) -> dict[str, Any]:
        """The request's ``options``, after refusing a prompt that cannot fit ``num_ctx``."""
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
        return options

    def _final_usage(self, part: Any, started: float) -> Usage:
        """The Usage of the stream's last (``done``) part; raises if the server cut the prompt."""
        ctx = self.context_tokens
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
        return usage

    def stream(self, request: Request) -> Iterator[str | Usage]:
        import httpx
        import ollama
        import pydantic

        if self.info is None:
            self.check()
        options = self._options(request)
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
                    yield self._final_usage(part, started)
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

    def server_facts(self) -> list[str]:
        """What the server says about the model (after :meth:`check`): context, thinking, loaded or not (``/api/ps``)."""
        info = self.info or OllamaModelInfo()
        trained = f"{info.trained_ctx:,} tokens" if info.trained_ctx else "not reported"
        sent = f"num_ctx sent {self.context_tokens:,}"
        if self.context_tokens < self.num_ctx:
            sent += f" (capped: PAPERCHAT_OLLAMA__NUM_CTX is {self.num_ctx:,})"
        caps = "not reported (an older server)" if info.capabilities is None else ", ".join(info.capabilities) or "none"
        thinking = "yes (paperchat sends think=false)" if info.thinking else "no"
        lines = [f"    server says: trained context {trained}; {sent}", f"    capabilities: {caps}; thinking: {thinking}"]
        try:
            entry = self.loaded()
        except PaperchatError as err:
            lines.append(f"    loaded: unknown ({err})")
            return lines
        if entry is None:
            lines.append("    loaded: no (the first question loads it; 'auto' preloads it when it switches to Ollama)")
        else:
            until = f", until {entry.expires_at:%Y-%m-%d %H:%M} UTC" if entry.expires_at else ""
            ctx = f"context {entry.context_length:,}" if entry.context_length else "context not reported"
            again = ""
            if entry.context_length and entry.context_length != self.context_tokens:
                again = f"; the next question reloads it with num_ctx {self.context_tokens:,}"
            lines.append(f"    loaded: yes, {ctx}{until}{again}")
        return lines

    def diagnose(self, probe: bool = True) -> Diagnosis:
        """For ``doctor``: ask the server (when ``probe``) whether it has the model, and what it says about it."""
        report = Diagnosis.probing("ollama", lambda: f"{self.host} model {self.model}", self.check, probe)
        if report.ready:
            report.lines.extend(self.server_facts())
        return report
