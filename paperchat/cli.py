"""The ``paperchat`` command line: one subcommand per task, errors as sentences."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import threading
import time
import typing
from collections.abc import Callable, Sequence
from pathlib import Path

from paperchat.rag.errors import PaperchatError
from paperchat.rag.settings import ModelSettings

#: the ``model.backend`` values, from the setting itself (``--backend`` offers the same)
BACKEND_NAMES = list(typing.get_args(ModelSettings.model_fields["backend"].annotation))

log = logging.getLogger("paperchat")


def _settings(args: argparse.Namespace):
    from paperchat.rag.services import settings_from_env

    return settings_from_env(getattr(args, "data_dir", None))


def _progress_bar() -> Callable[[str, int, int], None]:
    """A tqdm bar per ingest stage, written to stderr."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}
    labels = {"copy": "copying index", "embed": "embedding chunks", "bm25": "keyword index"}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=labels.get(stage, stage), unit="chunk", file=sys.stderr)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def cmd_ingest(args: argparse.Namespace) -> int:
    from paperchat.rag.corpus import load_papers
    from paperchat.rag.services import build_index

    settings = _settings(args)
    paths = [Path(p) for p in args.paths] or [settings.seeds_dir]
    papers = load_papers(paths)
    print(f"read {len(papers)} papers from {', '.join(map(str, paths))}", file=sys.stderr)
    index = build_index(settings)
    try:
        report = index.ingest(papers, rebuild=args.rebuild, replace=args.replace, progress=_progress_bar())
    except KeyboardInterrupt:
        print("\npaperchat: ingest stopped; the index in service is unchanged and the chunks stored so far are kept: "
              "run the same command again to go on from where it stopped.", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(report.__dict__, indent=2))
    elif report.skipped_reason:
        print(f"nothing to do: {report.skipped_reason} ({report.papers_total} papers, {report.chunks_total} chunks).")
    else:
        how = "rebuilt" if report.rebuilt else "updated"
        resumed = f" ({report.resumed} kept from the stopped ingest it resumed)" if report.resumed else ""
        print(
            f"index {how}: {report.papers_total} papers ({report.papers_added} new), "
            f"{report.chunks_total} chunks{resumed}, in {report.seconds:.1f} s -> {index.place.description}"
        )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from paperchat.rag.services import build_retriever
    from paperchat.rag.question import check_question

    settings = _settings(args)
    query = check_question(args.question, settings.answer.max_question_chars)
    retriever = build_retriever(settings)
    started = time.perf_counter()
    hits = retriever.search(query, k=args.k, mode=args.mode)
    elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps([h.to_json() for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("no paper matches that question.")
    for rank, hit in enumerate(hits, start=1):
        meta = ", ".join(x for x in (hit.paper.date, f"{hit.paper.authors} authors" if hit.paper.authors else None) if x)
        print(f"{rank}. {hit.paper.title}" + (f"  ({meta})" if meta else ""))
        print(f"   score {hit.score:.4f}   {hit.chunk[:160]}…")
    print(f"({elapsed * 1000:.0f} ms)", file=sys.stderr)
    return 0


def cmd_papers(args: argparse.Namespace) -> int:
    from paperchat.rag.services import build_index

    papers = build_index(_settings(args)).papers()
    if args.json:
        print(json.dumps([p.model_dump() for p in papers], indent=2, ensure_ascii=False))
    else:
        for p in papers:
            print(f"- {p.title}" + (f" ({p.date})" if p.date else ""))
        print(f"{len(papers)} papers", file=sys.stderr)
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from paperchat.rag.answer import Done, Status, Token
    from paperchat.rag.question import check_question
    from paperchat.rag.services import build_pipeline, build_retriever

    settings = _settings(args)
    check_question(args.question, settings.answer.max_question_chars)  # before loading any model
    if args.backend:
        settings.model.backend = args.backend
    if args.no_critique:
        settings.answer.critique = False
    retriever = build_retriever(settings)
    retriever.snapshot()  # a missing or unusable index is said before the model loads
    pipeline = build_pipeline(settings, retriever=retriever)
    answer = None
    streamed = False
    for event in pipeline.run(args.question):
        if isinstance(event, Status) and not args.json:
            print(f"[{event.message}]", file=sys.stderr, flush=True)
        elif isinstance(event, Token) and not args.json:
            if not streamed:
                print("draft: ", end="", flush=True)
                streamed = True
            print(event.text, end="", flush=True)
        elif isinstance(event, Done):
            answer = event.answer
    assert answer is not None
    if args.json:
        print(answer.model_dump_json(indent=2))
        return 0
    if streamed:
        print("\n")
    print(f"answer ({answer.verdict}): {answer.answer}")
    for c in answer.citations:
        print(f"  [{c.n}] {c.title}" + (f" ({c.date})" if c.date else ""))
        for sentence in c.supporting:
            print(f"      \u201c{sentence}\u201d")
    removed = [cl for cl in answer.claims if cl.verdict == "unsupported"]
    for cl in removed:
        print(f"  removed: {cl.text}  ({'; '.join(cl.reasons)})")
    t = answer.timings
    print(
        f"({answer.backend}: {answer.model}; first token {t.first_token or 0:.1f} s, total {t.total:.1f} s)",
        file=sys.stderr,
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from paperchat.eval.runner import main as eval_main

    return eval_main(args)


def cmd_doctor(args: argparse.Namespace) -> int:
    from paperchat.rag.doctor import report

    text, healthy = report(_settings(args))
    print(text)
    return 0 if healthy else 1


def _token(args: argparse.Namespace) -> str | None:
    """The API token of ``--token-file`` (first line) or ``--token`` (warned: other users see it in the process list)."""
    from paperchat.rag.errors import ConfigError

    if getattr(args, "token_file", None):
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, UnicodeDecodeError, IndexError):
            raise ConfigError(f"Cannot read a token from {args.token_file}: put the token on its first line.") from None
        if not token:
            raise ConfigError(f"{args.token_file} has an empty first line: put the token there.")
        return token
    if getattr(args, "token", None):
        log.warning("--token is visible to every user of this machine in the process list: "
                    "prefer --token-file or PAPERCHAT_SERVER__API_TOKEN.")
    return getattr(args, "token", None)


def cmd_serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from paperchat.rag.services import build_service, config_error
    from paperchat.ui.server import bind, serve

    settings = _settings(args)
    try:
        for name in ("host", "port", "root_path"):
            value = getattr(args, name, None)
            if value is not None:
                setattr(settings.server, name, value)
        token = _token(args)
        if token:
            settings.server.api_token = token
    except ValidationError as err:
        raise config_error(err, option=True) from None
    bind(settings.server.host, settings.server.port).close()  # a port in use is said now, not after loading the model
    service = build_service(settings, progress=_progress_bar(), note=lambda m: print(m, file=sys.stderr, flush=True))
    serve(settings, service.pipeline, service.retriever)
    return 0


def cmd_embed_snippet(args: argparse.Namespace) -> int:
    from paperchat.ui.embed import snippet

    from paperchat.rag.errors import ConfigError
    from paperchat.rag.settings import normalize_origin

    settings = _settings(args)
    token = _token(args) or settings.server.api_token
    origin = None
    if token:
        if not args.origin:
            raise ConfigError(
                "The snippet needs the wiki's origin: pass --origin https://wiki.example.org "
                "(it must also be in PAPERCHAT_SERVER__ALLOWED_ORIGINS)."
            )
        try:
            origin = normalize_origin(args.origin)
        except ValueError as err:
            raise ConfigError(f"--origin: {err}.") from None
        if settings.server.allowed_origins and origin not in settings.server.allowed_origins:
            log.warning("%s is not in PAPERCHAT_SERVER__ALLOWED_ORIGINS: the server will refuse to be framed by it.", origin)
    print(snippet(args.url, token=token, origin=origin, days=settings.server.embed_token_days, height=args.height))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paperchat",
        description="Ask questions about research papers; answers cite the abstracts and are self-checked.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--data-dir", help="where the index lives (default: $PAPERCHAT_DATA_DIR or the user data dir)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ingest", help="index paper files (default: the bundled seeds)")
    p.add_argument("paths", nargs="*", help=".txt listings, .jsonl files, or folders of them")
    p.add_argument("--rebuild", action="store_true", help="re-embed everything instead of adding what is new")
    p.add_argument("--replace", action="store_true", help="make the index hold exactly these papers")
    p.add_argument("--json", action="store_true", help="print the ingest report as JSON")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", help="find the papers that match a question")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help="papers to return (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default=None)
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question with citations and a self-critique verdict")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the whole answer record as JSON")
    p.add_argument("--backend", choices=BACKEND_NAMES, help="override PAPERCHAT_MODEL__BACKEND")
    p.add_argument("--no-critique", action="store_true", help="skip the self-critique pass")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="score pipelines on a question set (JSONL or CSV)")
    p.add_argument("questions", help="question set, e.g. eval/questions.jsonl")
    p.add_argument("--out", default="out/eval", help="folder for results.jsonl, summary.json, report.md/html")
    p.add_argument("--pipelines", default="paperchat,no-critique,baseline", help="comma-separated pipelines")
    p.add_argument("--limit", type=int, default=0, help="only the first N questions")
    p.add_argument("--redraft-no-critique", action="store_true", help="draft no-critique again instead of scoring paperchat's own draft")
    p.add_argument("--fail-under", action="append", metavar="METRIC=VALUE", help="exit 1 if paperchat's metric is lower")
    p.add_argument("--no-planted", action="store_true", help="skip the planted-error critique test")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("serve", help="run the web chat and the HTTP API")
    p.add_argument("--host", help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--root-path", dest="root_path", help="sub-path behind a reverse proxy, e.g. /paperchat")
    p.add_argument("--token-file", dest="token_file", help="require the API token on this file's first line")
    p.add_argument("--token", help="require this API token (visible in the process list: prefer --token-file or "
                   "PAPERCHAT_SERVER__API_TOKEN)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("embed-snippet", help="print HTML to embed the chat in a wiki page")
    p.add_argument("--url", default="http://127.0.0.1:7860", help="public address of the paperchat server")
    p.add_argument("--token-file", dest="token_file", help="a file whose first line is the server's API token")
    p.add_argument("--token", help="the server's API token, used to sign the embed credential (default: the configured one); never printed")
    p.add_argument("--origin", help="the wiki's origin, e.g. https://wiki.example.org: the embed credential works only there")
    p.add_argument("--height", type=int, default=620, help="iframe height in pixels")
    p.set_defaults(func=cmd_embed_snippet)

    p = sub.add_parser("doctor", help="check the model backend, weights and index, and say what to fix")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("papers", help="list the indexed papers")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_papers)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a record is logged, not as it was when logging was set up (a program
    that calls :func:`main` and later swaps or closes its stderr, as pytest does, gets no "--- Logging error ---")."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if verbosity < 2:  # libraries' chatter only with -vv
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.name.split(".")[0] in ("paperchat", "rag", "ui", "eval"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``paperchat`` console script."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except PaperchatError as err:
        print(f"paperchat: {err}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("paperchat: interrupted.", file=sys.stderr)
        code = 130
    except Exception as err:  # an unexpected failure: say so plainly, details on request
        if args.verbose:
            raise
        print(
            f"paperchat: unexpected error ({type(err).__name__}: {err}). Run again with -v for details.",
            file=sys.stderr,
        )
        code = 1
    if argv is None:
        _exit_now(code)
    return code


#: Native libraries whose threads can keep a finishing interpreter waiting forever.
_NATIVE = ("xllamacpp", "onnxruntime", "chromadb")


def _exit_now(code: int) -> None:
    """After an error or a model run, end the process (as a program only) without waiting on native threads.

    A loaded llama.cpp / onnxruntime / Chroma leaves threads that interpreter shutdown may wait on
    (a futex wait at 0% CPU); everything the user needs is printed, so flush and leave.
    """
    if (code != 0 and any(name in sys.modules for name in _NATIVE)) or "xllamacpp" in sys.modules:
        # No logging.shutdown(): it takes every handler's lock, and a native thread that is still
        # loading the model can hold one forever (seen: futex waits after the error was printed).
        # Flushing happens in a helper thread so that not even a stuck stream can keep us here.
        def flush() -> None:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()

        flusher = threading.Thread(target=flush, daemon=True)
        flusher.start()
        flusher.join(2.0)
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
