"""Exceptions of paperchat.

Every error a user can cause or fix is a :class:`PaperchatError` whose message is a
sentence that says what went wrong and how to fix it. Only the edges (CLI, UI, API)
turn these into user-facing output; nothing here prints.
"""

from __future__ import annotations

from pathlib import Path


class PaperchatError(Exception):
    """Base class: ``str(err)`` is a complete sentence meant for the user."""

    #: A short machine-readable kind, used by the HTTP API.
    code = "error"
    #: HTTP status the API answers with.
    http_status = 500


class ConfigError(PaperchatError):
    """A setting has a value paperchat cannot use."""

    code = "config"
    http_status = 500


class CorpusError(PaperchatError):
    """A paper file cannot be read; names the file and line."""

    code = "corpus"
    http_status = 400

    def __init__(self, path: Path | str, line: int | None, problem: str, fix: str = ""):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}, line {line}" if line else self.path
        message = f"{where}: {problem}"
        if fix:
            message += f" {fix}"
        super().__init__(message)


class IndexError_(PaperchatError):
    """Base for index problems (named with a trailing underscore: IndexError is a builtin)."""

    code = "index"
    http_status = 503


class IndexMissingError(IndexError_):
    """No usable index exists yet."""

    def __init__(self, where: str):
        super().__init__(
            f"The paper index at {where} is empty or missing. "
            "Run `paperchat ingest` to build it from the seed papers."
        )


class IndexCorruptError(IndexError_):
    """The index exists but cannot be read."""

    def __init__(self, where: str, detail: str):
        super().__init__(
            f"The paper index at {where} cannot be read ({detail}). "
            "Run `paperchat ingest --rebuild` to rebuild it."
        )


class IngestBusyError(IndexError_):
    """Another ingest holds the lock."""

    def __init__(self, where: str):
        super().__init__(
            f"Another `paperchat ingest` is already running on {where}. "
            "Wait for it to finish, then try again."
        )


class IngestError(IndexError_):
    """Building a new index generation failed; the previous one is still served."""

    def __init__(self, detail: str):
        super().__init__(
            f"Ingest failed and nothing was changed: the previous index is still in service ({detail}). "
            "Fix the cause (for example free disk space) and run `paperchat ingest` again."
        )


class ModelFileError(PaperchatError):
    """A model or tokenizer file is missing, altered or corrupt."""

    code = "model_file"
    http_status = 500


class ModelUnavailableError(PaperchatError):
    """The language model cannot be reached or loaded."""

    code = "model_unavailable"
    http_status = 503


class ModelNotPulledError(ModelUnavailableError):
    """The Ollama server answers but lacks the configured model."""

    def __init__(self, model: str, host: str):
        self.model = model
        super().__init__(
            f"The Ollama server at {host} does not have the model '{model}'. "
            f"Run `ollama pull {model}` on that machine, or set PAPERCHAT_OLLAMA__MODEL to a model it has."
        )


class ServedModelMissingError(ModelUnavailableError):
    """An OpenAI-compatible server answers but does not serve the configured model."""

    def __init__(self, model: str, url: str, served: list[str]):
        self.model = model
        has = f"it serves {', '.join(repr(m) for m in served[:5])}" if served else "it lists no models"
        super().__init__(
            f"The server at {url} does not serve the model '{model}' ({has}). Set PAPERCHAT_OPENAI__MODEL to one of "
            "its models, or leave it empty to use the first one it lists."
        )


class ModelAuthError(ModelUnavailableError):
    """A model server refused paperchat's API key (HTTP 401/403)."""

    code = "model_auth"


class ModelTimeoutError(ModelUnavailableError):
    """The model did not answer in time."""

    code = "model_timeout"
    http_status = 504


class ContextOverflowError(PaperchatError):
    """The prompt and the answer do not fit the model's context: the server would cut the sources."""

    code = "context_overflow"
    http_status = 500

    def __init__(self, detail: str, trained_ctx: int | None = None, raise_what: str = "PAPERCHAT_OLLAMA__NUM_CTX"):
        allowed = f" (the model allows up to {trained_ctx:,})" if trained_ctx else ""
        super().__init__(
            f"{detail} The answer was not used, because it would come from cut sources. "
            f"Raise {raise_what}{allowed}, or show the model fewer sentences "
            "(PAPERCHAT_ANSWER__EVIDENCE_SENTENCES)."
        )


class QuestionError(PaperchatError):
    """The question itself cannot be answered as given (empty, too long, not text)."""

    code = "bad_question"
    http_status = 400


class QuestionTooLongError(QuestionError):
    """The question exceeds the configured limit."""

    http_status = 413

    def __init__(self, length: int, limit: int):
        self.length = length
        self.limit = limit
        super().__init__(
            f"The question is {length:,} characters long; the limit is {limit:,}. "
            "Ask a shorter question (a sentence or two works best)."
        )


class EvalInputError(PaperchatError):
    """A question-set file cannot be used at all."""

    code = "eval_input"
    http_status = 400
