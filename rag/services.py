"""Building the parts of paperchat from settings, in one place: the composition root.

The CLI, the server, the evaluation (:mod:`paperchat.eval.pipelines`, :mod:`paperchat.eval.runner`) and the
benchmarks read their settings (:func:`settings_from_env`) and build the index, retriever,
model and pipelines through these functions.

Each builder takes the parts it depends on as arguments with defaults, so tests and
other front ends can pass their own (a deterministic embedder, a scripted LLM).
Nothing is built at import time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from .embeddings import Embedder, default_embedder
from .errors import ConfigError, IndexMissingError
from .retrieval import Retriever
from .settings import Settings
from .store import PaperIndex

log = logging.getLogger("paperchat")


def settings_from_env(data_dir: str | os.PathLike | None = None) -> Settings:
    """The settings from the environment (unknown names warned about, old aliases read), ``data_dir`` winning."""
    from pydantic import ValidationError

    from .settings import ENV_ALIASES, unknown_env

    unknown = unknown_env(os.environ)
    if unknown:
        log.warning("ignoring unknown environment variable(s) %s: paperchat's settings are named in the README "
                    "(PAPERCHAT_<FIELD> or PAPERCHAT_<GROUP>__<FIELD>).", ", ".join(unknown))
    overrides: dict = {}
    for alias, real in ENV_ALIASES.items():
        if os.environ.get(alias) and not os.environ.get(real):
            log.warning("%s is read as %s.", alias, real)
            group, field = real.removeprefix("PAPERCHAT_").lower().split("__")
            overrides.setdefault(group, {})[field] = os.environ[alias]
    if data_dir:
        overrides["data_dir"] = data_dir
    from pydantic_settings.exceptions import SettingsError

    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise config_error(err) from None
    except SettingsError:  # a list or group setting that is not JSON: name it
        raise ConfigError(f"{_unreadable_json(os.environ)} is not valid JSON. Write a list as JSON, e.g. "
                          '\'["https://wiki.example.org"]\', and run the command again.') from None


def _unreadable_json(environ) -> str:
    """The first ``PAPERCHAT_*`` variable holding a list or group setting whose value is not JSON."""
    import json

    from pydantic import BaseModel

    for name, field in Settings.model_fields.items():
        group = field.annotation if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel) else None
        for sub, sub_field in (group.model_fields.items() if group else ()):
            env = f"PAPERCHAT_{name.upper()}__{sub.upper()}"
            if env in environ and "list" in str(sub_field.annotation):
                try:
                    json.loads(environ[env])
                except ValueError:
                    return env
        if group and f"PAPERCHAT_{name.upper()}" in environ:
            return f"PAPERCHAT_{name.upper()}"
    return "A PAPERCHAT_ setting"


def config_error(err, option: bool = False) -> ConfigError:
    """A pydantic ValidationError as a sentence naming the setting (or the command-line ``option``)."""
    first = err.errors()[0]
    name = "__".join(str(p) for p in first.get("loc", ()) if not isinstance(p, int))
    where = f"--{name.replace('_', '-')}" if option else f"PAPERCHAT_{name.upper()}" if name else "a setting"
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ").rstrip(".")
    return ConfigError(f"{where} is not valid: {msg}. Fix it and run the command again.")


def build_index(settings: Settings | None = None, embedder: Embedder | None = None) -> PaperIndex:
    """The paper index the settings describe (its embedder: ``index.embedder``)."""
    settings = settings or Settings()
    return PaperIndex(settings, embedder or default_embedder(settings.index.embedder))


def build_retriever(settings: Settings | None = None, index: PaperIndex | None = None) -> Retriever:
    """A retriever over the index in service; sentences are weighed with MiniLM whatever embeds the index."""
    index = index or build_index(settings)
    return Retriever(index, meaning=None if index.embedder.weighs_meaning else default_embedder("minilm"))


def build_llm(settings: Settings | None = None, backend: str | None = None):
    """The language model the settings choose, or the named ``backend`` (see :func:`paperchat.rag.backends.choose_llm`)."""
    from .backends import choose_llm

    return choose_llm(settings or Settings(), backend=backend)


def build_pipeline(settings: Settings | None = None, *, retriever: Retriever | None = None, llm=None, critique: bool | None = None):
    """The answering pipeline, from settings; pass parts to reuse or replace them."""
    from .pipeline import Pipeline

    settings = settings or Settings()
    return Pipeline(settings, retriever or build_retriever(settings), llm or build_llm(settings), critique=critique)


@dataclass
class Service:
    """The parts a server answers with: one index, its retriever, one model and the pipeline over them."""

    index: PaperIndex
    retriever: Retriever
    llm: object
    pipeline: object


def build_service(
    settings: Settings,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    note: Callable[[str], None] = lambda message: None,
) -> Service:
    """Everything ``paperchat serve`` answers with; an empty index is filled with the seeds first.

    ``note`` is told what takes long (seeding, loading the model), ``progress`` follows the ingest.
    """
    from .corpus import load_papers

    index = build_index(settings)
    try:
        index.current_manifest()
    except IndexMissingError:
        note(f"The index is empty: indexing the seed papers in {settings.seeds_dir} first…")
        index.ingest(load_papers([settings.seeds_dir]), progress=progress)
    note("loading the language model…")
    llm = build_llm(settings)
    info = llm.describe()
    note(f"answering with {info.get('model')} ({info.get('backend')})")
    retriever = build_retriever(settings, index=index)
    return Service(index, retriever, llm, build_pipeline(settings, retriever=retriever, llm=llm))
