"""A local HTTP stand-in for an OpenAI-compatible server, copying vLLM where vLLM differs from llama.cpp.

The real llama.cpp server (xllamacpp, in-process) is tested in tests/test_openai_compat.py; this
stand-in covers what that server does not do, as vLLM's source does it (vllm-project/vllm, read
December 2026; no vLLM server was run):

- API key: ``AuthenticationMiddleware`` (entrypoints/openai/api_server.py) answers any ``/v1`` path
  without the right ``Authorization: Bearer`` with 401 ``{"error": "Unauthorized"}``: a string,
  where llama.cpp and OpenAI send an object.
- model: ``_check_model`` answers 404 ``{"error": {"message": "The model `x` does not exist.",
  "type": "NotFoundError", "param": null, "code": 404}}`` (``ErrorResponse``/``ErrorInfo`` in
  entrypoints/openai/engine/protocol.py); llama.cpp answers with its one model whatever the name.
- usage: the last chunk has ``choices: []`` and ``usage``; ``prompt_tokens_details.cached_tokens``
  only with ``--enable-prompt-tokens-details`` (``cached_details`` here); no llama.cpp ``timings``.
- a prompt longer than ``--max-model-len``: 400 "This model's maximum context length is …".
- an error after the stream began: a ``data: {"error": {...}}`` line, then ``data: [DONE]``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _error(message: str, kind: str, code: int) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class OpenAIStandIn:
    """Serves ``/v1/models`` and ``/v1/chat/completions`` (streamed) on 127.0.0.1, recording the bodies."""

    def __init__(self, reply: Callable[[dict], str], models: tuple[str, ...] = ("Qwen/Qwen2.5-7B-Instruct",)):
        self.reply = reply
        self.models = list(models)
        self.api_key: str | None = None
        self.max_model_len = 4096
        self.cached_details = True
        self.delay_s = 0.0
        self.error_after: int | None = None
        self.word_delay_s = 0.0
        #: set when a client went away in the middle of a streamed answer (a write failed)
        self.disconnected = threading.Event()
        self.bodies: list[dict] = []
        self.auth_seen: list[str | None] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self, port: int = 0) -> OpenAIStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                if not standin._authorized(self):
                    return
                if self.path == "/v1/models":
                    cards = [{"id": m, "object": "model", "owned_by": "vllm", "max_model_len": standin.max_model_len}
                             for m in standin.models]
                    return standin._json(self, 200, {"object": "list", "data": cards})
                standin._json(self, 404, {"detail": "Not Found"})

            def do_POST(self):
                if not standin._authorized(self):
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if self.path != "/v1/chat/completions":
                    return standin._json(self, 404, {"detail": "Not Found"})
                standin._chat(self, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        given = handler.headers.get("Authorization")
        self.auth_seen.append(given)
        if self.api_key is not None and handler.path.startswith("/v1") and given != f"Bearer {self.api_key}":
            self._json(handler, 401, {"error": "Unauthorized"})
            return False
        return True

    @staticmethod
    def _json(handler: BaseHTTPRequestHandler, status: int, data: dict) -> None:
        raw = json.dumps(data).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    def _chat(self, handler: BaseHTTPRequestHandler, body: dict) -> None:
        self.bodies.append(body)
        if body.get("model") not in self.models:
            return self._json(handler, 404, _error(f"The model `{body.get('model')}` does not exist.", "NotFoundError", 404))
        prompt = sum(len(m["content"].split()) + 4 for m in body["messages"])
        if prompt + int(body.get("max_tokens") or 0) > self.max_model_len:
            message = (f"This model's maximum context length is {self.max_model_len} tokens. However, you requested "
                       f"{prompt + body['max_tokens']} tokens ({prompt} in the messages, {body['max_tokens']} in the "
                       "completion). Please reduce the length of the messages or completion.")
            return self._json(handler, 400, _error(message, "BadRequestError", 400))
        time.sleep(self.delay_s)
        try:
            self._stream(handler, body, prompt)
        except OSError:  # the client went away (``disconnected`` is set)
            pass

    def _stream(self, handler: BaseHTTPRequestHandler, body: dict, prompt: int) -> None:
        words = self.reply(body).split(" ")
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}

        def send(data: dict | str) -> None:
            try:
                handler.wfile.write(f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode())
                handler.wfile.flush()
            except OSError:  # the client closed the connection: vLLM aborts the request then
                self.disconnected.set()
                raise

        send({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        for i, word in enumerate(words):
            if self.error_after is not None and i == self.error_after:
                send(_error("EngineCore encountered an issue.", "InternalServerError", 500))
                send("[DONE]")
                return
            piece = word if i == 0 else " " + word
            time.sleep(self.word_delay_s)
            send({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        send({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": prompt, "completion_tokens": len(words), "total_tokens": prompt + len(words)}
            usage["prompt_tokens_details"] = {"cached_tokens": prompt // 2} if self.cached_details else None
            send({**base, "choices": [], "usage": usage})
        send("[DONE]")
