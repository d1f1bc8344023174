"""Question sets: JSONL or CSV rows with ``id, question, answer, keywords, papers, answerable``.

Unknown fields are kept (``extra``); an optional ``type`` breaks metrics down. A bad row
is reported with its line number and skipped; only an unreadable file is fatal.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from paperchat.rag.errors import EvalInputError

KNOWN = ("id", "question", "answer", "keywords", "papers", "answerable", "type", "history")


@dataclass
class QuestionRow:
    """One question of a set."""

    id: str
    question: str
    answer: str = ""
    keywords: list[str] = field(default_factory=list)
    papers: list[str] = field(default_factory=list)
    answerable: bool = True
    type: str = ""
    extra: dict = field(default_factory=dict)
    line: int = 0
    #: earlier turns of a conversation, as the chat keeps them: ("user", question), ("assistant", answer), …
    history: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Problem:
    """A row that was skipped, and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _as_list(value: object, name: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if v.strip()]
    if isinstance(value, str):  # CSV: a JSON list, or items separated by "|" or ";"
        text = value.strip()
        if text.startswith("["):
            try:
                return _as_list(json.loads(text), name)
            except json.JSONDecodeError:
                raise ValueError(f"'{name}' is not a valid JSON list") from None
        sep = "|" if "|" in text else ";"
        return [part.strip() for part in text.split(sep) if part.strip()]
    raise ValueError(f"'{name}' must be a list of strings")


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if value is None or value == "":
        return True
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y"):
        return True
    if text in ("false", "0", "no", "n"):
        return False
    raise ValueError(f"'answerable' must be true or false, not {value!r}")


def row_from_dict(obj: dict, line: int) -> QuestionRow:
    """Validate one row (raises ValueError with the reason)."""
    if not isinstance(obj, dict):
        raise ValueError("a row must be an object with at least 'id' and 'question'")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("missing or empty 'question'")
    rid = obj.get("id")
    rid = str(rid).strip() if rid not in (None, "") else f"line{line}"
    answerable = _as_bool(obj.get("answerable"))
    keywords = _as_list(obj.get("keywords"), "keywords")
    if answerable and not keywords:
        raise ValueError("an answerable question needs 'keywords' to score the answer")
    return QuestionRow(
        id=rid,
        question=question.strip(),
        answer=str(obj.get("answer") or ""),
        keywords=keywords,
        papers=_as_list(obj.get("papers"), "papers"),
        answerable=answerable,
        type=str(obj.get("type") or ""),
        extra={k: v for k, v in obj.items() if k not in KNOWN},
        line=line,
        history=_as_history(obj.get("history")),
    )


def _as_history(value: object) -> list[tuple[str, str]]:
    """A row's ``history`` (a list of ``{"question", "answer"}`` turns) as chat turns.

    >>> _as_history([{"question": "Which papers use FooNet?", "answer": "1. BarNet [1]"}])
    [('user', 'Which papers use FooNet?'), ('assistant', '1. BarNet [1]')]
    """
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(
        isinstance(t, dict) and isinstance(t.get("question"), str) and isinstance(t.get("answer", ""), str) for t in value
    ):
        raise ValueError("'history' must be a list of {\"question\": ..., \"answer\": ...} turns")
    return [turn for t in value for turn in (("user", t["question"]), ("assistant", t.get("answer", "")))]


def load_questions(path: Path) -> tuple[list[QuestionRow], list[Problem]]:
    """Rows of a question set and the problems of the rows that were skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise EvalInputError(f"Cannot read the question set {path} ({err}). Give a UTF-8 .jsonl or .csv file.") from None
    rows: list[QuestionRow] = []
    problems: list[Problem] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "question" not in reader.fieldnames:
            raise EvalInputError(f"{path} has no 'question' column. The header needs id, question, answer, keywords, ...")
        entries = []
        for r in reader:
            entries.append((reader.line_num, r))  # the row's last physical line (cells may span lines)
    else:
        entries = []
        for n, line in enumerate(text.split("\n"), start=1):  # not splitlines(): U+2028 is valid inside JSON
            if not line.strip():
                continue
            try:
                entries.append((n, json.loads(line)))
            except json.JSONDecodeError as err:
                problems.append(Problem(n, f"not valid JSON ({err.msg})"))
    seen: set[str] = set()
    for n, obj in entries:
        try:
            row = row_from_dict(obj, n)
        except ValueError as err:
            problems.append(Problem(n, str(err)))
            continue
        if row.id in seen:
            problems.append(Problem(n, f"duplicate id '{row.id}'"))
            continue
        seen.add(row.id)
        rows.append(row)
    if not rows:
        raise EvalInputError(f"{path} holds no usable questions ({len(problems)} rows skipped).")
    return rows, problems
