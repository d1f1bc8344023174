"""Follow-up questions that point at a position in the previous answer ("the second one", "the last paper").

The chat answers "which papers …?" with a numbered list, and readers go on by position. A small model
rewriting the follow-up often loses which item was meant, so the position is resolved here, from the
list itself: the phrase is replaced by the item's title, and the question then stands alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "fifth": 5, "5th": 5,
    "sixth": 6, "6th": 6, "last": -1, "former": 1, "latter": 2,
}
_NOUNS = r"(?:one|paper|papers|work|study|method|approach|item|entry|result|of\s+(?:them|those|these|the\s+papers))"
# an ordinal that names a list position: followed by a noun of the list ("the second one", "the first of them")
# or ending the question ("and the third?"); "the first author" is a field, not a position
_POSITION = re.compile(
    rf"\b(?:the\s+)?({'|'.join(_ORDINALS)})(?:\s+{_NOUNS}\b|(?=\s*(?:[?.!,]|$)))|\b(?:paper|item|number|no\.?|#)\s*(\d)\b",
    re.IGNORECASE,
)
_ITEM = re.compile(r"^\s*(?:(\d+)[.)]|[-*•])\s+(.+?)\s*$")
_CITED = re.compile(r"\s*\[\d+\](?:\[\d+\])*")


def listed_items(answer: str) -> list[str]:
    """The titles a numbered or bulleted answer lists, in order (citations and trailing detail dropped).

    >>> listed_items("Two papers do:\\n1. FooNet: Fast Nets [1] - uses sparse heads.\\n2. BarGAN [2]")
    ['FooNet: Fast Nets', 'BarGAN']
    >>> listed_items("3 papers match: FooNet [1]; BarGAN [2]; QuxNet [3]."), listed_items("FooNet wins [1]. BarGAN loses [2].")
    (['FooNet', 'BarGAN', 'QuxNet'], [])
    """
    inline = re.match(r"[^:\n]{0,80}:\s*(.+)$", answer.strip(), re.DOTALL)
    if inline and ";" in inline.group(1) and "\n" not in inline.group(1).strip():
        # paperchat's own list answers: "3 papers match: FooNet [1]; BarGAN [2]; QuxNet [3]."
        parts = [_CITED.sub("", p).strip(" .") for p in inline.group(1).split(";")]
        if len(parts) >= 2 and all(parts):
            return parts
    items = []
    for line in answer.splitlines():
        m = _ITEM.match(line)
        if m:
            text = re.split(r"\s+[-–—]\s+|\s*\[\d+\]", m.group(2), maxsplit=1)[0]
            text = _CITED.sub("", text).strip(" .*:")
            if text:
                items.append(text)
    return items


def resolve_position(question: str, history: Sequence[tuple[str, str]]) -> str | None:
    """``question`` with a list position ("the second one") replaced by that item of the last listing answer
    in ``history``; None when it names no position or the history lists nothing there.

    >>> h = [("user", "which papers use FooNet?"), ("assistant", "1. BarGAN [1]\\n2. QuxNet: Small Models [2]")]
    >>> resolve_position("which dataset does the second one train on?", h)
    'which dataset does QuxNet: Small Models train on?'
    >>> resolve_position("who is the first author?", h) is None, resolve_position("and the last?", h)
    (True, 'and QuxNet: Small Models?')
    """
    last = next((text for role, text in reversed(history) if role == "assistant" and listed_items(text)), None)
    if last is None:
        return None
    items = listed_items(last)
    m = _POSITION.search(question)
    if not m:
        return None
    if m.group(1):
        word = m.group(1).lower()
        if word in ("former", "latter") and len(items) != 2:
            return None
        index = _ORDINALS[word]
    else:
        index = int(m.group(2))
    if not (-len(items) <= index <= len(items)) or index == 0:
        return None
    title = items[index - 1] if index > 0 else items[-1]
    return f"{question[: m.start()]}{title}{question[m.end():]}"
