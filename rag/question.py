"""A question and its conversation as the pipeline takes them: control characters gone, spaces collapsed, lengths capped."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from .errors import QuestionError, QuestionTooLongError

_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f\ufffe\uffff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
#: Longest earlier turn kept when rewriting a follow-up.
MAX_TURN_CHARS = 4000


def clean_history(history: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    r"""Earlier turns as (role, text) with unknown roles dropped and text cleaned and capped.

    >>> clean_history([("user", "hi\x00 there"), ("system", "x"), ("assistant", "yes")])
    [('user', 'hi there'), ('assistant', 'yes')]
    """
    out = []
    for turn in history:
        if len(turn) != 2 or turn[0] not in ("user", "assistant") or not isinstance(turn[1], str):
            continue
        text = " ".join(_CONTROL.sub(" ", _SURROGATE.sub("\ufffd", turn[1])).split())[:MAX_TURN_CHARS]
        out.append((turn[0], text))
    return out


#: Characters that are letters or symbols to Unicode but print as nothing (Hangul fillers, the blank braille cell).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5")


def check_question(question: object, max_chars: int) -> str:
    """The question cleaned of control characters and extra spaces; raises QuestionError if unusable.

    >>> check_question("  What is\\x00 SPELL?\\n", 100)
    'What is SPELL?'
    """
    if isinstance(question, bytes):
        question = question.decode("utf-8", errors="replace")
    if not isinstance(question, str):
        raise QuestionError('The question must be text. Send it as a string, e.g. {"question": "What is SPELL?"}.')
    text = " ".join(_CONTROL.sub(" ", _SURROGATE.sub("\ufffd", question)).split())
    if not any(unicodedata.category(ch)[0] not in "CZ" and ch not in _BLANK_LETTERS for ch in text):  # only invisible left
        text = ""
    if not text:
        raise QuestionError('The question is empty. Type a question about the papers, e.g. "What does SPELL propose?".')
    if len(text) > max_chars:
        raise QuestionTooLongError(len(text), max_chars)
    return text
