"""paperchat's one settings object.

Every field can be set by environment variable: ``PAPERCHAT_<FIELD>`` for top-level
fields and ``PAPERCHAT_<GROUP>__<FIELD>`` for grouped ones, e.g.
``PAPERCHAT_DATA_DIR=/tmp/pc`` or ``PAPERCHAT_MODEL__BACKEND=embedded``. The standard
``OLLAMA_HOST`` is honoured as the default Ollama address, and the OpenAI client's
``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` as the defaults of the ``openai`` backend.

>>> Settings(data_dir="/tmp/x").index_dir.as_posix()
'/tmp/x/index'
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .model_settings import (  # noqa: F401 (re-exported: settings are read from here)
    OllamaSettings,
    OpenAISettings,
    normalize_ollama_host,
    normalize_openai_base_url,
    parse_keep_alive,
)

#: the checkout, or the installed ``paperchat`` package: both hold ``seeds/`` (package data when installed)
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("paperchat", appauthor=False))


def _default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("paperchat", appauthor=False))


def normalize_origin(value: str) -> str:
    """``scheme://host[:port]`` in lower case, without a trailing slash or default port (raises ValueError).

    >>> normalize_origin("HTTPS://Wiki.Example.org:443/")
    'https://wiki.example.org'
    """
    text = value.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an origin like https://wiki.example.org")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{value!r} must be only scheme://host[:port], without a path, query or user")
    host = parts.hostname
    if not re.fullmatch(r"[a-z0-9.-]+|[0-9a-f:.]+", host):
        raise ValueError(f"{value!r} has characters that are not allowed in a host name")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port") from None
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")



class IndexSettings(BaseModel):
    """Where and how papers are chunked, embedded and stored."""

    collection: str = Field(
        "papers",
        description="Chroma collection name (a prefix in server mode): 3-60 letters, digits, '.', '_', '-'.",
    )
    chunk_tokens: int = Field(160, ge=32, le=4096, description="Chunk size in tiktoken cl100k tokens.")
    chunk_overlap: int = Field(32, ge=0, le=1024, description="Tokens shared by consecutive chunks.")
    embed_batch: int = Field(32, ge=1, le=1024, description="Chunks embedded per model call.")
    embedder: Literal["minilm", "wordllama"] = Field(
        "minilm",
        description="What embeds the chunks: 'minilm' (all-MiniLM-L6-v2, the best recall) or 'wordllama' (static "
        "token vectors, ~100x faster to ingest, a little lower dense recall: for corpora of 10k papers and more). "
        "Changing it rebuilds the index on the next ingest.",
    )
    chroma_host: str | None = Field(
        None, description="Chroma server host; when set, the index lives on that server instead of on disk."
    )
    chroma_port: int = Field(8000, description="Chroma server port.")
    chroma_ssl: bool = Field(False, description="Use HTTPS for the Chroma server.")

    @field_validator("collection")
    @classmethod
    def _collection(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,58}[A-Za-z0-9]", v) or ".." in v:
            raise ValueError(f"{v!r} is not a collection name: use 3-60 letters, digits, '.', '_' or '-', e.g. papers")
        return v


class RetrievalSettings(BaseModel):
    """How questions find papers."""

    mode: Literal["hybrid", "dense", "bm25"] = Field("hybrid", description="Retrieval method.")
    top_k: int = Field(5, ge=1, le=100, description="Papers returned by search.")
    candidates: int = Field(30, ge=1, le=1000, description="Chunks each retriever proposes before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")


class EmbeddedSettings(BaseModel):
    """The default backend: a llama.cpp model running inside paperchat."""

    model: str = Field(
        "qwen2.5-1.5b",
        description="Embedded model: 'qwen2.5-1.5b' (default), 'qwen2.5-0.5b', or a path to a .gguf file.",
    )
    threads: int = Field(
        default_factory=lambda: max(1, min(8, os.cpu_count() or 1)), ge=1,
        description="llama.cpp threads for reading the prompt.",
    )
    generation_threads: int = Field(
        default_factory=lambda: max(1, min(4, cpus if (cpus := os.cpu_count() or 1) <= 2 else cpus // 2)), ge=1,
        description="llama.cpp threads for writing the answer (2 on 2 cores: 12.6 against 8.1 tokens/s when idle).",
    )
    n_ctx: int = Field(8192, ge=512, description="Context window of the embedded model (per answer slot).")
    parallel: int = Field(
        1, ge=1, le=16, description="Answers the embedded model generates at once (llama.cpp slots, decoded in one "
        "batch). Set PAPERCHAT_SERVER__CONCURRENCY to the same number to let that many readers in; bench/SLOTS.md "
        "has the throughput measured for 1 and 2 (on 2 cores 2 slots gave 0.94x-1.12x the answers per minute, so the "
        "default stays 1)."
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir, description="Where joined model files are cached."
    )


class ModelSettings(BaseModel):
    """Which language model answers."""

    backend: Literal["auto", "ollama", "embedded", "openai"] = Field(
        "auto",
        description="'auto' uses Ollama when it is up and has the model, else the embedded model; 'openai' uses an "
        "OpenAI-compatible server (PAPERCHAT_OPENAI__*).",
    )
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    max_answer_tokens: int = Field(320, ge=16, description="Cap on tokens in a drafted answer.")
    seed: int = Field(42, description="Sampling seed, for repeatable answers.")


#: The critique's checks, by name, in the order they run (``rag/critique/checks.py``'s registry; a test keeps the two
#: equal): the names ``answer.disabled_checks`` accepts.
CRITIQUE_CHECKS = (
    "fragment", "instructions", "too_short", "rebind_number", "rebind_extreme", "restated_identity", "invented_part",
    "unstated_meaning", "restates", "unrelated", "answers_quantity", "describes", "fits_other_paper", "reread", "refers_back",
    "asked_thing", "stays_on_question", "premise", "asked_kind", "reanswer", "continues",
)


class AnswerSettings(BaseModel):
    """How answers are drafted and checked."""

    sources: int = Field(4, ge=1, le=20, description="Papers whose sentences may be shown to the model.")
    evidence_sentences: int = Field(8, ge=1, le=60, description="Best-matching abstract sentences shown to the model.")
    side_sentences: int = Field(
        30, ge=1, le=60, description="Each side of a comparison is drafted from its own paper alone (a separate prompt): "
        "its whole abstract when it has at most this many sentences, else this many sentences chosen for that side's "
        "question."
    )
    restated_share: float = Field(
        0.7, ge=0, le=1, description="A which-paper claim whose words (outside the cited paper's title) are at least "
        "this share the question's own restates the question: it is checked as the cited paper's title, i.e. whether "
        "that paper fits the question's description."
    )
    reanswer_sentences: int = Field(
        2, ge=0, le=10, description="When the question, answered again from the answer's paper alone, gives numbers "
        "or names the answer lacks, at most this many of the abstract's sentences holding them are added (0: none)."
    )
    process_sentences: int = Field(
        3, ge=0, le=10, description="When a question asks how something works and the answer draws on one part of the "
        "paper's description of its method, at most this many of the abstract's next sentences that still describe it "
        "(before the results) are added (0: none)."
    )
    whole_paper: bool = Field(
        False, description="Show the model the best-matching paper's whole abstract (with the other papers' best "
        "sentences) for every question it drafts, not only for questions that ask two things."
    )
    named_paper_alone: bool = Field(
        True, description="Answer a question that names one paper by its own name (the name before its title's colon, "
        "or the name its abstract gives its method) from that paper alone, not with other papers' sentences beside it."
    )
    whole_paper_for_process: bool = Field(
        True, description="Show the best-matching paper's whole abstract for a question that asks how something works "
        "or what it is made of (its steps or parts are spread over the abstract's sentences)."
    )
    process_rules: bool = Field(
        True, description="Draft a question that asks how something works with rules that ask for each of its steps "
        "or parts (prompts.PROCESS_RULES), not only the first."
    )
    side_question_words: int = Field(
        2, ge=0, le=20, description="A comparison side's own question (the comparison rewritten for one side) is used "
        "only when it keeps at least this many of the question's words that name no side; else the side is drafted "
        "from the whole question with the other side's name taken out."
    )
    model_side_questions: bool = Field(
        True, description="A comparison that asks one thing of both sides (\"which is larger, A or B?\") is rewritten by "
        "the model as one plain question per side (prompts.SIDE_SPLIT), each drafted and checked against its own "
        "paper; off: the side questions are the comparison's clauses, or the question with the other side's name cut."
    )
    description_fit: float = Field(
        0.6, ge=0, le=1, description="A question's description of a paper (\"the sparse audio paper\") refers to the "
        "best paper found for it when at least this share of its telling words are in that paper's title or abstract; "
        "a question referring to two papers is answered as a comparison of them."
    )
    evidence_margin: float = Field(
        0.45, ge=0, description="Sentences scoring this much below the best-matching one are not shown to the model "
        "(shorter prompts start the answer sooner)."
    )
    prompt_layout: Literal["rules_last", "rules_first"] = Field(
        "rules_first", description="Where the drafting rules sit: in the system message (read once for all questions "
        "by the prefix cache, so the answer starts sooner), or after the sources and question."
    )
    min_relevance: float = Field(
        0.25, ge=-1, le=1, description="A question no title or sentence of the papers found is this close to (MiniLM "
        "cosine) is refused at once, without asking the model: it is about something the collection does not hold."
    )
    critique: bool = Field(True, description="Run the self-critique pass.")
    model_judge: Literal["auto", "always", "never"] = Field(
        "auto",
        description="Let the model judge claims the other checks pass: 'auto' asks an Ollama model, not the embedded "
        "1.5B (measured: 1 claim of 119 rejected, one the meaning check also rejects, at ~7 s per claim).",
    )
    reread: bool = Field(
        True, description="Re-read each kept claim's numbers and names from its cited abstract with the model (a blank "
        "filled from the abstract alone): a value the abstract gives otherwise is corrected, one it does not state is "
        "withheld. Off: the critique's word and meaning checks only.",
    )
    reread_blanks: int = Field(3, ge=1, le=10, description="Most numbers and names of one claim that are re-read.")
    disabled_checks: list[str] = Field(
        default_factory=list, description="Critique checks switched off, by name (a JSON list, e.g. "
        '["restates", "unrelated"]); `python -m paperchat.eval.recheck RESULTS --ablate` measures each one.',
    )
    list_candidates: int = Field(10, ge=2, le=50, description="Papers a 'which papers…' question looks through.")
    list_min_similarity: float = Field(
        0.5, ge=0, le=2, description="Least match score (MiniLM similarity + 0.25 x topic words found) to be listed."
    )
    list_margin: float = Field(0.15, ge=0, le=1, description="Listed papers are at most this much less similar than the best.")
    list_max: int = Field(6, ge=1, le=20, description="Most papers named in a list answer.")
    max_question_chars: int = Field(2000, ge=10, description="Longest question accepted.")
    history_turns: int = Field(3, ge=0, description="Past turns used to rewrite a follow-up question.")

    @field_validator("disabled_checks")
    @classmethod
    def _known_checks(cls, value: list[str]) -> list[str]:
        """Only names of the critique's checks."""
        unknown = [name for name in value if name not in CRITIQUE_CHECKS]
        if unknown:
            raise ValueError(
                f"no critique check is called {', '.join(map(repr, unknown))}; "
                f"name checks to switch off from: {', '.join(CRITIQUE_CHECKS)}"
            )
        return value

    @field_validator("model_judge", mode="before")
    @classmethod
    def _judge_from_bool(cls, value: object) -> object:
        """Earlier versions took true/false: they mean 'always' / 'never'."""
        if isinstance(value, bool):
            return "always" if value else "never"
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return "always" if value.strip().lower() in ("true", "1", "yes", "on") else "never"
        return value


class ServerSettings(BaseModel):
    """The web chat and HTTP API."""

    model_config = ConfigDict(validate_assignment=True)

    host: str = Field("127.0.0.1", description="Interface to bind.")
    port: int = Field(7860, ge=1, le=65535, description="Port to bind (1-65535).")
    root_path: str = Field("", description="Sub-path when served behind a reverse proxy, e.g. /paperchat.")
    api_token: str | None = Field(None, description="Bearer token required by the API and embed view when set.")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) allowed by CORS and frame-ancestors (JSON list; '*' is refused).",
    )
    max_body_bytes: int = Field(64_000, ge=1024, description="Largest request body accepted.")
    rate_limit_per_minute: int = Field(30, ge=1, description="Questions per minute per client (API and Gradio API).")
    concurrency: int = Field(1, ge=1, description="Answers generated at once (one local model: 1).")
    max_queue: int = Field(32, ge=1, description="Requests allowed to wait in the queue.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Proxy addresses or CIDRs whose X-Forwarded-For/-Proto are believed (JSON list; default none).",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names accepted without a token besides localhost/127.0.0.1/::1 (JSON list; DNS rebinding).",
    )
    auth_failures_per_minute: int = Field(10, ge=1, description="Wrong-token attempts per minute per client before 429.")
    embed_token_days: float = Field(
        30.0, gt=0, le=3650, allow_inf_nan=False, description="Lifetime of the embed credential `embed-snippet` prints."
    )
    max_header_bytes: int = Field(
        32_768, ge=4096, le=1_048_576, description="Largest request head (request line and headers) accepted; larger gets 431."
    )
    header_timeout_s: float = Field(
        10.0, gt=0, le=300, description="Seconds a connection may take to send a whole request head before it is closed."
    )
    body_timeout_s: float = Field(
        30.0, gt=0, le=600, description="Seconds a request may take to send its whole body before it gets 408."
    )

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        if any(o.strip() == "*" for o in v):
            raise ValueError("'*' is not allowed (credentials are sent): list each origin, e.g. https://wiki.example.org")
        return list(dict.fromkeys(normalize_origin(o) for o in v))

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        import ipaddress

        for item in v:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR such as 10.0.0.0/8") from None
        return [item.strip() for item in v]

    @field_validator("root_path")
    @classmethod
    def _root(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if v and not v.startswith("/"):
            raise ValueError(f"{v!r} must start with '/', e.g. /paperchat")
        if v and not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", v):  # it goes into cookies and pages unescaped by others
            raise ValueError(f"{v!r} may hold only letters, digits and . _ ~ - between slashes, e.g. /paperchat")
        return v


class Settings(BaseSettings):
    """All of paperchat's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="PAPERCHAT_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    data_dir: Path = Field(default_factory=_default_data_dir, description="Where the index and state live.")
    seeds_dir: Path = Field(PACKAGE_ROOT / "seeds", description="Paper files ingested by default.")
    index: IndexSettings = Field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    ollama: OllamaSettings = Field(default_factory=OllamaSettings)
    embedded: EmbeddedSettings = Field(default_factory=EmbeddedSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

    @property
    def index_dir(self) -> Path:
        """Directory holding the index generations (local mode)."""
        return Path(self.data_dir) / "index"


#: Environment names people guess, and the setting each one means.
ENV_ALIASES = {"PAPERCHAT_API_TOKEN": "PAPERCHAT_SERVER__API_TOKEN", "PAPERCHAT_TOKEN": "PAPERCHAT_SERVER__API_TOKEN"}


def unknown_env(environ) -> list[str]:
    """``PAPERCHAT_*`` variables that set nothing (typos, guessed names), aliases excluded.

    >>> unknown_env({"PAPERCHAT_DATA_DIR": "x", "PAPERCHAT_SERVER__PORTT": "1", "PAPERCHAT_API_TOKEN": "t"})
    ['PAPERCHAT_SERVER__PORTT']
    """
    known = set(ENV_ALIASES)
    for name, field in Settings.model_fields.items():
        known.add(f"PAPERCHAT_{name.upper()}")
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            known.update(f"PAPERCHAT_{name.upper()}__{sub.upper()}" for sub in field.annotation.model_fields)
    return sorted(k for k in environ if k.upper().startswith("PAPERCHAT_") and k.upper() not in known)
