"""HTML for answers: verdict badge, list / comparison rows, citation cards, claim details.

Every piece of paper text or model output goes through :func:`html.escape` before it
is placed in markup, so nothing from an abstract or an answer can run in the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from paperchat.rag import prompts
from paperchat.rag.answer import Answer, AnswerRow, Citation, Related
from paperchat.rag.corpus import Paper

#: Verdict -> (label, colour). A withheld draft is not an accusation: grey, and says "withheld".
BADGES = {
    "supported": ("✔ supported", "#1a7f37"),
    "partially supported": ("◐ partially supported", "#9a6700"),
    "not supported": ("⊘ withheld: not supported by the abstracts", "#6e7781"),
    "refused": ("∅ not in the abstracts", "#57606a"),
}
CLAIM_LABELS = {
    "supported": "✔ supported",
    "corrected": "✔ supported (citation corrected)",
    "unsupported": "✖ removed",
    "refusal": "∅ refusal",
}
#: Claim label when the whole draft was withheld (nothing was shown, so nothing was "removed").
WITHHELD_CLAIM = "⊘ withheld"
WITHHELD_NOTE = "withheld: the cited abstracts do not state it"
RELATED_LABEL = "What the abstracts do state (not an answer to the question):"
MISSING_SIDE = "not stated in the papers"

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
    """Per-claim checks; when the whole draft was withheld its claims read "withheld", not "removed"."""
    if not answer.claims:
        return ""
    withheld = answer.verdict == "not supported"
    rows = []
    for claim in answer.claims:
        label = CLAIM_LABELS.get(claim.verdict, claim.verdict)
        reasons_list = list(claim.reasons)
        if withheld and claim.verdict == "unsupported":
            label = WITHHELD_CLAIM
            reasons_list = [WITHHELD_NOTE if r == prompts.REMOVED_NOTE else r for r in reasons_list]
        cites = "".join(f"[{n}]" for n in claim.sources)
        if not claim.sources and claim.cited:  # a rejected claim: what the draft cited, not a support mark
            cites = "(the draft cited " + "".join(f"[{n}]" for n in claim.cited) + ")"
        reasons = "; ".join(reasons_list)
        rows.append(
            f'<li class="pc-claim pc-claim-{e(claim.verdict)}"><b>{e(label)}</b> {e(claim.text)} {e(cites)}'
            + (f"<br><small>{e(reasons)}</small>" if reasons else "")
            + "</li>"
        )
    return f'<details class="pc-claims"><summary>How each claim was checked ({len(answer.claims)})</summary><ul>{"".join(rows)}</ul></details>'


def _marks(text: str, sources: Sequence[int]) -> str:
    """``text`` escaped, with its citation marks appended when it carries none of its own."""
    if sources and not re.search(r"\[\d+\]", text):
        text = f"{text} " + "".join(f"[{n}]" for n in sources)
    return e(text)


def _source_names(row: AnswerRow, titles: dict[int, str]) -> str:
    return "<br>".join(
        f'<span class="pc-row-source">[{n}]' + (f" {e(titles[n])}" if n in titles else "") + "</span>" for n in row.sources
    )


def rows_html(answer: Answer) -> str:
    """List answers as an HTML list (title in bold, then its checked statement); comparisons as a table.

    >>> from paperchat.rag.answer import Timings
    >>> a = Answer(question="q", standalone_question="q", answer="Two.", verdict="supported", citations=[],
    ...            claims=[], draft="", timings=Timings(), shape="list",
    ...            rows=[AnswerRow(label="<A>", text="A does x [1].", sources=[1])])
    >>> rows_html(a)
    '<ul class="pc-rows pc-list"><li class="pc-row"><b>&lt;A&gt;</b> — A does x [1].</li></ul>'
    """
    if not answer.rows:
        return ""
    if answer.shape == "comparison":
        titles = {c.n: c.title for c in answer.citations}
        body = []
        for row in answer.rows:
            if row.missing:
                stated = f'<span class="pc-missing">{e(MISSING_SIDE)}</span>'
            else:
                stated = _marks(row.text, row.sources)
            body.append(
                f'<tr class="pc-row{" pc-row-missing" if row.missing else ""}"><td><b>{e(row.label)}</b></td>'
                f"<td>{stated}</td><td>{_source_names(row, titles)}</td></tr>"
            )
        return (
            '<table class="pc-rows pc-comparison"><thead><tr><th>Side</th><th>What its paper states</th>'
            f'<th>Source</th></tr></thead><tbody>{"".join(body)}</tbody></table>'
        )
    items = []
    for row in answer.rows:
        if row.missing:
            items.append(f'<li class="pc-row pc-row-missing"><b>{e(row.label)}</b> — <span class="pc-missing">{e(MISSING_SIDE)}</span></li>')
        else:
            items.append(f'<li class="pc-row"><b>{e(row.label)}</b> — {_marks(row.text, row.sources)}</li>')
    return f'<ul class="pc-rows pc-list">{"".join(items)}</ul>'


def related_html(related: Sequence[Related]) -> str:
    """What the abstracts do state about the thing asked, labelled as not an answer."""
    if not related:
        return ""
    items = "".join(
        f'<li>{e(r.sentence)} <small class="pc-related-source">— [{r.n}] {e(r.title)}</small></li>' for r in related
    )
    return f'<div class="pc-related"><p><b>{e(RELATED_LABEL)}</b></p><ul>{items}</ul></div>'


def answer_html(answer: Answer) -> str:
    """The checked answer with its badge, rows, related facts, citation cards and claim details."""
    t = answer.timings
    timing = f"first token {t.first_token:.1f} s · total {t.total:.1f} s" if t.first_token else f"total {t.total:.1f} s"
    withheld = answer.verdict == "not supported"
    word = "withheld" if withheld else "removed"
    removed = f" · {answer.removed} claim{'s' if answer.removed != 1 else ''} {word}" if answer.removed else ""
    text = answer.answer
    if withheld and "withheld" not in text.casefold():
        text = f"{text} {prompts.WITHHELD}".strip()
    cards = "".join(citation_card(c) for c in answer.citations)
    return (
        f'<div class="pc-answer{" pc-withheld" if withheld else ""}"><p>{e(text)}</p>'
        + rows_html(answer)
        + related_html(answer.related)
        + f'<p>{badge(answer.verdict)} <small class="pc-timing">{e(timing)}{e(removed)}</small></p>'
        + (f'<div class="pc-citations">{cards}</div>' if cards else "")
        + claims_details(answer)
        + "</div>"
    )


def draft_html(text: str, status: str) -> str:
    """What the chat shows while the answer is being written."""
    return f'<div class="pc-draft"><p><i>{e(status)}</i></p><p>{e(text)}</p></div>'


# -- the Papers tab ------------------------------------------------------------------

MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


def date_key(date: str | None) -> tuple[int, int, int]:
    """A sort key for a listing date, newest first when sorted descending; no year or no date sorts last.

    >>> sorted(["Dec 12", "Jun 16, 2024", None, "May 27, 2022"], key=date_key, reverse=True)
    ['Jun 16, 2024', 'May 27, 2022', 'Dec 12', None]
    """
    m = re.match(r"([A-Za-z]{3})[a-z]*\.? (\d{1,2})(?:, (\d{4}))?", date or "")
    if not m:
        return (-1, 0, 0)
    month, day = MONTHS.get(m.group(1).casefold(), 0), int(m.group(2))
    year = int(m.group(3)) if m.group(3) else 0
    return (year, month, day)


def short_title(title: str) -> str:
    """The name a reader would use for a paper: the part before a colon, else the whole title.

    >>> short_title("SPELL: Self-Play Reinforcement Learning for Long-Context LLMs")
    'SPELL'
    >>> short_title("Music Transformer")
    'Music Transformer'
    """
    head = title.split(":", 1)[0].strip()
    return head if head and ":" in title else title.strip()


def ask_about(paper: Paper) -> str:
    """The question the Papers tab prefills for ``paper``.

    >>> ask_about(Paper(id="x", title="SPELL: Self-Play RL", abstract="a"))
    'What does "SPELL" propose?'
    """
    return f'What does "{short_title(paper.title)}" propose?'


def links_html(urls: Sequence[str]) -> str:
    """Clickable, escaped links (one per line); a link that is not a plain http(s) URL stays text."""
    return "<br>".join(_link(u) for u in urls)


def paper_row(paper: Paper) -> list:
    """One row of the Papers table: title, date, authors, upvotes, links (HTML)."""
    return [paper.title, paper.date or "", paper.authors, paper.upvotes, links_html(paper.urls)]


def paper_meta(paper: Paper) -> str:
    parts = [
        paper.date or "date not listed",
        f"{paper.authors} authors" if paper.authors else "authors not listed",
        f"{paper.upvotes} upvotes" if paper.upvotes is not None else "upvotes not listed",
    ]
    return " · ".join(parts)


def paper_html(paper: Paper) -> str:
    """The opened paper under the table: title, metadata, links and the whole abstract, escaped."""
    links = links_html(paper.urls).replace("<br>", " ")
    return (
        f'<div class="pc-paper"><h3 class="pc-paper-title">{e(paper.title)}</h3>'
        f'<p class="pc-paper-meta"><small>{e(paper_meta(paper))}</small></p>'
        + (f'<p class="pc-links">Code / links: {links}</p>' if links else "")
        + f'<div class="pc-abstract">{e(paper.abstract)}</div></div>'
    )
