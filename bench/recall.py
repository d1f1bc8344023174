"""Retrieval recall of the two embedders side by side, on every question set's answerable rows over the seeds.

The figure that decides which embedder is the default: the fast one is worth it only where it keeps recall.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def question_rows() -> list[dict]:
    """Every answerable single-turn row with its papers, from each ``eval/*.jsonl`` set."""
    rows = []
    for path in sorted((ROOT / "eval").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            if row.get("answerable", True) and row.get("papers") and not row.get("history"):
                rows.append(row)
    return rows


def bench_recall(out: dict, embedders: tuple[str, ...] = ("minilm", "wordllama")) -> None:
    """recall@1 and @5 (hybrid and dense) and seed ingest time for each embedder, in one run."""
    from paperchat.eval.metrics import recall_at
    from paperchat.rag.corpus import load_papers
    from paperchat.rag.embeddings import default_embedder
    from paperchat.rag.services import build_index, build_retriever, settings_from_env

    rows = question_rows()
    result: dict = {"questions": len(rows), "embedders": []}
    for name in embedders:
        with tempfile.TemporaryDirectory() as tmp:
            settings = settings_from_env(tmp)
            index = build_index(settings, default_embedder(name))
            started = time.perf_counter()
            index.ingest(load_papers([settings.seeds_dir]))
            entry = {"embedder": name, "seed_ingest_s": round(time.perf_counter() - started, 2)}
            retriever = build_retriever(index=index)
            for mode in ("hybrid", "dense"):
                hits = [[h.paper.title for h in retriever.search(r["question"], k=5, mode=mode)] for r in rows]
                for k in (1, 5):
                    scores = [recall_at(found, r["papers"], k) for found, r in zip(hits, rows)]
                    entry[f"{mode}_recall@{k}"] = round(sum(scores) / len(scores), 3)
            result["embedders"].append(entry)
            print("recall:", entry, flush=True)
    out["recall"] = result


def markdown(r: dict) -> list[str]:
    lines = [
        f"## Embedders side by side: retrieval recall on {r['questions']} answerable questions of every set (seeds)",
        "",
        "| embedder | hybrid recall@1 | hybrid recall@5 | dense recall@1 | dense recall@5 | seed ingest s |",
        "|---|---|---|---|---|---|",
    ]
    for e in r["embedders"]:
        lines.append(
            f"| {e['embedder']} | {e['hybrid_recall@1']} | {e['hybrid_recall@5']} | {e['dense_recall@1']} | "
            f"{e['dense_recall@5']} | {e['seed_ingest_s']} |"
        )
    return [*lines, ""]
