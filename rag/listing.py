"""A paper's listing as evidence: its fields (authors, date, upvotes, links) as cited sentences, and its names.

The listing's fields are evidence like the abstract: :func:`listing_sentence` writes them as one
sentence that the model sees and the critique checks claims against. A paper is called by its
:func:`short_name`, or by the name its abstract gives its method (:func:`alias`).
"""

from __future__ import annotations

import difflib
import re
from typing import Literal

from .corpus import Paper
from .text import fold, name_in, names

Field_ = Literal["authors", "author_names", "date", "upvotes", "links"]

FIELD_NAMES = {
    "authors": "number of authors",
    "author_names": "author names",
    "date": "listing date",
    "upvotes": "number of upvotes",
    "links": "code or project links",
}


def listing_date(paper: Paper):
    """The paper's listing date as a date, when the listing gives a year (else None).

    >>> listing_date(Paper(id="x", title="T", abstract="A.", date="Sep 12, 2018"))
    datetime.date(2018, 9, 12)
    >>> listing_date(Paper(id="x", title="T", abstract="A.", date="Sep 28")) is None
    True
    """
    from datetime import datetime

    for fmt in ("%b %d, %Y", "%B %d, %Y", "%b. %d, %Y"):
        try:
            return datetime.strptime((paper.date or "").replace("Sept", "Sep"), fmt).date()
        except ValueError:
            continue
    return None


def compare_listing(a: Paper, b: Paper, field: Field_, na: int, nb: int) -> str | None:
    """A cited sentence comparing the listing field of two papers, computed from the records (None if it can't be).

    >>> a = Paper(id="a", title="SSRL: Search", abstract="A.", authors=18, date="Aug 14")
    >>> b = Paper(id="b", title="SPELL: Play", abstract="B.", authors=8, date="Sep 28")
    >>> compare_listing(a, b, "authors", 1, 2)
    'SSRL has more authors than SPELL (18 against 8) [1][2].'
    >>> compare_listing(a, b, "date", 1, 2) is None
    True
    """
    x, y = short_name(a.title), short_name(b.title)
    if field in ("authors", "upvotes"):
        va, vb = getattr(a, field), getattr(b, field)
        if va is None or vb is None:
            return None
        if va == vb:
            return f"{x} and {y} have the same number of {field} ({va}) [{na}][{nb}]."
        more, less, hi, lo = (x, y, va, vb) if va > vb else (y, x, vb, va)
        return f"{more} has more {field} than {less} ({hi} against {lo}) [{na}][{nb}]."
    if field == "date":
        da, db = listing_date(a), listing_date(b)
        if da is None or db is None:
            return None
        if da == db:
            return f"{x} and {y} were listed on the same day [{na}][{nb}]."
        first, then = (x, y) if da < db else (y, x)
        return f"{first} was listed before {then} [{na}][{nb}]."
    return None


def short_name(title: str) -> str:
    """How a paper is called in a sentence: the name before a colon, else the title.

    >>> short_name("SPARK: Stepwise Process-Aware Rewards"), short_name("Music Transformer")
    ('SPARK', 'Music Transformer')
    """
    head = title.split(":", 1)[0].strip()
    return head if ":" in title and 1 <= len(head) <= 60 else title.strip()


def mentions(text: str, paper: Paper) -> bool:
    """Whether ``text`` names ``paper``: its short name, or its whole title.

    >>> p = Paper(id="s", title="SPELL: Self-Play Reinforcement Learning", abstract="x")
    >>> mentions("SPELL reaches 60%", p), mentions("It reaches 60%", p)
    (True, False)
    """
    name = short_name(paper.title)
    if len(name) >= 3 and name_in(name, text):
        return True
    return fold(paper.title).rstrip(".") in fold(text)


def listing_sentence(paper: Paper) -> str:
    """The listing's fields of ``paper`` as one sentence, evidence like the abstract ('' when none).

    >>> p = Paper(id="x", title="T", abstract="A.", authors=8, date="Aug 11", upvotes=2, urls=["github.com/a/b"])
    >>> listing_sentence(p)
    'Listing: 8 authors; listed on Aug 11; 2 upvotes; links: github.com/a/b.'
    """
    parts = []
    if paper.authors:
        parts.append(f"{paper.authors} author{'s' if paper.authors != 1 else ''}")
    if paper.date:
        parts.append(f"listed on {paper.date}")
    if paper.upvotes is not None:
        parts.append(f"{paper.upvotes} upvote{'s' if paper.upvotes != 1 else ''}")
    if paper.urls:
        parts.append(f"links: {', '.join(paper.urls)}")
    return f"Listing: {'; '.join(parts)}." if parts else ""


def field_value(paper: Paper, field: Field_) -> str | None:
    """The listing's value of ``field`` as text, or None when the listing does not give it.

    >>> field_value(Paper(id="x", title="T", abstract="A.", authors=8), "authors")
    '8'
    """
    if field == "authors":
        return str(paper.authors) if paper.authors else None
    if field == "upvotes":
        return str(paper.upvotes) if paper.upvotes is not None else None
    if field == "date":
        return paper.date or None
    if field == "links":
        return ", ".join(paper.urls) or None
    return None  # author names: the listings carry only a count


def metadata_claim(paper: Paper, field: Field_, n: int) -> str | None:
    """A cited sentence stating ``field`` of ``paper`` from its listing, or None when not listed.

    >>> p = Paper(id="x", title="SPELL: Self-Play", abstract="A.", authors=8, date="Aug 11")
    >>> metadata_claim(p, "authors", 1), metadata_claim(p, "date", 1)
    ('SPELL has 8 authors [1].', 'SPELL was listed on Aug 11 [1].')
    >>> metadata_claim(p, "upvotes", 1) is None
    True
    """
    value = field_value(paper, field)
    if value is None:
        return None
    name = short_name(paper.title)
    if field == "authors":
        return f"{name} has {value} author{'s' if value != '1' else ''} [{n}]."
    if field == "upvotes":
        return f"{name} has {value} upvote{'s' if value != '1' else ''} [{n}]."
    if field == "date":
        return f"{name} was listed on {value} [{n}]."
    return f"{name} links to {value} [{n}]."


_INTRODUCES = re.compile(r"\b(?:propose|introduce|present|call|name|dub|term|develop)(?:s|d|ed)?\b", re.IGNORECASE)


def introducing(text: str) -> bool:
    """Whether ``text`` uses a verb of introducing ("we propose", "SINC introduces").

    >>> introducing("To answer it, we propose a framework that introduces a meta-model."), introducing("It scores 4.0%.")
    (True, False)
    """
    return _INTRODUCES.search(text) is not None


#: Acronyms too common to be a paper's own name.
GENERIC_NAMES = {"LLM", "LLMS", "RL", "AI", "VLM", "VLMS", "LVLM", "LVLMS", "MLLM", "MLLMS", "SFT", "GPT-4"}


def alias(paper: Paper) -> str | None:
    """The name an abstract gives its method ("we propose STIC ..."), when the title does not carry it.

    >>> alias(Paper(id="x", title="Enhancing Vision Models", abstract="We introduce Self-Training on Image Comprehension (STIC), a method."))
    'STIC'
    >>> alias(Paper(id="y", title="SPELL: Self-play", abstract="We propose SPELL, a framework.")) is None
    True
    >>> alias(Paper(id="z", title="Implicit Self-Improvement", abstract="We propose an ImPlicit Self-ImprovemenT (PIT) framework."))
    'PIT'
    """
    for sentence in re.split(r"(?<=[.!?])\s+", paper.abstract):
        m = _INTRODUCES.search(sentence)
        if not m:
            continue
        rest = sentence[m.end():]
        # "an ImPlicit Self-ImprovemenT (PIT) framework": an acronym in brackets is the name given
        bracketed = re.match(r"[^.()]{0,80}?\(([A-Z][A-Za-z0-9\-]*[A-Z][A-Za-z0-9\-]*)\)", rest)
        if bracketed and bracketed.group(1).upper() not in GENERIC_NAMES:
            name = bracketed.group(1)
            return None if mentions(name, paper) or name_in(name, paper.title) else name
        for name in names(rest):  # in the order they appear
            name = name.strip("-.,")
            inner_capital = any(c.isupper() and i > 0 and name[i - 1] != "-" for i, c in enumerate(name))
            if len(name) < 2 or name.upper() in GENERIC_NAMES or not inner_capital or name[0].isdigit():
                continue
            own = short_name(paper.title)
            if mentions(name, paper) or name_in(name, paper.title) or difflib.SequenceMatcher(None, name, own).ratio() > 0.8:
                return None
            return name
    return None


def display_name(paper: Paper) -> str:
    """How a paper is named in a list: its short name, with the abstract's name for it when that differs.

    >>> display_name(Paper(id="x", title="Enhancing Vision Models", abstract="We introduce Self-Training (STIC)."))
    'Enhancing Vision Models (STIC)'
    """
    name, other = short_name(paper.title), alias(paper)
    return f"{name} ({other})" if other else name

