"""``paperchat doctor``: what paperchat would use right now, and what to fix."""

from __future__ import annotations

import importlib.metadata

from .errors import PaperchatError
from .settings import Settings


def ollama_facts(ollama) -> list[str]:
    """What the server says about the model: context (``/api/show``), thinking, loaded or not (``/api/ps``)."""
    info = ollama.info
    trained = f"{info.trained_ctx:,} tokens" if info.trained_ctx else "not reported"
    sent = f"num_ctx sent {ollama.context_tokens:,}"
    if ollama.context_tokens < ollama.num_ctx:
        sent += f" (capped: PAPERCHAT_OLLAMA__NUM_CTX is {ollama.num_ctx:,})"
    caps = "not reported (an older server)" if info.capabilities is None else ", ".join(info.capabilities) or "none"
    thinking = "yes (paperchat sends think=false)" if info.thinking else "no"
    lines = [f"    server says: trained context {trained}; {sent}", f"    capabilities: {caps}; thinking: {thinking}"]
    try:
        entry = ollama.loaded()
    except PaperchatError as err:
        lines.append(f"    loaded: unknown ({err})")
        return lines
    if entry is None:
        lines.append("    loaded: no (the first question loads it; 'auto' preloads it when it switches to Ollama)")
    else:
        until = f", until {entry.expires_at:%Y-%m-%d %H:%M} UTC" if entry.expires_at else ""
        ctx = f"context {entry.context_length:,}" if entry.context_length else "context not reported"
        again = ""
        if entry.context_length and entry.context_length != ollama.context_tokens:
            again = f"; the next question reloads it with num_ctx {ollama.context_tokens:,}"
        lines.append(f"    loaded: yes, {ctx}{until}{again}")
    return lines


def report(settings: Settings) -> tuple[str, bool]:
    """A readable report and whether everything needed to answer is in place."""
    from .embedded import MODELS
    from .models import OllamaLLM
    from .store import status

    lines: list[str] = []
    healthy = True

    def fix(text: str) -> None:
        lines.append(f"    fix: {text}")

    lines.append(f"paperchat {importlib.metadata.version('paperchat')}  (data dir: {settings.data_dir})")
    # -- models
    backend = settings.model.backend
    ollama = OllamaLLM.from_settings(settings)
    ollama_ok, ollama_problem = False, ""
    if backend in ("auto", "ollama"):
        try:
            ollama.check()
            ollama_ok = True
        except PaperchatError as err:
            ollama_problem = str(err)
    lines.append(f"model backend setting: {backend}")
    lines.append(f"  ollama: {ollama.host} model {ollama.model} -> {'ready' if ollama_ok else 'not used' if backend == 'embedded' else 'unavailable'}")
    if ollama_problem:
        lines.append(f"    {ollama_problem}")
    if ollama_ok:
        lines.extend(ollama_facts(ollama))
    name = settings.embedded.model
    spec = MODELS.get(name)
    embedded_ok = True
    if spec is not None:
        from .embedded import _part_files

        cached = settings.embedded.cache_dir / f"{spec.key}-{spec.sha256[:12]}.gguf"
        try:
            _part_files(spec)
            where = f"{cached} ({'joined' if cached.exists() else 'joined on first use from the installed parts'})"
        except PaperchatError as err:
            embedded_ok = False
            where = f"missing ({err})"
        lines.append(f"  embedded: {spec.display}; weights {where}; {settings.embedded.threads} threads")
    else:
        from pathlib import Path

        path = Path(name).expanduser()
        embedded_ok = path.is_file()
        lines.append(f"  embedded: user GGUF {path} -> {'found' if embedded_ok else 'MISSING'}")
    if backend == "ollama":
        in_use = "ollama" if ollama_ok else "none"
    elif backend == "embedded":
        in_use = "embedded" if embedded_ok else "none"
    else:
        in_use = "ollama" if ollama_ok else "embedded" if embedded_ok else "none"
    lines.append(f"  in use: {in_use}")
    if in_use == "none":
        healthy = False
        fix("reinstall with `pip install -e .` for the embedded model, or start Ollama and `ollama pull` the model")
    # -- index
    try:
        info = status(settings)
    except PaperchatError as err:
        info = {"ready": False, "where": str(settings.index_dir), "error": str(err)}
    if info.get("ready"):
        lines.append(f"index: {info['papers']} papers, {info['chunks']} chunks, generation {info['generation']} at {info['where']}")
    else:
        healthy = False
        lines.append(f"index: not built at {info['where']}" + (f" ({info['error']})" if info.get("error") else ""))
        fix("run `paperchat ingest` (indexes the seed papers)")
    lines.append("status: " + ("ready" if healthy else "needs attention"))
    return "\n".join(lines), healthy
