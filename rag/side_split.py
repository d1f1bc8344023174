"""A comparison that asks one thing of both sides, rewritten by the model as one plain question per side.

Cutting the other side's name out of "How do FooNet and BarGAN compare in speed?" leaves "How do FooNet and
compare in speed?", which the small model answers with whatever fact of the paper comes first. Asked to rewrite
the comparison, the same model writes "How fast is FooNet?": a question its side's abstract can answer, and that
the critique can ask again of that abstract. The reply is kept only where each question is about its own side.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence

from . import prompts
from .errors import PaperchatError
from .models import LLM, Message, Request, Usage
from .sides import asked_sides, second_ask
from .text import content_words, name_in

log = logging.getLogger(__name__)

#: a side question longer than this many words is not a plain question about one side
MAX_WORDS = 40
#: a side question is about its side when it uses at least this share of the side's words (and more of them than of
#: the other side's)
SIDE_SHARE = 0.5


# a second ask about one side: by its position ("what does the second report?")
_POINTS = re.compile(r"\bthe (?:first|second|former|latter|other)\b", re.IGNORECASE)


def asks_each_side(question: str, sides: Sequence[str]) -> bool:
    """Whether ``question`` asks its own thing of each side (its clauses are the sides' questions, and the model would
    merge them into one): each side is given its own ask, or a second ask names a side or points to one.

    >>> asks_each_side("FooNet vs BarGAN: what does the first prune, and how fast is the second?", ["FooNet", "BarGAN"])
    True
    >>> asks_each_side("Is FooNet bigger or smaller than BarGAN, and by how much?", ["FooNet", "BarGAN"])
    False
    """
    second = second_ask(question)
    return bool(asked_sides(question)) or bool(second) and (
        _POINTS.search(second) is not None or any(name_in(side, second) for side in sides)
    )


def split_request(question: str, sides: Sequence[str]) -> Request:
    """The model call that rewrites ``question`` (comparing ``sides``) as one question per side."""
    text = prompts.SIDE_SPLIT.format(question=question, first=sides[0], second=sides[1])
    return Request([Message("user", text)], max_tokens=120, temperature=0.0, json_schema=prompts.SIDE_SPLIT_SCHEMA)


def _share(side: str, text: str) -> float:
    """The share of ``side``'s words that ``text`` uses."""
    words = set(content_words(side))
    return len(words & set(content_words(text))) / len(words) if words else 0.0


def own_questions(reply: str, sides: Sequence[str], question: str) -> dict[str, str]:
    """Each side's question from the model's ``reply``, or {} when the reply is not one plain question about each
    side (a question that names neither side, or both, or copies the comparison back). Questions the model wrote in
    the other order are matched to their sides.

    >>> reply = '{"question_about_first": "How fast is BarGAN?", "question_about_second": "How fast is FooNet"}'
    >>> own_questions(reply, ["FooNet", "BarGAN"], "Which is faster, FooNet or BarGAN?")
    {'FooNet': 'How fast is FooNet?', 'BarGAN': 'How fast is BarGAN?'}
    >>> own_questions('{"question_about_first": "FooNet", "question_about_second": "BarGAN"}', ["FooNet", "BarGAN"], "")
    {}
    """
    try:
        data = json.loads(reply)
        asked = [" ".join(str(data[key]).split()) for key in prompts.SIDE_SPLIT_SCHEMA["required"]]
    except (ValueError, KeyError, TypeError):
        return {}
    out: dict[str, str] = {}
    for text in asked:
        text = text.rstrip(" .") + ("" if text.endswith("?") else "?")
        if not 3 <= len(text.split()) <= MAX_WORDS or text.casefold() == question.strip().casefold():
            return {}
        shares = [_share(side, text) for side in sides]
        best = max(range(len(sides)), key=shares.__getitem__)
        # about one side: most of its words, and more of them than of the other side's
        if shares[best] < SIDE_SHARE or shares[best] <= shares[1 - best] or sides[best] in out:
            return {}
        out[sides[best]] = text
    return {side: out[side] for side in sides}


def split_sides(llm: LLM, question: str, sides: Sequence[str]) -> tuple[dict[str, str], Usage]:
    """One question per side of the comparison ``question`` ({} when the model's reply does not give them, or the
    model cannot be asked: the caller falls back to the comparison's own clauses)."""
    if len(sides) != 2:
        return {}, Usage()
    try:
        done = llm.complete(split_request(question, sides))
    except PaperchatError as err:
        log.warning("splitting the comparison failed (%s); each side is asked the comparison's own words", err)
        return {}, Usage()
    return own_questions(done.text, sides, question), done.usage
