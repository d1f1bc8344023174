"""Interleaved A/B of one model two ways: the embedded backend, and the openai backend on llama.cpp's server.

Both serve the same GGUF with the same threads and context in this one process; requests alternate
(ABBA…), so load from elsewhere on the machine falls on both alike. Prints p50 total and first-token
seconds, token counts, cached prompt tokens, and how many answers are identical.

    PYTHONPATH=. python scripts/openai_vs_embedded.py [rounds]
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(rounds: int = 5) -> None:
    from paperchat.rag.embedded import EmbeddedLLM, resolve_model
    from paperchat.rag.models import Message, Request
    from paperchat.rag.openai_compat import OpenAICompatLLM
    from paperchat.rag.settings import Settings
    from tests.live import llama_cpp_server

    settings = Settings()
    gguf, _ = resolve_model(settings)
    embedded = EmbeddedLLM.from_settings(settings)
    sources = "Sources:\n" + " ".join(
        f"[{i}] Paper {i} reports that method M{i} improves accuracy by {i * 1.3:.1f} points on benchmark B{i % 7}."
        for i in range(40)
    )
    with llama_cpp_server(gguf, n_ctx=settings.embedded.n_ctx, threads=settings.embedded.threads) as url:
        served = OpenAICompatLLM(url)
        results: dict[str, list] = {"embedded": [], "openai": []}
        for n in range(rounds):
            order = [("embedded", embedded), ("openai", served)]
            for name, llm in order if n % 2 == 0 else order[::-1]:
                question = f"Q{n}: which method improves accuracy by {n * 1.3:.1f} points? Cite the source."
                started = time.perf_counter()
                out = llm.complete(Request([Message("system", "Answer from the sources, briefly."),
                                            Message("user", f"{sources}\n{question}")], max_tokens=48))
                results[name].append((time.perf_counter() - started, out.usage, out.text))
    for name, rows in results.items():
        print(f"{name:9s} total p50 {statistics.median(r[0] for r in rows):.2f} s, first token p50 "
              f"{statistics.median(r[1].first_token_seconds or 0 for r in rows):.2f} s, tokens "
              f"{[r[1].completion_tokens for r in rows]}, cached {[r[1].cached_tokens for r in rows]}")
    same = sum(a[2] == b[2] for a, b in zip(results["embedded"], results["openai"]))
    print(f"identical answers: {same} of {rounds}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
