"""Test doubles that implement paperchat's interfaces (never mocks of our own code)."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.embeddings import HashingEmbedder


class FailingEmbedder(HashingEmbedder):
    """Works for ``ok_calls`` calls, then fails as a full disk would."""

    def __init__(self, ok_calls: int = 1):
        super().__init__()
        self.calls = 0
        self.ok_calls = ok_calls

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.calls > self.ok_calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().embed(texts)


class SlowEmbedder(HashingEmbedder):
    """Sleeps on every call and touches ``marker`` on the first one (for kill tests)."""

    def __init__(self, marker: Path, delay: float = 0.5):
        super().__init__()
        self.marker = Path(marker)
        self.delay = delay

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
        time.sleep(self.delay)
        return super().embed(texts)
