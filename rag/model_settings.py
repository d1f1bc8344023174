"""The settings of the model servers paperchat can use: Ollama and OpenAI-compatible servers (part of
:class:`paperchat.rag.settings.Settings`, which re-exports these names)."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

def normalize_ollama_host(host: str) -> str:
    """OLLAMA_HOST as a base URL, read by the ollama client's own parser (``ollama._client._parse_host``).

    Its rules are Ollama's (envconfig/config.go ``Host()``): no scheme means http on port
    11434; ``http://h`` means port 80 and ``https://h`` port 443; a path is kept; IPv6
    works. Two things are added, both from Ollama's own source: a bare IPv6 address gets
    its brackets (``Host()`` accepts ``::1``), and the bind-all addresses 0.0.0.0 and ::
    become loopback (``ConnectableHost()``). A value nothing can parse is a ValueError.

    >>> normalize_ollama_host("0.0.0.0")
    'http://127.0.0.1:11434'
    >>> normalize_ollama_host("gpu-box:8080")
    'http://gpu-box:8080'
    >>> normalize_ollama_host("http://gpu-box")
    'http://gpu-box:80'
    >>> normalize_ollama_host("https://example.com/ollama/")
    'https://example.com:443/ollama'
    >>> normalize_ollama_host("::1"), normalize_ollama_host("[::]:11500")
    ('http://[::1]:11434', 'http://[::1]:11500')
    """
    import ipaddress
    import urllib.parse

    from ollama._client import _parse_host

    raw = host.strip()
    scheme, sep, rest = raw.partition("://")
    hostport, slash, path = rest.partition("/") if sep else raw.partition("/")
    try:
        if isinstance(ipaddress.ip_address(hostport), ipaddress.IPv6Address):
            hostport = f"[{hostport}]"
    except ValueError:
        pass
    rebuilt = (f"{scheme}://" if sep else "") + hostport + slash + path
    try:
        url = _parse_host(rebuilt)
        split = urllib.parse.urlsplit(url)
        name, port = split.hostname or "127.0.0.1", split.port
        if not name or any(c.isspace() for c in name):
            raise ValueError("no host name")
    except ValueError as err:
        raise ValueError(
            f"The Ollama address {host!r} (OLLAMA_HOST or PAPERCHAT_OLLAMA__HOST) cannot be used: {err}. "
            "Write it like 127.0.0.1:11434, http://gpu-box:11434, [::1]:11434 or https://example.com/ollama."
        ) from None
    if name == "0.0.0.0":
        name = "127.0.0.1"
    elif name == "::":
        name = "::1"
    if ":" in name:
        name = f"[{name}]"
    return urllib.parse.urlunsplit((split.scheme, f"{name}:{port}", split.path, "", ""))


#: Go's time.ParseDuration grammar (the form Ollama's api/types.go Duration.UnmarshalJSON reads).
_GO_DURATION = r"[-+]?(?:0|(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)"


def parse_keep_alive(value: object) -> int | float | str:
    """``keep_alive`` as Ollama's server reads it: seconds as a number (negative: forever) or a Go duration.

    Ollama's api/types.go ``Duration.UnmarshalJSON`` takes a JSON number as seconds and a
    JSON string through Go's ``time.ParseDuration``, so the string "-1" or "3600" gets
    HTTP 400. Numbers written as text (environment variables) become numbers here.

    >>> parse_keep_alive("-1"), parse_keep_alive("3600"), parse_keep_alive(" 1h30m "), parse_keep_alive(2.5)
    (-1, 3600, '1h30m', 2.5)
    """
    import math
    import re

    if isinstance(value, bool):
        raise ValueError(_keep_alive_error(value))
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            if re.fullmatch(_GO_DURATION, text):
                return text
            raise ValueError(_keep_alive_error(value)) from None
    else:
        raise ValueError(_keep_alive_error(value))
    if not math.isfinite(number):
        raise ValueError(_keep_alive_error(value))
    return int(number) if number.is_integer() else number


def _keep_alive_error(value: object) -> str:
    return (
        f"PAPERCHAT_OLLAMA__KEEP_ALIVE={value!r} is neither a number of seconds nor a Go duration. "
        "Use e.g. 30m, 1h30m, 3600 (seconds), 0 (unload after each answer) or -1 (keep loaded)."
    )


class OllamaSettings(BaseModel):
    """The production backend: a model served by Ollama."""

    model_config = ConfigDict(validate_default=True)

    host: str = Field(
        default_factory=lambda: os.environ.get("OLLAMA_HOST", "http://127.0.0.1:11434"),
        description="Ollama server URL (defaults to $OLLAMA_HOST).",
    )
    model: str = Field("qwen2.5:7b-instruct", description="Ollama model tag; `ollama pull` it first.")
    keep_alive: int | float | str = Field(
        "30m",
        description="How long Ollama keeps the model loaded after a request: seconds (-1: always) or a Go duration like 30m.",
    )
    num_ctx: int = Field(8192, ge=512, description="Context window requested (Ollama's default is too small).")
    timeout_s: float = Field(300.0, gt=0, description="Seconds to wait for one Ollama request (CPU models are slow).")
    probe_timeout_s: float = Field(2.0, gt=0, description="Seconds to wait when checking whether Ollama is up.")
    recheck_s: float = Field(30.0, ge=0, description="With backend 'auto': seconds between checks that Ollama is up.")

    @field_validator("host")
    @classmethod
    def _norm(cls, v: str) -> str:
        return normalize_ollama_host(v)

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _keep_alive(cls, v: object) -> int | float | str:
        return parse_keep_alive(v)


def normalize_openai_base_url(url: str) -> str:
    """An OpenAI-compatible base URL without a trailing slash; ``/v1`` is added when there is no path.

    >>> normalize_openai_base_url("http://127.0.0.1:8080"), normalize_openai_base_url("https://gpu:8000/v1/")
    ('http://127.0.0.1:8080/v1', 'https://gpu:8000/v1')
    """
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    try:
        parts.port
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            f"The OpenAI-compatible address {url!r} (OPENAI_BASE_URL or PAPERCHAT_OPENAI__BASE_URL) cannot be used. "
            "Write it like http://127.0.0.1:8080/v1 (llama.cpp's llama-server) or http://gpu-box:8000/v1 (vLLM)."
        )
    return text if parts.path else text + "/v1"


class OpenAISettings(BaseModel):
    """A model on any server with the OpenAI-compatible chat API (llama.cpp's llama-server, vLLM, LM Studio, TGI)."""

    model_config = ConfigDict(validate_default=True)

    base_url: str = Field(
        default_factory=lambda: os.environ.get("OPENAI_BASE_URL") or "http://127.0.0.1:8080/v1",
        description="The server's API address, ending in /v1 (defaults to $OPENAI_BASE_URL; /v1 is added to a bare host).",
    )
    model: str = Field("", description="Model name the server serves; empty: the first one its /v1/models lists.")
    api_key: SecretStr | None = Field(
        default_factory=lambda: SecretStr(k) if (k := os.environ.get("OPENAI_API_KEY")) else None,
        description="Bearer key sent to the server (defaults to $OPENAI_API_KEY; none is sent when unset).",
    )
    timeout_s: float = Field(300.0, gt=0, description="Seconds to wait for one request to the server.")
    probe_timeout_s: float = Field(5.0, gt=0, description="Seconds to wait when asking the server which models it has.")
    json_schema: bool = Field(
        True, description="Ask for JSON-schema output (response_format) where paperchat wants JSON; turn off for a "
        "server that refuses it."
    )

    @field_validator("base_url")
    @classmethod
    def _base(cls, v: str) -> str:
        return normalize_openai_base_url(v)
