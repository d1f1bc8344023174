"""A local HTTP stand-in for an Ollama server, copied from Ollama's source where it matters to paperchat.

Endpoints: /api/version, /api/tags, /api/show, /api/ps, /api/chat. Each behaviour names the
file and function of ollama/ollama (read at commit fb30760, August 2026) that it copies. It was
checked against that source only: no real Ollama server ran (none installs on these machines).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from paperchat.rag.tokens import encode

#: server/sched.go ErrMaxQueue (answered 503 by server/routes.go handleScheduleError).
BUSY = "server busy, please try again.  maximum pending requests exceeded"
#: llm/llama_server.go completionPromptForRequest, when context shift is off.
TOO_LONG = (
    "the prompt is longer than the context length currently available to the model; shorten the prompt, "
    "adjust the context length in settings, or use a model with a longer context length"
)
#: api/types.go DefaultOptions NumKeep.
NUM_KEEP = 4
#: envconfig/config.go OLLAMA_CONTEXT_LENGTH: the default num_ctx on a small machine ("4k/32k/256k based on VRAM").
DEFAULT_NUM_CTX = 4096


@dataclass
class StandInModel:
    """A pulled model: its name as pulled, what /api/show says about it, how long it thinks."""

    name: str
    capabilities: tuple[str, ...] = ("completion",)
    context_length: int = 32768
    family: str = "qwen2"
    thinking_tokens: int = 0


def parse_name(name: str) -> tuple[str, str, str, str]:
    """types/model/name.go ParseName: host, namespace, model, tag, with DefaultName's parts filled in.

    Compared case-insensitively, as server/routes.go getExistingName and Name.EqualFold do.
    """
    tag = ""
    if name.rfind(":") > name.rfind("/"):  # ParseNameBare: "/" is an illegal tag character
        name, _, tag = name.rpartition(":")
    host, namespace = "registry.ollama.ai", "library"
    rest, _, model = name.rpartition("/")
    if rest:
        host_part, _, namespace = rest.rpartition("/")
        if host_part:
            host = host_part.partition("://")[2] or host_part
    return (host.lower(), namespace.lower(), model.lower(), (tag or "latest").lower())


def display_shortest(name: str) -> str:
    """types/model/name.go DisplayShortest: default host and namespace left out, tag always shown."""
    host, namespace, model, tag = parse_name(name)
    if host != "registry.ollama.ai":
        return f"{host}/{namespace}/{model}:{tag}"
    if namespace != "library":
        return f"{namespace}/{model}:{tag}"
    return f"{model}:{tag}"


_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_parse_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds; raises ValueError with Go's message."""
    orig, s, sign = text, text, 1.0
    if s[:1] in "-+" and s:
        sign, s = (-1.0 if s[0] == "-" else 1.0), s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f'time: invalid duration "{orig}"')
    total = 0.0
    while s:
        m = re.match(r"(\d*)(\.(\d*))?", s)
        if not s[0].isdigit() and s[0] != ".":
            raise ValueError(f'time: invalid duration "{orig}"')
        pre, post = m.group(1), m.group(3) or ""
        if not pre and not post:
            raise ValueError(f'time: invalid duration "{orig}"')
        s = s[m.end():]
        u = re.match(r"[^0-9.]*", s).group(0)
        if not u:
            raise ValueError(f'time: missing unit in duration "{orig}"')
        if u not in _UNITS:
            raise ValueError(f'time: unknown unit "{u}" in duration "{orig}"')
        s = s[len(u):]
        total += float(f"{pre or 0}.{post or 0}") * _UNITS[u]
    return sign * total


def keep_alive_seconds(value: object) -> float:
    """api/types.go Duration.UnmarshalJSON: a number is seconds, a string a Go duration; negative: forever."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"Unsupported type: '{type(value).__name__}'")
    seconds = float(value) if not isinstance(value, str) else go_parse_duration(value)
    return float("inf") if seconds < 0 else seconds


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class OllamaStandIn:
    """Serve on 127.0.0.1:<port>. ``reply(body) -> str`` makes the assistant's text.

    Switches for the behaviours tests exercise: ``models`` (pulled: names or StandInModel),
    ``die_after`` (cut the connection after that many chunks), ``error_after`` (send an
    ``{"error": ...}`` line after that many chunks), ``busy`` (503), ``delay_s``, ``load_s``
    (a model load takes this long), ``truncation`` ("llama-server": Ollama now; "runner":
    the Go runners before 0.30), ``context_shift`` (False: too-long prompts get 400),
    ``prompt_count_omits_cache`` (Ollama 0.30.x), ``token_factor`` (the model's tokenizer
    makes this many tokens per cl100k token, a whole number), ``old_show`` (/api/show as
    servers before 0.6.4 answered it: no capabilities, no model_info). ``loads`` and ``truncated`` record what happened.
    """

    def __init__(self, reply: Callable[[dict], str] | None = None, models: tuple = ("qwen2.5:7b-instruct",)):
        self.reply = reply or (lambda body: "Stand-in answer [1].")
        self.models: list = list(models)
        self.requests: list[tuple[str, dict]] = []
        self.die_after: int | None = None
        self.error_after: int | None = None
        self.error_text = "an error was encountered while running the model: unexpected EOF"
        self.busy = False
        self.delay_s = 0.0
        self.load_s = 0.0
        self.truncation = "llama-server"
        self.context_shift = True
        self.prompt_count_omits_cache = False
        self.token_factor = 1
        self.old_show = False
        self.loads: list[tuple[str, int]] = []
        self.truncated: list[tuple[int, int]] = []
        self.prompt_counts: list[int] = []
        self.loaded: dict[tuple, dict] = {}
        self._cache: dict[tuple, list[int]] = {}
        self._server: ThreadingHTTPServer | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def find(self, name: str) -> StandInModel | None:
        """The pulled model ``name`` means (server/routes.go getExistingName: case-insensitive, defaults filled)."""
        key = parse_name(name or "")
        for m in self.models:
            model = m if isinstance(m, StandInModel) else StandInModel(m)
            if parse_name(model.name) == key:
                return model
        return None

    # -- the model's side ---------------------------------------------------------------

    def _prompt_tokens(self, messages: list[dict]) -> list[int]:
        """The chat template rendered (ChatML, as qwen2's: <|im_start|> and <|im_end|> are one token each)
        and tokenized with cl100k; ``token_factor`` repeats each token, like a finer tokenizer."""
        start, end = 151644, 151645  # qwen2's ids for <|im_start|> and <|im_end|>
        tokens: list[int] = []
        for m in messages:
            tokens += [start, *encode(f"{m.get('role')}\n{m.get('content', '')}"), end, *encode("\n")]
        tokens += [start, *encode("assistant\n")]
        return [t for t in tokens for _ in range(self.token_factor)]
        return tokens

    def _fit(self, tokens: list[int], num_ctx: int) -> int | None:
        """How many prompt tokens the runner keeps (None: refused). Copies the truncation of long prompts."""
        if self.truncation == "runner":
            # runner/ollamarunner/runner.go NewSequence (before 9db4bdbad): keep num_keep, drop the
            # middle, exactly num_ctx tokens are left.
            if len(tokens) <= num_ctx:
                return len(tokens)
            return num_ctx if self.context_shift else None
        # llm/llama_server.go completionPromptForRequest + contextShiftPromptLimit (now).
        if len(tokens) <= num_ctx - 1:
            return len(tokens)
        if not self.context_shift:
            return None
        keep = min(NUM_KEEP + 1, num_ctx - 1)  # +1: the tokenizer adds BOS
        return num_ctx - max((num_ctx - keep) // 2, 1)

    def start(self, port: int = 0) -> OllamaStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                return None

            def _json(self, status: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                standin.requests.append((self.path, {}))
                if self.path == "/api/tags":
                    # server/routes.go ListHandler: names with their tag spelled out ("llama3:latest").
                    names = [display_shortest(m if isinstance(m, str) else m.name) for m in standin.models]
                    self._json(200, {"models": [
                        {"name": n, "model": n, "modified_at": _now(), "size": 1, "digest": "0" * 64,
                         "details": {"format": "gguf", "family": "qwen2"}} for n in names]})
                elif self.path == "/api/ps":
                    # server/routes.go PsHandler: loaded models, their expiry and context length.
                    now = datetime.now(timezone.utc)
                    for key, entry in list(standin.loaded.items()):
                        if entry["until"] <= now:
                            del standin.loaded[key]
                    self._json(200, {"models": [
                        {"name": e["name"], "model": e["name"], "size": 1, "size_vram": 1, "digest": "0" * 64,
                         "details": {"format": "gguf"}, "expires_at": e["until"].isoformat().replace("+00:00", "Z"),
                         "context_length": e["num_ctx"]} for e in standin.loaded.values()]})
                elif self.path == "/api/version":
                    self._json(200, {"version": "0.0.0-standin"})
                else:
                    self._json(404, {"error": "404 page not found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError as err:
                    self._json(400, {"error": str(err)})
                    return
                standin.requests.append((self.path, body))
                if self.path == "/api/show":
                    self._show(body)
                elif self.path == "/api/chat":
                    self._chat(body)
                else:
                    self._json(404, {"error": "404 page not found"})

            def _model(self, name: str):
                """The served model called ``name``, or None after answering 400 (no name) or 404."""
                if not name:
                    self._json(400, {"error": "model is required"})
                    return None
                model = standin.find(name)
                if model is None:
                    self._json(404, {"error": f"model '{name}' not found"})
                return model

            def _show(self, body: dict) -> None:
                # server/routes.go ShowHandler and GetModelInfo.
                model = self._model(body.get("model") or body.get("name"))
                if model is None:
                    return
                shown = {
                    "license": "", "modelfile": "", "parameters": "", "template": "{{ .Prompt }}",
                    "details": {"format": "gguf", "family": model.family, "families": [model.family]},
                    "model_info": {"general.architecture": model.family,
                                   f"{model.family}.context_length": model.context_length},
                    "capabilities": list(model.capabilities), "modified_at": _now(),
                }
                if standin.old_show:
                    # capabilities came with e172f09 (0.6.4); before e98b5e8 (0.14.x) an empty
                    # model_info was left out of the JSON (omitempty)
                    del shown["capabilities"], shown["model_info"]
                self._json(200, shown)

            def _chat(self, body: dict) -> None:
                # server/routes.go ChatHandler, in its order of checks.
                keep_alive = 300.0  # api/types.go Duration.UnmarshalJSON: 5 minutes unless given
                if "keep_alive" in body:
                    try:
                        keep_alive = keep_alive_seconds(body["keep_alive"])
                    except ValueError as err:  # c.ShouldBindJSON fails: 400 with the error's text
                        self._json(400, {"error": str(err)})
                        return
                name = body.get("model", "")
                model = self._model(name)
                if model is None:
                    return
                key = parse_name(model.name)
                messages = body.get("messages") or []
                if not messages and "keep_alive" in body and keep_alive == 0:
                    standin.loaded.pop(key, None)  # expire the runner
                    self._json(200, self._base(name, done=True, done_reason="unload"))
                    return
                think = body.get("think")
                thinking = "thinking" in model.capabilities
                if thinking and think is None:
                    think = True  # thinking models think unless told not to
                elif not thinking and think:
                    self._json(400, {"error": f'"{name}" does not support thinking'})
                    return
                if standin.busy:  # scheduleRunner -> handleScheduleError(ErrMaxQueue)
                    self._json(503, {"error": BUSY})
                    return
                options = body.get("options") or {}
                # llm/server.go: "requested context size too large for model" -> trained context.
                num_ctx = min(int(options.get("num_ctx") or DEFAULT_NUM_CTX), model.context_length)
                load_s = 0.0
                entry = standin.loaded.get(key)
                if entry is None or entry["num_ctx"] != num_ctx:  # server/sched.go needsReload
                    standin.loads.append((display_shortest(model.name), num_ctx))
                    time.sleep(standin.load_s)
                    load_s = standin.load_s
                until = datetime.now(timezone.utc) + (
                    timedelta(days=3650) if keep_alive == float("inf") else timedelta(seconds=keep_alive))
                standin.loaded[key] = {"name": display_shortest(model.name), "num_ctx": num_ctx, "until": until}
                if keep_alive == 0:
                    standin.loaded.pop(key, None)
                if not messages:
                    loaded = self._base(name, done=True, done_reason="load")
                    self._json(200, {**loaded, "load_duration": int(load_s * 1e9)})
                    return
                fmt = body.get("format")
                if fmt not in (None, "", "json") and not isinstance(fmt, dict):
                    # llm/llama_server.go: "invalid format"; sent without a status, so 500 (writeChatResponse)
                    self._json(500, {"error": f'invalid format: {json.dumps(json.dumps(fmt))}; '
                                              'expected "json" or a valid JSON Schema object'})
                    return
                tokens = standin._prompt_tokens(messages)
                kept = standin._fit(tokens, num_ctx)
                if kept is None:  # StatusError 400 before any content was written
                    self._json(400, {"error": TOO_LONG})
                    return
                if kept < len(tokens):
                    standin.truncated.append((len(tokens), kept))
                previous = standin._cache.get(key, [])
                cached = 0
                for a, b in zip(previous, tokens[:kept]):
                    if a != b:
                        break
                    cached += 1
                standin._cache[key] = tokens[:kept]
                # llm/llama_server.go promptEvalCount: cache_n + prompt_n (since 35fa277, June 2026);
                # Ollama 0.30.x reported prompt_n alone, leaving the cached prefix out.
                prompt_count = kept - cached if standin.prompt_count_omits_cache else kept
                standin.prompt_counts.append(prompt_count)
                if standin.delay_s:
                    time.sleep(standin.delay_s)
                budget = int(options.get("num_predict") or -1)
                budget = 10**9 if budget < 0 else budget
                thought = min(model.thinking_tokens, budget) if think else 0
                words = [w for w in standin.reply(body).split(" ")][: max(budget - thought, 0)]
                reason = "length" if thought + len(words) >= budget else "stop"
                pieces = [("thinking", "Let me think. " * 1)] * (1 if thought else 0)
                pieces += [("content", w if i == 0 else " " + w) for i, w in enumerate(words)]
                done = {
                    **self._base(name, done=True, done_reason=reason),
                    "total_duration": int((0.8 + load_s) * 1e9), "load_duration": int(load_s * 1e9),
                    "prompt_eval_count": prompt_count, "prompt_eval_duration": 210_000_000,
                    "eval_count": thought + len(words), "eval_duration": 500_000_000,
                }
                if not body.get("stream", True):
                    done["message"]["content"] = "".join(p for kind, p in pieces if kind == "content")
                    if thought:  # writeChatResponse gathers the thinking apart from the content
                        done["message"]["thinking"] = "".join(p for kind, p in pieces if kind == "thinking")
                    self._json(200, done)
                    return
                self._stream(name, pieces, done)

            def _base(self, name: str, *, done: bool, done_reason: str = "") -> dict:
                out = {"model": name, "created_at": _now(), "message": {"role": "assistant", "content": ""},
                       "done": done}
                if done_reason:
                    out["done_reason"] = done_reason
                return out

            def _stream(self, name: str, pieces: list[tuple[str, str]], done: dict) -> None:
                # server/routes.go streamResponse: one JSON object per line; after content, an
                # error is one {"error": ...} line and the stream ends (status stays 200).
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                last = pieces.pop() if pieces and pieces[-1][0] == "content" else None
                for i, (kind, piece) in enumerate(pieces):
                    if standin.die_after is not None and i >= standin.die_after:
                        self.wfile.flush()
                        self.connection.shutdown(2)  # the server dies mid-answer
                        self.close_connection = True
                        return
                    if standin.error_after is not None and i >= standin.error_after:
                        self._chunk(json.dumps({"error": standin.error_text}) + "\n")
                        self.wfile.write(b"0\r\n\r\n")
                        return
                    part = self._base(name, done=False)
                    part["message"][kind] = piece
                    self._chunk(json.dumps(part) + "\n")
                if last is not None:  # llama-server's last piece arrives with done=true
                    done["message"]["content"] = last[1]
                self._chunk(json.dumps(done) + "\n")
                self.wfile.write(b"0\r\n\r\n")

            def _chunk(self, text: str) -> None:
                data = text.encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                return None  # a connection we cut on purpose (die_after) is not an error here

        self._server = Server(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def chats(self) -> list[dict]:
        """Chat requests with messages (preloads left out)."""
        return [body for path, body in self.requests if path == "/api/chat" and body.get("messages")]
