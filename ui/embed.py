"""Ready-to-paste HTML that puts the chat inside another page (a wiki, a docs site)."""

from __future__ import annotations

import html
from urllib.parse import quote


def snippet(url: str, token: str | None = None, height: int = 620) -> str:
    """An ``<iframe>`` and a ``<gradio-app>`` web component pointing at the compact chat.

    >>> "iframe" in snippet("https://pc.example.org") and "gradio-app" in snippet("https://pc.example.org")
    True
    """
    base = url.rstrip("/")
    query = f"?token={quote(token)}" if token else ""
    embed = html.escape(f"{base}/embed/{query}", quote=True)
    script = html.escape(f"{base}/embed/gradio.js", quote=True)
    return f"""<!-- paperchat: option 1, an iframe (works everywhere iframes are allowed) -->
<iframe src="{embed}" title="paperchat" style="width:100%;height:{int(height)}px;border:1px solid #ddd;border-radius:8px" loading="lazy"></iframe>

<!-- paperchat: option 2, Gradio's web component (the page must allow scripts from {html.escape(base)}) -->
<script type="module" src="{script}"></script>
<gradio-app src="{embed}"></gradio-app>
"""
