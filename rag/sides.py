"""The two sides of a comparison question, and the question asked of each side alone."""

from __future__ import annotations

import re

from .listing import GENERIC_NAMES
from .text import content_words, fold, names, proper_nouns


def comparison_sides(question: str) -> list[str]:
    """The two things a comparison question names (names, quoted titles or capitalised terms).

    >>> comparison_sides("Does SPARK or SPELL report a higher accuracy?")
    ['SPARK', 'SPELL']
    >>> comparison_sides('Compare "Music Transformer" and Self-RAG on what they generate.')
    ['Music Transformer', 'Self-RAG']
    >>> comparison_sides("Which is better?")
    []
    """
    two = asked_sides(question)
    if two:  # "which dataset did FooNet use, and which one did BarGAN use?": one ask of each
        return [side for side, _ in two]
    quoted = re.findall(r"[\"“]([^\"”]{3,120})[\"”]", question)
    if not quoted:
        by_clause = _clause_sides(question)
        if by_clause:
            return by_clause
    found = [q.strip() for q in quoted]
    rest = re.sub(r"[\"“][^\"”]{3,120}[\"”]", " ", question)
    found += [n for n in _side_names(rest) if not any(fold(n) in fold(f) for f in found)]
    return list(dict.fromkeys(found))[:2] if len(found) >= 2 else []


_GENERIC_SIDES = {"LLM", "LLMs", "RL", "AI", "GPU", "GPUs", "F1", "QA", "SOTA", "VLM", "VLMs"}
_QUESTION_WORDS = {"does", "do", "did", "is", "are", "was", "were", "compare", "which", "what", "how", "who", "has", "have"}
# where a comparison turns from its first side to its second, strongest first
_SIDE_SPLITS = (r",?\s+or\s+", r"\s+(?:versus|vs\.?)\s+", r"\s+(?:compared?|comparing)\s+(?:with|to)\s+|\s+against\s+", r"\s+and\s+")


def _side_names(text: str) -> list[str]:
    """Names in ``text`` as comparison sides: a run of capitalised words ("Music Transformer") is one."""
    found: list[str] = []
    for token in names(text) + proper_nouns(text):
        if token in _GENERIC_SIDES or any(fold(token) in fold(f) for f in found):
            continue
        run = re.search(rf"(?:\b[A-Z][\w\-]*\s+)*{re.escape(token)}(?:\s+[A-Z][\w\-]*)*", text)
        words = (run.group(0) if run else token).split()
        while len(words) > 1 and words[0].lower() in _QUESTION_WORDS:
            words = words[1:]
        found.append(" ".join(words))
    # "SCoRe's gain on MATH": the possessor is the side, the benchmark is not
    owners = [f for f in found if re.search(rf"{re.escape(f)}['’]s\b", text)]
    return owners + [f for f in found if f not in owners]


def _side_of(segment: str) -> str | None:
    """The side one clause of a comparison is about: its first name, else its description."""
    named = _side_names(segment)
    if named:
        return named[0]
    words = segment.strip(" ?.!,;:").split()
    while words and words[0].lower() in _QUESTION_WORDS | {"the", "a", "an", "that", "this", "one", "of"}:
        words = words[1:]
    # a description ("the sparse audio denoising paper") needs two words of substance
    return " ".join(words) if len(words) <= 8 and len(content_words(" ".join(words))) >= 2 else None


def _clause_split(question: str) -> tuple[str, str, str, str] | None:
    """(head, first clause, second clause, tail) around the word that turns a comparison to its second side."""
    for pattern in _SIDE_SPLITS:
        parts = re.split(pattern, question, maxsplit=1, flags=re.IGNORECASE)
        if len(parts) != 2:
            continue
        cut = max(parts[0].rfind(c) for c in ":,;") + 1
        head, left = parts[0][:cut], parts[0][cut:]
        right = re.split(r"[,:;?]|\s+(?:both|each|respectively|in terms of|when|if)\b", parts[1])[0]
        return head, left.strip(), right.strip(), parts[1][len(right) :]
    return None


def _clause_sides(question: str) -> list[str]:
    """The two sides read from the clauses around "or" / "versus" / "compared with" / "and".

    >>> _clause_sides("Who reports the larger speed-up: FooNet over BarNet, or QuxGAN over its strongest baseline?")
    ['FooNet', 'QuxGAN']
    >>> _clause_sides("How does FooNet's gain on BarBench compare with QUX-TUNE's gain on translation tasks?")
    ['FooNet', 'QUX-TUNE']
    >>> _clause_sides("Which uses more images: the crop-disease study's larger dataset or FooNet-Lite?")
    ["crop-disease study's larger dataset", 'FooNet-Lite']
    """
    split = _clause_split(question)
    if split is None:
        return []
    a, b = _side_of(split[1]), _side_of(split[2])
    if a and b and fold(a) != fold(b) and not (a in _GENERIC_SIDES or b in _GENERIC_SIDES):
        return [a, b]
    return []


_CLAUSE_TURN = re.compile(
    r",?\s+and\s+(?=(?:what|how|which|why|when|who|where|does|do|did|is|are|was|were|can|by how)\b)", re.IGNORECASE
)
# "the sparse audio denoising paper", "the FooNet paper": a paper named or described by its kind
_PAPER_PHRASE = re.compile(r"\bthe ((?:[\w\-']+\s+){0,5}?[\w\-']+)\s+(?:paper|study|work|framework|method|system)\b", re.IGNORECASE)
_EACH = re.compile(r"\beach(?: of them| one)?\b", re.IGNORECASE)


def _clause_side(clause: str) -> str | None:
    """The paper one ask of a question is about: "the X paper/study" (its name, else its description), else the
    first name the ask uses; None when it names nothing ("how much less data does it use")."""
    described = _PAPER_PHRASE.search(clause)
    if described:
        inner = described.group(1)
        named = [n for n in names(inner) if n not in _GENERIC_SIDES]
        if named:
            return named[0]
        return inner if len(content_words(inner)) >= 2 else None
    found = [n for n in names(clause) + proper_nouns(clause) if n not in _GENERIC_SIDES and n.upper() not in GENERIC_NAMES]
    return min(found, key=clause.find) if found else None


def _as_question(text: str) -> str:
    text = " ".join(text.split()).strip(" ,;.?")
    return text[:1].upper() + text[1:] + "?"


def asked_sides(question: str) -> list[tuple[str, str]]:
    """For a question that asks one thing of each of two papers: each paper's side (a name or a description) and
    the question asked of it alone; [] otherwise.

    >>> asked_sides("which dataset did FooNet use, and which one did BarGAN use to tune its prompts?")
    [('FooNet', 'Which dataset did FooNet use?'), ('BarGAN', 'Which dataset did BarGAN use to tune its prompts?')]
    >>> asked_sides("FOO-TUNE and BARNET both learn from synthetic images. What speed-ups does each report?")
    [('FOO-TUNE', 'What speed-ups does FOO-TUNE report?'), ('BARNET', 'What speed-ups does BARNET report?')]
    >>> asked_sides("How fast is QuxNet, and how many layers does it stack?")  # two asks of one paper
    []
    """
    turn = _CLAUSE_TURN.search(question)
    if turn:
        left, right = question[: turn.start()], question[turn.end() :]
        left = re.split(r"(?<=[.?!:])\s+", left.strip())[-1]  # "FooNet vs Bar: how much …": the ask, not its heading
        a, b = _clause_side(left), _clause_side(right)
        if not a or not b or fold(a) in fold(b) or fold(b) in fold(a):
            return []
        asked = re.match(r"\s*(?:what|which)\s+([a-z][\w\-]*)", left, re.IGNORECASE)
        if asked:  # "…, and which one did BarGAN use": one is the thing the first ask named
            right = re.sub(r"^(which|what) one\b", lambda m: f"{m.group(1)} {asked.group(1)}", right.strip(), flags=re.IGNORECASE)
        return [(a, _as_question(left)), (b, _as_question(right))]
    sentences = re.split(r"(?<=[.?!])\s+", question.strip())
    if len(sentences) >= 2 and _EACH.search(sentences[-1]):
        sides = comparison_sides(" ".join(sentences[:-1]))
        if len(sides) == 2:
            return [(side, _as_question(_EACH.sub(side, sentences[-1]))) for side in sides]
    return []


def side_questions(question: str) -> list[str]:
    """The comparison asked of each side alone (for drafting one side at a time); [] if the clauses do not part.

    >>> side_questions("Which reports the bigger speed-up: FOO-TUNE on vision tasks or BarNet on CodeBench?")
    ['Which reports the bigger speed-up: FOO-TUNE on vision tasks?', 'Which reports the bigger speed-up: BarNet on CodeBench?']
    >>> side_questions("How does FooNet's gain on BarBench compare with QUX-TUNE's gain on translation tasks?")
    ["What is FooNet's gain on BarBench?", "What is QUX-TUNE's gain on translation tasks?"]
    """
    two = asked_sides(question)
    if two:
        return [asked for _, asked in two]
    split = _clause_split(question)
    if split is None or not _clause_sides(question):
        return []
    head, left, right, tail = split
    tail = tail.strip()
    out = []
    for clause in (left, right):
        if head:
            text = f"{head.strip()} {clause} {tail}"
        elif re.match(r"(how (much|many|far|long)|what|which|who)\b", clause, re.IGNORECASE):
            text = f"{clause} {tail}"
        else:
            words = clause.split()
            while words and words[0].lower() in _QUESTION_WORDS:
                words = words[1:]
            clause = " ".join(words)
            text = f"{clause} {tail}" if len(tail.split()) > 3 else f"What is {clause}?"
        text = re.sub(r"\s+([?:,;.])", r"\1", " ".join(text.split())).rstrip(" ?.") + "?"
        out.append(text)
    return out


def clause_questions(question: str) -> dict[str, str]:
    """Each side's own clause of a comparison as a question, where the question gives each side its own ask
    (:func:`asked_sides`) or a shared head ("Which is faster: FooNet on phones or BarGAN on laptops?"); {} else.

    >>> clause_questions("Which is faster: FooNet on phones or BarGAN on laptops?")
    {'FooNet': 'Which is faster: FooNet on phones?', 'BarGAN': 'Which is faster: BarGAN on laptops?'}
    >>> clause_questions("How do FooNet and BarGAN differ in speed?")
    {}
    """
    two = asked_sides(question)
    if two:
        return dict(two)
    split = _clause_split(question)
    if split is None or not split[0].strip():
        return {}
    return dict(zip(comparison_sides(question), side_questions(question)))


# ", and what …" (where the ask turns, :data:`_CLAUSE_TURN`) or a second question after a first
_SECOND_ASK = re.compile(rf"{_CLAUSE_TURN.pattern}|\?\s+\S.*\?", re.IGNORECASE)


def second_ask(question: str) -> str:
    """The second of two things ``question`` asks, from the word that turns to it ('' when it asks one thing).

    >>> second_ask("Which paper argues X, and what do they learn beyond it?")
    ', and what do they learn beyond it?'
    """
    turn = _SECOND_ASK.search(question)
    return question[turn.start() :] if turn else ""


def two_asks(question: str) -> bool:
    """Whether ``question`` asks two things at once ("Which paper …, and what do they …?").

    >>> two_asks("Which paper argues X, and what do they learn beyond it?"), two_asks("What do A and B share?")
    (True, False)
    """
    return _SECOND_ASK.search(question) is not None

