"""Planted errors: wrong variants of reference answers, to measure the critique.

For a reference answer that cites its paper as source ``n``, make:

- ``correct``: the answer as it is (the critique should keep it: anything else is a false alarm);
- ``number``: one number changed (should be removed);
- ``wrong_paper``: the same words cited to another source (should be removed or re-cited);
- ``invented``: a detail no abstract gives, added to the claim (should be removed).

A question row may also carry correct answers written by hand in other words than the abstract
(``reworded``) and as briefly as a reader would accept (``terse``); they are checked as they are,
kind ``reworded`` / ``terse``, and anything the critique removes from them is a false alarm.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from paperchat.rag.critique import ClaimCheck, Critique, cite

Kind = Literal["correct", "number", "wrong_paper", "invented", "reworded", "terse"]
#: Row fields holding correct answers in other words; each is checked as the planted kind of its name.
REWORDED_FIELDS = ("reworded", "terse")

INVENTED_DETAILS = (
    "and it was trained with a learning rate of 3e-4 on 64 GPUs",
    "and it was first evaluated on the ImageNet-21k benchmark",
    "and its authors report that it halves energy consumption in data centers",
    "and it was developed jointly with a hospital network in Norway",
    "and it requires no GPU memory beyond 2 GB at inference time",
    "and the code is written in Haskell for formal verification",
)

# a number of the text, not a citation's ("[1]": changing it plants a wrong citation, not a wrong number)
_NUM = re.compile(r"(?<![\w.\[])(\d+(?:\.\d+)?)(?![\w\]])")


@dataclass
class Planted:
    """One answer to check, with what a good critique does with it."""

    kind: Kind
    text: str
    source: int  # the source the text cites
    true_source: int  # the source that really holds the claim

    @property
    def must_flag(self) -> bool:
        return self.kind not in ("correct", *REWORDED_FIELDS)


def _pick(key: str, options: tuple[str, ...]) -> str:
    return options[int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(options)]


def change_number(text: str) -> str | None:
    """``text`` with its first number changed to a different plausible one, or None if it has none.

    >>> change_number("It reaches 67.5 F1 and 47.4% accuracy.")
    'It reaches 71.5 F1 and 47.4% accuracy.'
    >>> change_number("No digits here.") is None, change_number("It uses binary questions [1].") is None
    (True, True)
    >>> change_number("It trains on 150 images [1][2].")
    'It trains on 303 images [1][2].'
    """
    m = _NUM.search(text)
    if not m:
        return None
    value = m.group(1)
    if "." in value:
        whole, frac = value.split(".")
        new = f"{int(whole) + 4}.{frac}"
    else:
        n = int(value)
        new = str(n * 2 + 3 if n < 1000 else n + 1000)
    return text[: m.start(1)] + new + text[m.end(1) :]


def add_detail(text: str, key: str) -> str:
    """``text`` with an invented detail joined to its last sentence.

    >>> add_detail("SPELL uses self-play.", "q1").startswith("SPELL uses self-play, and")
    True
    """
    body = text.rstrip().rstrip(".")
    return f"{body}, {_pick(key, INVENTED_DETAILS)}."


def plant(answer: str, key: str, source: int, other: int | None) -> list[Planted]:
    """The planted variants of one reference answer (some kinds need a number or a second source)."""
    out = [Planted("correct", cite(answer, [source]), source, source)]
    changed = change_number(answer)
    if changed:
        out.append(Planted("number", cite(changed, [source]), source, source))
    if other is not None:
        out.append(Planted("wrong_paper", cite(answer, [other]), other, source))
    out.append(Planted("invented", cite(add_detail(answer, key), [source]), source, source))
    return out


def flagged(planted: Planted, critique: Critique) -> bool:
    """Whether the critique flagged the planted text: a claim removed, or moved off a wrong citation."""
    claims: list[ClaimCheck] = critique.claims
    if any(c.verdict == "unsupported" for c in claims):
        return True
    if planted.kind == "wrong_paper":
        return all(planted.source not in c.sources for c in claims if c.kept)
    return False
