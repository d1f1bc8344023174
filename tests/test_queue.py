"""Readers waiting for the model: served in arrival order, each told its place in line (issue 27)."""

from __future__ import annotations

import json
import threading
import time

import httpx

from paperchat.ui.admission import Busy, Gate

from .fakes import SlowLLM
from .test_security import API, Q


def test_the_line_is_served_in_arrival_order_with_places_and_estimates():
    gate = Gate(concurrency=1, max_queue=3)
    first = gate.turn().__enter__()
    assert first.ready() and first.place() is None  # a free slot: no wait
    with gate.turn() as second, gate.turn() as third:
        assert (second.place().position, third.place().position) == (1, 2)
        assert third.place().estimate_s > second.place().estimate_s > 0
        assert not third.ready() and not second.ready()  # the slot is held
        try:
            with gate.turn():
                raise AssertionError("a fourth reader got a queue place beyond max_queue")
        except Busy:
            pass
        first.__exit__(None, None, None)  # the running answer ends
        assert not third.ready(), "the later reader jumped the line"
        assert second.ready() and third.place().position == 1
    assert gate.waiting == 0 and gate.slots._value == 1 and not gate._line


def test_the_estimate_follows_the_answers_timed():
    gate = Gate(concurrency=2, max_queue=10)
    for _ in range(30):
        gate.timed(4.0)
    assert abs(gate.mean_answer_s - 4.0) < 0.1
    with gate.turn() as a, gate.turn() as b:
        assert a.ready() and b.ready()  # two slots
        with gate.turn() as c, gate.turn() as d, gate.turn() as e:
            # two answers run at a time: the first two waiting start after one round, the fifth after two
            assert [t.place().estimate_s for t in (c, d, e)] == [4.0, 4.0, 8.0]
            assert "number 3 in line" in e.place().sentence()


def _events(url: str, out: list, stop: threading.Event, read_timeout: float = 60):
    """Read one answer stream into ``out`` until it ends, ``stop`` is set, or no line comes for ``read_timeout``
    seconds (then the connection is dropped, as a reader closing the tab)."""
    timeout = httpx.Timeout(60, read=read_timeout)
    try:
        with httpx.Client(timeout=timeout) as client, client.stream("POST", f"{url}{API}/ask/stream", json=Q) as r:
            for line in r.iter_lines():
                out.append(json.loads(line))
                if stop.is_set() or out[-1]["type"] in ("answer", "error"):
                    break
    except httpx.ReadTimeout:
        pass


def _reader(url: str, read_timeout: float = 60) -> tuple[list, threading.Event]:
    events, stop = [], threading.Event()
    threading.Thread(target=_events, args=(url, events, stop, read_timeout), daemon=True).start()
    deadline = time.monotonic() + 10
    while not events and time.monotonic() < deadline:  # one at a time, so their order in line is known
        time.sleep(0.02)
    return events, stop


def _wait_for(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_waiting_stream_is_told_its_place_and_a_dropped_reader_moves_the_line_up(start):
    url, app = start(max_queue=5, llm=SlowLLM(words=2000, delay=0.01))
    running, stop_running = _reader(url)
    second, _ = _reader(url, read_timeout=1.5)  # gives up after 1.5 s without news
    third, stop_third = _reader(url)
    assert running[0]["type"] == "status"
    assert second[0]["type"] == "queued" and second[0]["position"] == 1
    assert third[0]["type"] == "queued" and third[0]["position"] == 2 and third[0]["estimate_s"] > 0
    assert "number 2 in line" in third[0]["message"]
    # the second reader drops while waiting: the third moves up at once, while the first answer still runs
    _wait_for(lambda: len(third) > 1)
    assert third[1]["type"] == "queued" and third[1]["position"] == 1, third[:2]
    assert not any(e["type"] == "answer" for e in running)
    stop_running.set()  # the first reader drops its answer: the third is served
    _wait_for(lambda: any(e["type"] == "status" for e in third))
    assert any(e["type"] == "status" for e in third), third[-3:]
    assert not any(e["type"] == "status" for e in second)
    stop_third.set()
    _wait_for(lambda: app.state.gate.waiting == 0 and app.state.gate.slots._value == 1)
    assert app.state.gate.waiting == 0 and not app.state.gate._line


def test_the_chat_shows_a_waiting_reader_its_place(shared_index):
    from paperchat.rag.pipeline import Pipeline
    from paperchat.rag.retrieval import Retriever
    from paperchat.ui.app import Handlers

    from .fakes import ScriptedLLM, copying_reply

    gate = Gate(concurrency=1, max_queue=5)
    retriever = Retriever(shared_index)
    handlers = Handlers(Pipeline(shared_index.settings, retriever, ScriptedLLM(copying_reply)), retriever, gate)
    outputs = []
    api_answer = gate.turn().__enter__()  # an API reader's answer holds the one slot
    assert api_answer.ready()
    chat = threading.Thread(target=lambda: outputs.extend(handlers.respond("What does SPELL propose?", [], [])))
    chat.start()
    _wait_for(lambda: any("in line" in str(o[0][-1]["content"]) for o in outputs), 10)
    waiting = [o[0][-1]["content"] for o in outputs]
    assert any("number 1 in line" in w for w in waiting), waiting
    api_answer.__exit__(None, None, None)
    chat.join(30)
    assert not chat.is_alive()
    assert "SPELL" in outputs[-1][0][-1]["content"] and "in line" not in outputs[-1][0][-1]["content"]
    assert gate.slots._value == 1 and not gate._line
