"""Ready-to-paste HTML that puts the chat inside another page (a wiki, a docs site)."""

from __future__ import annotations

import html
from urllib.parse import quote


def snippet(url: str, token: str | None = None, origin: str | None = None, days: float = 30.0, height: int = 620) -> str:
    """An ``<iframe>`` and a ``<gradio-app>`` web component pointing at the compact chat.

    With the server's API ``token``, the snippet carries an *embed credential* signed with it,
    bound to ``origin`` and valid for ``days``: it reaches only the compact chat, and the token
    itself never appears.

    >>> "iframe" in snippet("https://pc.example.org") and "gradio-app" in snippet("https://pc.example.org")
    True
    >>> "s3cret" in snippet("https://pc.example.org", token="s3cret", origin="https://wiki.example.org")
    False
    """
    from .security import embed_token

    base = url.rstrip("/")
    if token and not origin:
        raise ValueError("an embed credential needs the origin of the page it is embedded in")
    query = f"?embed={quote(embed_token(token, origin, days))}" if token else ""
    embed = html.escape(f"{base}/embed/{query}", quote=True)
    script = html.escape(f"{base}/embed/gradio.js", quote=True)
    return f"""<!-- paperchat: option 1, an iframe (works everywhere iframes are allowed) -->
<iframe src="{embed}" title="paperchat" style="width:100%;height:{int(height)}px;border:1px solid #ddd;border-radius:8px" loading="lazy"></iframe>

<!-- paperchat: option 2, Gradio's web component (the page must allow scripts from {html.escape(base)}) -->
<script type="module" src="{script}"></script>
<gradio-app src="{embed}"></gradio-app>
""" + (f"<!-- the embed credential works only inside pages of {html.escape(origin)} and expires in {days:g} days:"
       " print a new snippet with `paperchat embed-snippet` before then -->\n" if token else "")
