"""The answering pipeline: question -> retrieval -> draft -> self-critique -> answer."""

from __future__ import annotations

import re

from .errors import QuestionError, QuestionTooLongError

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffe\uffff]")


def check_question(question: object, max_chars: int) -> str:
    """The question cleaned of control characters and extra spaces; raises QuestionError if unusable.

    >>> check_question("  What is\\x00 SPELL?\\n", 100)
    'What is SPELL?'
    """
    if isinstance(question, bytes):
        question = question.decode("utf-8", errors="replace")
    if not isinstance(question, str):
        raise QuestionError("The question must be text. Send it as a string, e.g. {\"question\": \"What is SPELL?\"}.")
    text = " ".join(_CONTROL.sub(" ", question).split())
    if not text:
        raise QuestionError("The question is empty. Type a question about the papers, e.g. \"What does SPELL propose?\".")
    if len(text) > max_chars:
        raise QuestionTooLongError(len(text), max_chars)
    return text
