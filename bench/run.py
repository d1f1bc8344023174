"""paperchat benchmarks: ingest, retrieval at scale, answer latency, serve memory and load.

Run ``python -m paperchat.bench.run`` (see ``--help``). Writes ``bench/results.json`` and
``bench/RESULTS.md``. Everything is measured on the machine it runs on; nothing is
asserted. Synthetic corpora are generated from the seed vocabulary with a fixed seed.
Every size is embedded with WordLlama (the fast real embedder, ``index.embedder=wordllama``);
MiniLM (the default, ~40 chunks/s on 2 cores: 100k abstracts would take over an hour) up to
``--real-embed``, and the hashing stand-in up to 10k as a floor. The two real embedders' recall
is compared on every question set (:mod:`bench.recall`).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .recall import bench_recall
from .recall import markdown as recall_markdown

ROOT = Path(__file__).resolve().parent.parent


def pct(values, q):
    return round(float(np.percentile(values, q)), 4) if values else None


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def synthetic_papers(n: int, seed: int = 0):
    """``n`` abstracts built from the seed vocabulary (deterministic)."""
    from paperchat.rag.corpus import Paper, load_papers, paper_id

    seeds = load_papers([ROOT / "seeds"])
    words = [w for p in seeds for w in re.findall(r"[A-Za-z][A-Za-z\-]+", p.abstract)]
    title_words = [w for p in seeds for w in re.findall(r"[A-Za-z][A-Za-z\-]+", p.title)]
    rng = random.Random(seed)
    papers = []
    for i in range(n):
        title = " ".join(rng.choice(title_words) for _ in range(rng.randint(5, 10))).title() + f" {i}"
        sentences = []
        for _ in range(rng.randint(6, 10)):
            s = " ".join(rng.choice(words) for _ in range(rng.randint(12, 26)))
            if rng.random() < 0.3:
                s += f" reaching {rng.randint(1, 99)}.{rng.randint(0, 9)}%"
            sentences.append(s[0].upper() + s[1:] + ".")
        abstract = " ".join(sentences)
        papers.append(Paper(id=paper_id(title, abstract), title=title, abstract=abstract, sources=["synthetic"]))
    return papers


def questions():
    rows = [json.loads(x) for x in (ROOT / "eval" / "questions.jsonl").read_text().splitlines() if x.strip()]
    return rows


def bench_ingest_seeds(out: dict) -> None:
    from paperchat.rag.corpus import load_papers
    from paperchat.rag.embeddings import MiniLMEmbedder
    from paperchat.rag.services import build_index, settings_from_env

    papers = load_papers([ROOT / "seeds"])
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_from_env(tmp)
        embedder = MiniLMEmbedder()
        started = time.perf_counter()
        report = build_index(settings, embedder).ingest(papers)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        build_index(settings, embedder).ingest(papers)
        warm = time.perf_counter() - started
        size = dir_size(settings.index_dir)
    out["ingest_seeds"] = {
        "papers": report.papers_total, "chunks": report.chunks_total, "cold_s": round(cold, 2), "warm_s": round(warm, 3),
        "papers_per_s": round(report.papers_total / cold, 1), "chunks_per_s": round(report.chunks_total / cold, 1),
        "index_bytes": size, "embedder": embedder.name,
    }
    print("ingest seeds:", out["ingest_seeds"], flush=True)


def bench_scale(out: dict, sizes: list[int], real_embed: int, hashing_upto: int = 10_000) -> None:
    from paperchat.rag.embeddings import HashingEmbedder, MiniLMEmbedder, WordLlamaEmbedder
    from paperchat.rag.services import build_index, build_retriever, settings_from_env

    qs = [q["question"] for q in questions()]
    rows = []
    for n in sizes:
        papers = synthetic_papers(n)
        kinds = [("wordllama", WordLlamaEmbedder())] + ([("minilm", MiniLMEmbedder())] if n <= real_embed else [])
        kinds += [("hashing", HashingEmbedder())] if n <= hashing_upto else []
        for kind, embedder in kinds:
            with tempfile.TemporaryDirectory() as tmp:
                settings = settings_from_env(tmp)
                index = build_index(settings, embedder)
                started = time.perf_counter()
                report = index.ingest(papers)
                seconds = time.perf_counter() - started
                row = {
                    "papers": n, "embedder": kind, "ingest_s": round(seconds, 1),
                    "papers_per_s": round(n / seconds, 1), "chunks": report.chunks_total,
                    "chunks_per_s": round(report.chunks_total / seconds, 1), "index_bytes": dir_size(settings.index_dir),
                }
                retriever = build_retriever(index=index)
                started = time.perf_counter()
                retriever.snapshot()
                row["load_s"] = round(time.perf_counter() - started, 2)
                for mode in ("hybrid", "dense", "bm25"):
                    lat = []
                    for q in qs:
                        t = time.perf_counter()
                        retriever.search(q, k=5, mode=mode)
                        lat.append((time.perf_counter() - t) * 1000)
                    row[f"{mode}_p50_ms"] = pct(lat, 50)
                    row[f"{mode}_p95_ms"] = pct(lat, 95)
                rows.append(row)
                print("scale:", row, flush=True)
    out["scale"] = rows


def _seed_index(data_dir: Path) -> None:
    """The seed papers indexed (real MiniLM embedder) under ``data_dir``, for the serve run."""
    from paperchat.rag.corpus import load_papers
    from paperchat.rag.embeddings import MiniLMEmbedder
    from paperchat.rag.services import build_index, settings_from_env

    settings = settings_from_env(data_dir)
    build_index(settings, MiniLMEmbedder()).ingest(load_papers([settings.seeds_dir]))


def bench_answers(out: dict, n_questions: int, data_dir: Path) -> None:
    from paperchat.eval.pipelines import BUILDERS
    from paperchat.rag.corpus import load_papers
    from paperchat.rag.embeddings import MiniLMEmbedder
    from paperchat.rag.services import build_index, build_llm, build_pipeline, build_retriever, settings_from_env

    settings = settings_from_env(data_dir)
    index = build_index(settings, MiniLMEmbedder())
    index.ingest(load_papers([settings.seeds_dir]))
    retriever = build_retriever(index=index)
    started = time.perf_counter()
    llm = build_llm(settings, backend="embedded")  # the benchmark times the embedded model whatever the setting
    load_s = time.perf_counter() - started
    ours = build_pipeline(settings, retriever=retriever, llm=llm)
    base = BUILDERS["baseline"](settings, retriever, llm)
    rows = [q for q in questions()][:n_questions]
    recs = collections.defaultdict(list)
    for q in rows:
        for name, pipe in (("paperchat", ours), ("baseline", base)):
            a = pipe.ask(q["question"])
            recs[name].append(a.timings.model_dump())
    summary = {"model": llm.model, "load_s": round(load_s, 2), "questions": len(rows)}
    for name, ts in recs.items():
        total = [t["total"] for t in ts]
        first = [t["first_token"] for t in ts if t["first_token"] is not None]
        entry = {
            "first_token_p50_s": pct(first, 50), "first_token_p95_s": pct(first, 95),
            "total_p50_s": pct(total, 50), "total_p95_s": pct(total, 95),
        }
        if name == "paperchat":
            draft = [t["draft"] for t in ts]
            crit = [t["critique"] for t in ts]
            retr = [t["retrieval"] for t in ts]
            entry.update(
                retrieval_share=round(sum(retr) / sum(total), 3), draft_share=round(sum(draft) / sum(total), 3),
                critique_share=round(sum(crit) / sum(total), 3),
                critique_to_draft_ratio=round(sum(crit) / sum(draft), 3),
                critique_prompt_tokens=sum(t["critique_prompt_tokens"] for t in ts),
                critique_cached_tokens=sum(t["critique_cached_tokens"] for t in ts),
                draft_prompt_tokens=sum(t["prompt_tokens"] for t in ts),
                tokens_per_s=round(statistics.mean([t["tokens_per_second"] for t in ts if t["tokens_per_second"]] or [0]), 1),
            )
        summary[name] = entry
    base_total = summary["baseline"]["total_p50_s"]
    summary["paperchat_vs_baseline_total_p50"] = round(summary["paperchat"]["total_p50_s"] / base_total, 2) if base_total else None
    out["answers"] = summary
    print("answers:", summary, flush=True)


def _rss_mb(pid: int) -> float:
    total = 0.0
    for p in [pid] + _children(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return round(total, 1)


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(data_dir: Path, port: int, slots: int = 1) -> subprocess.Popen:
    """``paperchat serve`` on the embedded model with ``slots`` answers at once, with limits raised so the load run
    is not rate-limited."""
    env = {**os.environ, "PAPERCHAT_DATA_DIR": str(data_dir), "PAPERCHAT_MODEL__BACKEND": "embedded",
           "PAPERCHAT_SERVER__RATE_LIMIT_PER_MINUTE": "1000", "PAPERCHAT_SERVER__MAX_QUEUE": "64",
           "PAPERCHAT_EMBEDDED__PARALLEL": str(slots), "PAPERCHAT_SERVER__CONCURRENCY": str(slots)}
    exe = Path(sys.executable).with_name("paperchat")
    return subprocess.Popen([str(exe), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 300) -> None:
    """Return once ``/api/v1/health`` answers 200; raise if the server exits or the time runs out."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("paperchat serve did not come up")
        time.sleep(1)


def load_round(url: str, clients: int, qs: list[str], rss=lambda: 0.0) -> dict:
    """``clients`` questions asked at once through ``POST /api/v1/ask``; latency, errors and peak ``rss()``."""
    import httpx

    peak = [0.0]
    stop = [False]

    def sample():
        while not stop[0]:
            peak[0] = max(peak[0], rss())
            time.sleep(0.5)

    def one(i):
        t = time.perf_counter()
        r = httpx.post(f"{url}/api/v1/ask", json={"question": qs[i % len(qs)]}, timeout=1800)
        return r.status_code, time.perf_counter() - t

    sampler = concurrent.futures.ThreadPoolExecutor(1)
    sampler.submit(sample)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        res = list(pool.map(one, range(clients)))
    wall = time.perf_counter() - started
    stop[0] = True
    sampler.shutdown()
    lat = [s for _, s in res]
    return {
        "clients": clients, "requests": len(res), "errors": sum(c != 200 for c, _ in res),
        "wall_s": round(wall, 1), "throughput_per_min": round(60 * len(res) / wall, 2),
        "p50_s": pct(lat, 50), "p95_s": pct(lat, 95), "peak_rss_mb": peak[0],
    }


def bench_serve(out: dict, clients_list: list[int], data_dir: Path, slots_list: list[int] = (1,)) -> None:
    """Memory and answer throughput of a real ``paperchat serve`` under each number of concurrent clients, once per
    number of answer slots (``PAPERCHAT_EMBEDDED__PARALLEL``)."""
    result: dict = {"load": []}
    qs = [q["question"] for q in questions() if q["answerable"]]
    for slots in slots_list:
        port = _free_port()
        proc = _start_server(data_dir, port, slots)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, proc)
            time.sleep(2)
            result.setdefault("idle_rss_mb", _rss_mb(proc.pid))
            for clients in clients_list:
                row = {"slots": slots, **load_round(url, clients, qs, rss=lambda: _rss_mb(proc.pid))}
                result["load"].append(row)
                print("load:", row, flush=True)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    out["serve"] = result


REGENERATE = "python -m paperchat.bench.run"


def _md_ingest(s: dict) -> list[str]:
    return [
        "## Ingest: the seed papers (real MiniLM embedder)",
        "",
        "| papers | chunks | cold s | papers/s | chunks/s | re-ingest s | index size |",
        "|---|---|---|---|---|---|---|",
        f"| {s['papers']} | {s['chunks']} | {s['cold_s']} | {s['papers_per_s']} | {s['chunks_per_s']} | {s['warm_s']} | {s['index_bytes'] / 1e6:.1f} MB |",
        "",
    ]


def _md_scale(rows: list[dict]) -> list[str]:
    lines = [
        "## Scale: synthetic corpora",
        "",
        "| papers | embedder | ingest s | papers/s | chunks/s | index size | load s | hybrid p50/p95 ms | dense p50/p95 ms | bm25 p50/p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['papers']:,} | {r['embedder']} | {r['ingest_s']} | {r['papers_per_s']} | {r['chunks_per_s']} | "
            f"{r['index_bytes'] / 1e6:.1f} MB | {r['load_s']} | {r['hybrid_p50_ms']} / {r['hybrid_p95_ms']} | "
            f"{r['dense_p50_ms']} / {r['dense_p95_ms']} | {r['bm25_p50_ms']} / {r['bm25_p95_ms']} |"
        )
    return [*lines, ""]


def _md_answers(a: dict) -> list[str]:
    p, b = a["paperchat"], a["baseline"]
    return [
        f"## Answers: embedded {a['model']} ({a['questions']} questions; model load {a['load_s']} s)",
        "",
        "| pipeline | first token p50 / p95 s | total p50 / p95 s |",
        "|---|---|---|",
        f"| paperchat | {p['first_token_p50_s']} / {p['first_token_p95_s']} | {p['total_p50_s']} / {p['total_p95_s']} |",
        f"| baseline (llama-index stock) | {b['first_token_p50_s']} / {b['first_token_p95_s']} | {b['total_p50_s']} / {b['total_p95_s']} |",
        "",
        f"paperchat / baseline total time (p50): **{a['paperchat_vs_baseline_total_p50']}x**. Share of paperchat's time: "
        f"retrieval {p['retrieval_share']:.1%}, drafting {p['draft_share']:.1%}, critique {p['critique_share']:.1%}. "
        f"Critique cost as a ratio of the draft's: **{p['critique_to_draft_ratio']}x**; its prompts took "
        f"{p['critique_prompt_tokens']:,} tokens of which {p['critique_cached_tokens']:,} came from the prefix cache. "
        f"Generation speed {p['tokens_per_s']} tokens/s.",
        "",
    ]


def _md_serve(sv: dict) -> list[str]:
    lines = [
        f"## Serving: `paperchat serve` on the embedded model (idle RSS {sv['idle_rss_mb']} MB)",
        "",
        "| answer slots | concurrent clients | requests | errors | wall s | answers/min | p50 s | p95 s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sv["load"]:
        lines.append(
            f"| {r.get('slots', 1)} | {r['clients']} | {r['requests']} | {r['errors']} | {r['wall_s']} | {r['throughput_per_min']} | "
            f"{r['p50_s']} | {r['p95_s']} | {r['peak_rss_mb']} |"
        )
    return [*lines, ""]


def _commit() -> str:
    """The repository's commit (short), or '?' outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


SECTIONS = ("ingest_seeds", "recall", "scale", "answers", "serve")


def carry_over(out: dict, earlier: dict) -> None:
    """Copy into ``out`` the sections of an ``earlier`` run that ``out`` did not measure, each noting that run."""
    for key in SECTIONS:
        if key in out or key not in earlier:
            continue
        out[key] = earlier[key]
        out.setdefault("carried", {})[key] = earlier.get("carried", {}).get(key) or (
            f"{earlier.get('date', '?')}"
            + (f" at commit {earlier['commit']}" if earlier.get("commit") else "")
            + f", `{earlier.get('command', '?')}`"
        )


def markdown(out: dict) -> str:
    """``RESULTS.md`` from a run's ``results.json``: the command that regenerates it, then each measured section."""
    lines = [
        "# paperchat benchmark results",
        "",
        f"Generated by `{REGENERATE}` (from the repository root, on an otherwise idle machine; it writes this file "
        "and `bench/results.json`); do not edit by hand.",
        "",
        f"Machine: {out['machine']}. Command: `{out['command']}`. Date: {out['date']}"
        + (f", commit {out['commit']}." if out.get("commit") else "."),
        "",
    ]
    sections = (("ingest_seeds", _md_ingest), ("recall", recall_markdown), ("scale", _md_scale), ("answers", _md_answers),
                ("serve", _md_serve))
    for key, section in sections:
        if out.get(key):
            lines += section(out[key])
            if key in out.get("carried", {}):
                lines += [f"_Not measured by this command: carried over from the run of {out['carried'][key]}._", ""]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paperchat.bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="synthetic corpus sizes")
    parser.add_argument("--real-embed", type=int, default=1000, help="also embed corpora up to this size with MiniLM")
    parser.add_argument("--questions", type=int, default=10, help="questions for the answer-latency run (0 skips it)")
    parser.add_argument("--load", default="1,4,8,16", help="concurrent clients for the serve load run ('' skips it)")
    parser.add_argument("--slots", default="1", help="answer slots of the embedded model for the serve run, e.g. 1,2")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: ingest,recall,scale,answers,serve")
    parser.add_argument("--out", default=str(ROOT / "bench"), help="folder for results.json and RESULTS.md")
    parser.add_argument("--update", action="store_true", help="keep the sections skipped from the results.json "
                        "already in --out (each marked with the run that measured it) instead of leaving them out")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    out: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": " ".join([REGENERATE, *(argv if argv is not None else sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d"),
        "commit": _commit(),
    }
    work = Path(tempfile.mkdtemp(prefix="paperchat-bench-"))
    try:
        if "ingest" not in skip:
            bench_ingest_seeds(out)
        if "recall" not in skip:
            bench_recall(out)
        if "scale" not in skip and args.sizes:
            bench_scale(out, [int(x) for x in args.sizes.split(",")], args.real_embed)
        if "answers" not in skip and args.questions:
            bench_answers(out, args.questions, work / "answers")
        if "serve" not in skip and args.load:
            if not (work / "answers").exists():  # the answers run did not build the served index: build it here
                _seed_index(work / "answers")
            bench_serve(out, [int(x) for x in args.load.split(",")], work / "answers", [int(x) for x in args.slots.split(",")])
    finally:
        shutil.rmtree(work, ignore_errors=True)
        dest = Path(args.out)
        dest.mkdir(parents=True, exist_ok=True)
        if args.update and (dest / "results.json").exists():
            carry_over(out, json.loads((dest / "results.json").read_text()))
        (dest / "results.json").write_text(json.dumps(out, indent=2))
        (dest / "RESULTS.md").write_text(markdown(out))
        print(f"wrote {dest / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
