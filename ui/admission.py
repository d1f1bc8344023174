"""Admission: the answer slots and the queue in front of them, shared by the HTTP API and the Gradio chat.

A request waiting for a slot waits on the event loop, never in a worker thread: worker threads
are what a running answer needs for its next token, so a queue longer than the thread pool
cannot starve it (the deadlock of issue 25).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

#: Seconds a client is told to wait when every answer slot and queue place is taken.
BUSY_RETRY_S = 30
#: How often a waiting request looks for a free slot (seconds).
POLL_S = 0.02


class Busy(Exception):
    """Every answer slot and queue place is taken."""


class Gate:
    """The answer slots (``concurrency``) and the queue in front of them (``max_queue``)."""

    def __init__(self, concurrency: int, max_queue: int):
        self.slots = threading.BoundedSemaphore(concurrency)
        self.max_queue = max_queue
        self.waiting = 0
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

    @contextlib.contextmanager
    def exclusive(self, queue: bool = True):
        """Hold a queue place (when ``queue``) and then an answer slot, blocking this thread until one is free.

        Only for callers whose number is bounded by their own concurrency limit (Gradio's events).
        """
        if queue:
            self.enter()
        try:
            with self.slots:
                yield
        finally:
            if queue:
                self.leave()

    async def acquire_async(self) -> bool:
        """Wait for an answer slot without holding a thread (cancellable: the client may leave)."""
        while not self.slots.acquire(blocking=False):
            await asyncio.sleep(POLL_S)
        return True

    @contextlib.asynccontextmanager
    async def admitted(self):
        """A queue place, then an answer slot, waited for on the event loop; raises Busy when the queue is full."""
        self.enter()
        acquired = False
        try:
            acquired = await self.acquire_async()
            yield
        finally:
            if acquired:
                self.slots.release()
            self.leave()
