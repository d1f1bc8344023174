"""Serve a GGUF with llama.cpp's own HTTP server (``llama-server``), run in-process by xllamacpp, on loopback.

For trying the ``openai`` backend without installing anything: it serves paperchat's embedded model
(or ``--gguf``) with the embedded backend's threads and context, so answers can be compared.

    python scripts/llama_server.py --port 8080 &
    PAPERCHAT_MODEL__BACKEND=openai PAPERCHAT_OPENAI__BASE_URL=http://127.0.0.1:8080/v1 paperchat ask "…"

Runs until interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--gguf", help="model file (default: the embedded model paperchat's settings choose)")
    parser.add_argument("--api-key", help="require this bearer key")
    parser.add_argument("--parallel", type=int, default=1, help="requests served at once (llama.cpp slots)")
    args = parser.parse_args()

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the embedded backend: idle threads sleep
    import xllamacpp

    from paperchat.rag.embedded import resolve_model
    from paperchat.rag.settings import Settings

    settings = Settings()
    gguf = args.gguf or str(resolve_model(settings)[0])
    params = xllamacpp.CommonParams()
    params.model.path = gguf
    params.n_ctx = settings.embedded.n_ctx * args.parallel  # each slot gets the embedded model's context
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = settings.embedded.generation_threads
    params.cpuparams_batch.n_threads = settings.embedded.threads
    params.cache_ram_mib = 512
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    params.endpoint_metrics = True
    if args.api_key:
        params.api_keys = [args.api_key]
    server = xllamacpp.Server(params)
    server.handle_metrics()  # returns once the task loop runs, so a stop is seen
    print(f"llama.cpp server for {gguf} at {server.listening_address}/v1", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    del server


if __name__ == "__main__":
    main()
