"""A model on any server with the OpenAI-compatible chat API (``POST {base_url}/chat/completions``).

Chosen with ``PAPERCHAT_MODEL__BACKEND=openai``: llama.cpp's ``llama-server``, vLLM, LM Studio,
TGI. Plain httpx (no ``openai`` package). Where the servers differ, this module reads each form:

- errors: OpenAI and llama.cpp answer ``{"error": {"message": …}}``; vLLM's API-key middleware
  answers ``{"error": "Unauthorized"}`` (a string), older vLLM ``{"object": "error", "message": …}``,
  FastAPI routes ``{"detail": …}``; :func:`error_message` reads them all.
- the model name: vLLM answers 404 for a name it does not serve, while llama.cpp answers with its
  one model whatever the name; so :meth:`OpenAICompatLLM.check` compares the name with ``/models``.
- usage: the stream's last chunk (``stream_options.include_usage``; ``choices`` empty). Cached prompt
  tokens come from ``usage.prompt_tokens_details.cached_tokens`` (OpenAI; vLLM only when started with
  ``--enable-prompt-tokens-details``) or llama.cpp's ``timings.cache_n``; prompt and generation
  seconds from llama.cpp's ``timings`` where given, else measured here.

Prefix caching needs nothing sent: llama.cpp (``cache_prompt``) and vLLM (automatic prefix caching)
cache by default; paperchat's prompts keep their shared beginning byte-identical for them.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import (
    ContextOverflowError,
    ModelAuthError,
    ModelTimeoutError,
    ModelUnavailableError,
    PaperchatError,
    ServedModelMissingError,
)
from .models import LLM, Diagnosis, Request, Usage
from .settings import Settings

log = logging.getLogger(__name__)

#: messages of a 400 for a prompt longer than the context: llama.cpp ("exceeds the available context
#: size"), vLLM ("This model's maximum context length is …"), OpenAI ("context_length_exceeded")
_CONTEXT = re.compile(r"context.length|context.size|maximum context|exceeds? the available context", re.IGNORECASE)
#: messages of a 400 for a response_format the server cannot honour
_SCHEMA = re.compile(r"response_format|json_schema|grammar|guided|structured", re.IGNORECASE)
_FIX_URL = "Check PAPERCHAT_OPENAI__BASE_URL (or OPENAI_BASE_URL): it usually ends in /v1, e.g. http://127.0.0.1:8080/v1."


def error_message(body: bytes | str) -> str:
    """The message of an error body, in any of the servers' shapes (else the text, shortened).

    >>> error_message(b'{"error": {"message": "Invalid API Key", "type": "authentication_error", "code": 401}}')
    'Invalid API Key'
    >>> error_message('{"error": "Unauthorized"}'), error_message('{"object": "error", "message": "bad"}')
    ('Unauthorized', 'bad')
    >>> error_message('<html>\\n<h1>404 Not Found</h1></html>')
    '<html> <h1>404 Not Found</h1></html>'
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, str) and err:
            return err
        for source in (err, data):
            for key in ("message", "detail", "msg"):
                if isinstance(source, dict) and isinstance(source.get(key), str):
                    return source[key]
    return " ".join(text.split())[:200] or "no message"


def _sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The ``data:`` payloads of a server-sent-event stream (comments and other fields skipped)."""
    for line in lines:
        if line.startswith("data:"):
            yield line[5:].strip()


class OpenAICompatLLM(LLM):
    """A model behind an OpenAI-compatible ``/chat/completions``, streamed.

    ``model`` empty means the first model the server lists (llama-server lists its one model);
    :meth:`check` asks ``/models`` once, before the first request.
    """

    backend = "openai"

    def __init__(
        self,
        base_url: str,
        model: str = "",
        *,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        probe_timeout_s: float = 5.0,
        json_schema: bool = True,
    ):
        self.base_url = base_url.rstrip("/")
        self.configured_model = model
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.probe_timeout_s = probe_timeout_s
        self.json_schema = json_schema
        #: what ``/models`` listed (ids and aliases), once :meth:`check` ran
        self.served: list[str] | None = None
        self._client = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAICompatLLM:
        o = settings.openai
        return cls(
            o.base_url,
            o.model,
            api_key=o.api_key.get_secret_value() if o.api_key else None,
            timeout_s=o.timeout_s,
            probe_timeout_s=o.probe_timeout_s,
            json_schema=o.json_schema,
        )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _get_client(self):
        if self._client is None:
            import httpx

            timeout = httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s))
            self._client = httpx.Client(timeout=timeout, headers=self._headers())
        return self._client

    def _refused(self, status: int, message: str, path: str) -> PaperchatError:
        """The sentence for an HTTP error status from ``path``."""
        where = f"The server at {self.base_url}"
        if status in (401, 403):
            need = "It needs an API key: set" if not self.api_key else "Set"
            return ModelAuthError(
                f"{where} refused paperchat's request (HTTP {status}: {message}). {need} PAPERCHAT_OPENAI__API_KEY "
                "(or OPENAI_API_KEY) to a key it accepts."
            )
        if status == 404 and "model" in message.lower():  # vLLM: "The model `x` does not exist."
            return ServedModelMissingError(self.model, self.base_url, self.served or [])
        if status in (404, 405):
            return ModelUnavailableError(
                f"{where} answered HTTP {status} ({message}) for {path}: no OpenAI-compatible API is there. {_FIX_URL}"
            )
        if status == 400 and _CONTEXT.search(message):
            return ContextOverflowError(
                f"{where} refused the prompt as too long for {self.model} ({message}).",
                raise_what="the server's context size (llama-server -c, vLLM --max-model-len)",
            )
        if status == 400 and _SCHEMA.search(message):
            return ModelUnavailableError(
                f"{where} refused JSON-schema output ({message}). Set PAPERCHAT_OPENAI__JSON_SCHEMA=false "
                "(paperchat then asks for JSON in words only)."
            )
        if status in (429, 503):
            return ModelUnavailableError(f"{where} is busy (HTTP {status}: {message}). Ask again in a moment.")
        return ModelUnavailableError(
            f"{where} refused the request (HTTP {status}: {message}). Check the PAPERCHAT_OPENAI__ settings "
            "and the server's log."
        )

    def _transport_error(self, err: Exception, *, probing: bool = False) -> PaperchatError:
        """The sentence for a connection that failed or took too long."""
        import httpx

        if isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout)):
            return ModelUnavailableError(
                f"No server answers at {self.base_url} ({type(err).__name__}). Start the model server, or "
                f"correct the address. {_FIX_URL}"
            )
        if isinstance(err, httpx.TimeoutException):
            limit, name = (self.probe_timeout_s, "PROBE_TIMEOUT_S") if probing else (self.timeout_s, "TIMEOUT_S")
            return ModelTimeoutError(
                f"The server at {self.base_url} did not answer within {limit:g} s. "
                f"Raise PAPERCHAT_OPENAI__{name}, or use a smaller model."
            )
        return ModelUnavailableError(
            f"The server at {self.base_url} stopped answering ({type(err).__name__}). Check that it is running, "
            "then ask again."
        )

    def check(self) -> list[str]:
        """Ask ``/models`` what the server serves; use the first when no model is set; raise if the set one is absent."""
        import httpx

        try:
            reply = httpx.get(f"{self.base_url}/models", headers=self._headers(), timeout=self.probe_timeout_s)
        except httpx.HTTPError as err:
            raise self._transport_error(err, probing=True) from None
        if reply.status_code != 200:
            raise self._refused(reply.status_code, error_message(reply.content), "/models")
        try:
            entries = reply.json()["data"]
            served = [str(e["id"]) for e in entries]
            aliases = [str(a) for e in entries for a in (e.get("aliases") or [])]  # llama-server's --alias
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ModelUnavailableError(
                f"The server at {self.base_url} answered /models with something other than a model list. {_FIX_URL}"
            ) from None
        self.served = served
        if not self.configured_model:
            if not served:
                raise ModelUnavailableError(f"The server at {self.base_url} lists no models. Load one on it first.")
            self.model = served[0]
        elif self.configured_model not in served + aliases:
            raise ServedModelMissingError(self.configured_model, self.base_url, served)
        return served

    def _body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if request.json_schema is not None and self.json_schema:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.json_schema},
            }
        return body

    def _read_chunk(self, data: str, seen: dict[str, Any]) -> str:
        """The text of one stream chunk; keeps its usage, timings and finish reason in ``seen``."""
        try:
            chunk = json.loads(data)
        except ValueError:
            chunk = {"error": f"a stream line that is not JSON: {data[:80]!r}"}
        if not isinstance(chunk, dict) or "error" in chunk or chunk.get("object") == "error":
            raise ModelUnavailableError(
                f"The server at {self.base_url} failed in the middle of the answer ({error_message(data)}). "
                "The partial answer was discarded; ask again, and check the server's log if it keeps happening."
            )
        seen.update({k: chunk[k] for k in ("usage", "timings") if chunk.get(k)})
        text = ""
        for choice in chunk.get("choices") or []:
            text += (choice.get("delta") or {}).get("content") or ""
            seen["finish_reason"] = choice.get("finish_reason") or seen.get("finish_reason")
        if text and "first" not in seen:
            seen["first"] = time.perf_counter()
        return text

    def stream(self, request: Request) -> Iterator[str | Usage]:
        import httpx

        if self.served is None:
            self.check()
        started = time.perf_counter()
        seen: dict[str, Any] = {}
        try:
            with self._get_client().stream("POST", f"{self.base_url}/chat/completions", json=self._body(request)) as reply:
                if reply.status_code != 200:
                    raise self._refused(reply.status_code, error_message(reply.read()), "/chat/completions")
                for data in _sse_data(reply.iter_lines()):
                    if data == "[DONE]":
                        break
                    if text := self._read_chunk(data, seen):
                        yield text
        except httpx.HTTPError as err:
            raise self._transport_error(err) from None
        if not seen.get("finish_reason"):
            raise ModelUnavailableError(
                f"The server at {self.base_url} ended the answer early. Ask again; if it keeps happening, "
                "check the server's log."
            )
        yield _usage(seen, started)

    def describe(self) -> dict:
        return {"backend": self.backend, "model": self.model, "base_url": self.base_url}

    def diagnose(self, probe: bool = True) -> Diagnosis:
        """For ``doctor``: ask the server (when ``probe``) which models it serves and whether ours is one."""
        def where() -> str:  # the model the server lists first is known once the check has asked it
            return f"{self.base_url} model {self.configured_model or f'{self.model} (the first one it lists)'.lstrip()}"

        report = Diagnosis.probing("openai", where, self.check, probe)
        if report.ready:
            key = "sent" if self.api_key else "none"
            report.lines.append(f"    server lists: {', '.join(self.served or [])}; API key: {key}")
        return report


def _usage(seen: dict[str, Any], started: float) -> Usage:
    """The Usage of a finished stream: the server's counts, its timings where given, else measured ones."""
    usage = seen.get("usage") or {}
    timings = seen.get("timings") or {}
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached is None:
        cached = timings.get("cache_n") or 0
    now = time.perf_counter()
    first = seen.get("first", now)
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(cached),
        prompt_seconds=float(timings["prompt_ms"]) / 1000 if "prompt_ms" in timings else first - started,
        generation_seconds=float(timings["predicted_ms"]) / 1000 if "predicted_ms" in timings else now - first,
        total_seconds=now - started,
        finish_reason=str(seen.get("finish_reason") or ""),
    )
