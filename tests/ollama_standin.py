"""A local HTTP stand-in for an Ollama server: speaks /api/tags and /api/chat, records requests.

It verifies *our* side of the wire protocol only; it is not Ollama.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OllamaStandIn:
    """Serve on 127.0.0.1:<port>. ``reply(body) -> str`` makes the assistant's text.

    Behaviours for fault tests: ``models`` (what /api/tags lists), ``die_after`` (close the
    stream after that many chunks), ``delay_s`` (sleep before answering).
    """

    def __init__(self, reply: Callable[[dict], str] | None = None, models: tuple[str, ...] = ("qwen2.5:7b-instruct",)):
        self.reply = reply or (lambda body: "Stand-in answer [1].")
        self.models = list(models)
        self.requests: list[tuple[str, dict]] = []
        self.die_after: int | None = None
        self.delay_s = 0.0
        self._server: ThreadingHTTPServer | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> OllamaStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                return None

            def _json(self, status: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                standin.requests.append((self.path, {}))
                if self.path == "/api/tags":
                    self._json(200, {"models": [{"name": m, "model": m, "size": 1} for m in standin.models]})
                elif self.path == "/api/version":
                    self._json(200, {"version": "0.0.0-standin"})
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                standin.requests.append((self.path, body))
                if self.path != "/api/chat":
                    self._json(404, {"error": "not found"})
                    return
                if body.get("model") not in standin.models:
                    self._json(404, {"error": f"model '{body.get('model')}' not found, try pulling it first"})
                    return
                if standin.delay_s:
                    time.sleep(standin.delay_s)
                text = standin.reply(body)
                done = {
                    "model": body["model"], "created_at": "2026-01-01T00:00:00Z", "done": True,
                    "done_reason": "stop", "message": {"role": "assistant", "content": ""},
                    "prompt_eval_count": 42, "prompt_eval_duration": 210_000_000,
                    "eval_count": len(text.split()), "eval_duration": 500_000_000, "total_duration": 800_000_000,
                }
                if not body.get("stream", True):
                    self._json(200, {**done, "message": {"role": "assistant", "content": text}})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                words = text.split(" ")
                for i, word in enumerate(words):
                    if standin.die_after is not None and i >= standin.die_after:
                        self.wfile.flush()
                        self.connection.shutdown(2)  # the server dies mid-answer
                        self.close_connection = True
                        return
                    part = {"model": body["model"], "done": False,
                            "message": {"role": "assistant", "content": word if i == 0 else " " + word}}
                    self._chunk(json.dumps(part) + "\n")
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
        return [body for path, body in self.requests if path == "/api/chat"]
