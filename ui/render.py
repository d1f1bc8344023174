"""HTML for answers: verdict badge, citation cards, claim details.

Every piece of paper text or model output goes through :func:`html.escape` before it
is placed in markup, so nothing from an abstract or an answer can run in the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from rag.pipeline import Answer, Citation

BADGES = {
    "supported": ("✔ supported", "#1a7f37"),
    "partially supported": ("◐ partially supported", "#9a6700"),
    "not supported": ("✖ not supported", "#cf222e"),
    "refused": ("∅ not in the abstracts", "#57606a"),
}
CLAIM_LABELS = {
    "supported": "✔ supported",
    "corrected": "✔ supported (citation corrected)",
    "unsupported": "✖ removed",
    "refusal": "∅ refusal",
}

e = html.escape


def badge(verdict: str) -> str:
    """A coloured verdict badge.

    >>> 'class="pc-badge pc-verdict-partially-supported"' in badge("partially supported")
    True
    """
    label, colour = BADGES.get(verdict, (verdict, "#57606a"))
    return (
        f'<span class="pc-badge pc-verdict-{e(verdict.replace(" ", "-"))}" '
        f'style="background:{colour};color:#fff;border-radius:10px;padding:1px 8px;font-size:0.85em">{e(label)}</span>'
    )


def highlight(abstract: str, sentences: Sequence[str]) -> str:
    """The abstract, escaped, with the supporting sentences wrapped in ``<mark>``.

    >>> highlight("A <b>x</b>. Key fact here.", ["Key fact here."])
    'A &lt;b&gt;x&lt;/b&gt;. <mark>Key fact here.</mark>'
    """
    text = e(abstract)
    for sentence in sorted(set(sentences), key=len, reverse=True):
        escaped = e(sentence)
        if escaped and escaped in text:
            text = text.replace(escaped, f"<mark>{escaped}</mark>", 1)
    return text


def _link(url: str) -> str:
    href = url if re.match(r"https?://", url) else f"https://{url}"
    if not re.match(r"https?://[\w.\-]+(/[\w\-./~%?#=&+:@]*)?$", href):
        return e(url)
    return f'<a href="{e(href)}" target="_blank" rel="noopener noreferrer">{e(url)}</a>'


def citation_card(c: Citation) -> str:
    meta = " · ".join(x for x in (c.date, f"{c.authors} authors" if c.authors else None, f"{c.upvotes} upvotes" if c.upvotes else None) if x)
    links = " ".join(_link(u) for u in c.urls)
    return (
        f'<details class="pc-citation pc-citation-{c.n}"><summary><b>[{c.n}]</b> {e(c.title)}'
        + (f' <small>({e(meta)})</small>' if meta else "")
        + "</summary>"
        + f'<div class="pc-abstract">{highlight(c.abstract, c.supporting)}</div>'
        + (f'<div class="pc-links">Code / links: {links}</div>' if links else "")
        + "</details>"
    )


def claims_details(answer: Answer) -> str:
    if not answer.claims:
        return ""
    rows = []
    for claim in answer.claims:
        label = CLAIM_LABELS.get(claim.verdict, claim.verdict)
        cites = "".join(f"[{n}]" for n in claim.sources)
        reasons = "; ".join(claim.reasons)
        rows.append(
            f'<li class="pc-claim pc-claim-{e(claim.verdict)}"><b>{e(label)}</b> {e(claim.text)} {e(cites)}'
            + (f"<br><small>{e(reasons)}</small>" if reasons else "")
            + "</li>"
        )
    return f'<details class="pc-claims"><summary>How each claim was checked ({len(answer.claims)})</summary><ul>{"".join(rows)}</ul></details>'


def answer_html(answer: Answer) -> str:
    """The checked answer with its badge, citation cards and claim details."""
    t = answer.timings
    timing = f"first token {t.first_token:.1f} s · total {t.total:.1f} s" if t.first_token else f"total {t.total:.1f} s"
    removed = f" · {answer.removed} claim{'s' if answer.removed != 1 else ''} removed" if answer.removed else ""
    cards = "".join(citation_card(c) for c in answer.citations)
    return (
        f'<div class="pc-answer"><p>{e(answer.answer)}</p>'
        f'<p>{badge(answer.verdict)} <small class="pc-timing">{e(timing)}{e(removed)}</small></p>'
        + (f'<div class="pc-citations">{cards}</div>' if cards else "")
        + claims_details(answer)
        + "</div>"
    )


def draft_html(text: str, status: str) -> str:
    """What the chat shows while the answer is being written."""
    return f'<div class="pc-draft"><p><i>{e(status)}</i></p><p>{e(text)}</p></div>'
