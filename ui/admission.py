"""Admission: the answer slots and the line in front of them, shared by the HTTP API and the Gradio chat.

A request waiting for a slot waits on the event loop, never in a worker thread: worker threads
are what a running answer needs for its next token, so a queue longer than the thread pool
cannot starve it (the deadlock of issue 25). Waiting requests are served in arrival order, and
each can be told its place in line and an estimate of the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import threading
import time
from dataclasses import dataclass

#: Seconds a client is told to wait when every answer slot and queue place is taken.
BUSY_RETRY_S = 30
#: How often a waiting request looks for a free slot (seconds).
POLL_S = 0.02
#: The answer time assumed before any answer has been timed (seconds, a checked answer on a laptop CPU).
FIRST_GUESS_S = 20.0
#: Weight of the newest answer in the running mean of answer times.
NEWEST_WEIGHT = 0.3


class Busy(Exception):
    """Every answer slot and queue place is taken."""


@dataclass(frozen=True)
class Place:
    """Where a waiting request stands: ``position`` 1 is next, with ``ahead`` requests before it."""

    position: int
    ahead: int
    estimate_s: float

    def sentence(self) -> str:
        """The place as the chat shows it."""
        wait = f"about {math.ceil(self.estimate_s)} s" if self.estimate_s < 90 else f"about {math.ceil(self.estimate_s / 60)} min"
        return f"Waiting for the model: you are number {self.position} in line ({wait})."


class Gate:
    """The answer slots (``concurrency``) and the line in front of them (at most ``max_queue`` waiting)."""

    def __init__(self, concurrency: int, max_queue: int):
        self.concurrency = concurrency
        self.slots = threading.BoundedSemaphore(concurrency)
        self.max_queue = max_queue
        self.waiting = 0
        self.mean_answer_s = FIRST_GUESS_S
        self._line: list[int] = []  # tickets waiting for a slot, in arrival order
        self._tickets = itertools.count()
        self._lock = threading.Lock()

    def enter(self) -> None:
        """Take a queue place; raises Busy when the queue is full."""
        with self._lock:
            if self.waiting >= self.max_queue:
                raise Busy()
            self.waiting += 1

    def leave(self) -> None:
        with self._lock:
            self.waiting -= 1

    # -- the line -----------------------------------------------------------------

    def join(self) -> int:
        """A ticket at the end of the line."""
        with self._lock:
            ticket = next(self._tickets)
            self._line.append(ticket)
            return ticket

    def drop(self, ticket: int) -> None:
        """Leave the line (served, or gone)."""
        with self._lock:
            if ticket in self._line:
                self._line.remove(ticket)

    def place(self, ticket: int) -> Place | None:
        """Where ``ticket`` stands (None once it has left the line)."""
        with self._lock:
            if ticket not in self._line:
                return None
            ahead = self._line.index(ticket)
            rounds = ahead // self.concurrency + 1  # answers that must end before this one starts, in slot rounds
            return Place(position=ahead + 1, ahead=ahead, estimate_s=round(rounds * self.mean_answer_s, 1))

    def try_take(self, ticket: int) -> bool:
        """Take a slot for ``ticket`` if it is first in line and one is free (it then leaves the line)."""
        with self._lock:
            if not self._line or self._line[0] != ticket:
                return False
            if not self.slots.acquire(blocking=False):
                return False
            self._line.pop(0)
            return True

    def timed(self, seconds: float) -> None:
        """Note how long an answer held its slot (the estimate is a running mean of these)."""
        with self._lock:
            self.mean_answer_s = (1 - NEWEST_WEIGHT) * self.mean_answer_s + NEWEST_WEIGHT * max(0.0, seconds)

    def turn(self, queue: bool = True) -> Turn:
        """One request's way through the gate (use with ``with``): a queue place when ``queue`` (raises Busy when
        the queue is full), a place in line, then a slot, all given back on leaving the block."""
        return Turn(self, queue)

    @contextlib.contextmanager
    def exclusive(self, queue: bool = True):
        """Hold a queue place (when ``queue``) and then an answer slot, blocking this thread until one is free.

        Only for callers whose number is bounded by their own concurrency limit (Gradio's events).
        """
        with self.turn(queue) as turn:
            while not turn.ready():
                time.sleep(POLL_S)
            yield

    @contextlib.asynccontextmanager
    async def admitted(self):
        """A queue place, then an answer slot, waited for on the event loop; raises Busy when the queue is full."""
        with self.turn() as turn:
            while not turn.ready():
                await asyncio.sleep(POLL_S)
            yield


class Turn:
    """One request's way through a :class:`Gate`: ``ready()`` is polled until it takes a slot; ``place()`` says
    where it stands meanwhile. Leaving the ``with`` block gives back the line place, the slot and the queue place
    (at once, also when the client has gone away)."""

    def __init__(self, gate: Gate, queue: bool):
        self.gate = gate
        self.queue = queue
        self.ticket: int | None = None
        self.started: float | None = None
        self._told: int | None = None  # the position last reported by moved()

    def __enter__(self) -> Turn:
        if self.queue:
            self.gate.enter()
        self.ticket = self.gate.join()
        return self

    def ready(self) -> bool:
        """Whether this request now holds a slot (taking one if it is first in line and one is free)."""
        if self.started is None and self.gate.try_take(self.ticket):
            self.started = time.monotonic()
        return self.started is not None

    def place(self) -> Place | None:
        """Where this request stands in line (None once it holds a slot)."""
        return None if self.started is not None else self.gate.place(self.ticket)

    def moved(self) -> Place | None:
        """The place in line when it differs from the one last returned here (None otherwise): what to tell the reader."""
        place = self.place()
        if place is None or place.position == self._told:
            return None
        self._told = place.position
        return place

    def __exit__(self, *exc) -> None:
        self.gate.drop(self.ticket)
        if self.started is not None:
            self.gate.timed(time.monotonic() - self.started)
            self.gate.slots.release()
        if self.queue:
            self.gate.leave()
