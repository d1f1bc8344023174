"""The topic of a list question ("Which papers use sparse attention?"), and the words and phrases a paper of it states."""

from __future__ import annotations

import re

from .text import content_words


def topic_of(question: str) -> str:
    """A list question without its question words: the topic to match papers against.

    >>> topic_of("Which papers in the collection are about reinforcement learning for reasoning?")
    'reinforcement learning for reasoning'
    """
    text = re.sub(
        r"^\s*(which|what|list|name|find|show me|give me|are there|any)( all| the| any| some| other| of these| of those| of the)?"
        r"( papers| works| articles| studies| ones)?( in the collection| here| in this collection)?"
        r"( are| is| that| which| do| does| deal| discuss)*( about| on| with| using| use| study| propose)?\s*",
        "",
        question,
        flags=re.IGNORECASE,
    )
    return text.strip(" ?.!") or question


def topic_parts(topic: str) -> list[str]:
    """The topics of "X or Y" / "X and/or Y" asked together, each on its own.

    >>> topic_parts("medical summarization or segmenting MRI volumes")
    ['medical summarization', 'segmenting MRI volumes']
    >>> topic_parts("self-play")
    ['self-play']
    >>> topic_parts("work with audio, either synthesising it or transcribing it"), topic_parts("prune a net (or layers of it)")
    (['work with audio'], ['prune a net'])
    """
    topic = re.sub(r"\s*\([^)]*\)", "", topic)  # "a net (or layers of it)": an aside, not a topic
    topic = re.sub(r",?\s+(?:either|whether)\b.*$", "", topic)  # "audio, either synthesising it or transcribing it"
    parts = [p.strip(" ,") for p in re.split(r"\s+(?:or|and/or)\s+(?:on\s+|in\s+)?", topic) if p.strip(" ,")]
    return parts or [topic]


def topic_phrases(topic: str, lone_word: bool = False) -> list[str]:
    """The phrases of a list topic that a matching paper may state word for word: runs of two or three
    content words, and single hyphenated terms (and, with ``lone_word``, a topic's only word of five letters or more).

    >>> topic_phrases("speed up decoding with beam search")
    ['beam search']
    >>> topic_phrases("a teacher-student setup")
    ['teacher-student', 'teacher-student setup']
    >>> topic_phrases("segmentation", lone_word=True)  # a whole topic of one word (not a part of "X or Y") is that word
    ['segmentation']
    """
    words = re.findall(r"[A-Za-z][\w\-]*", topic)
    keep = {w for w in words if content_words(w) and w.lower() not in _LIST_FILLER}
    out: list[str] = [w for w in words if "-" in w and w in keep]
    run: list[str] = []
    for w in [*words, ""]:
        if w in keep:
            run.append(w)
            continue
        for n in (2, 3):
            out += [" ".join(run[i : i + n]) for i in range(len(run) - n + 1)]
        run = []
    if lone_word and not out and len(keep) == 1 and len(next(iter(keep))) >= 5:
        out = list(keep)
    return list(dict.fromkeys(out))


def compound_parts(term: str) -> list[str]:
    """The parts of a hyphenated term that are words of their own (five letters or more), or [] when one
    is not: a paper with a "teacher" and a "student" uses a teacher-student setup without writing the compound.

    >>> compound_parts("teacher-student"), compound_parts("self-play"), compound_parts("plug-and-play")
    (['teacher', 'student'], [], [])
    """
    parts = term.lower().split("-")
    ok = len(parts) > 1 and all(len(p) >= 5 and p.isalpha() and content_words(p) for p in parts)
    return parts if ok else []


def lone_word_in(word: str, text: str) -> bool:
    """Whether ``word`` (or its plural) stands in ``text`` as a word of its own, not inside a hyphenated term.

    >>> lone_word_in("teacher", "the teacher is updated"), lone_word_in("teacher", "a teacher-student framework")
    (True, False)
    """
    return re.search(rf"(?<![\w-]){re.escape(word)}s?(?![\w-])", text, re.IGNORECASE) is not None


# verbs and nouns of a list topic that say what a paper does, not what it is about
_LIST_FILLER = {"improve", "improves", "use", "uses", "using", "model", "models", "paper", "papers", "work", "study", "method",
                "deal", "deals", "tackle", "tackles", "address", "addresses", "handle", "handles", "involve", "involves",
                "kind", "kinds", "sort", "sorts", "form", "forms", "type", "types"}


def focus_overlap(question: str, text: str) -> float:
    """Share of the question's content words found in ``text``.

    >>> focus_overlap("self-play for long documents", "SPELL uses self-play on long documents.")
    1.0
    """
    words = set(content_words(question))
    if not words:
        return 0.0
    have = set(content_words(text))
    # "teacher-student" is also found as the words "teacher" and "student" (not as parts of other compounds)
    found = [w in have or ("-" in w and all(part in have for part in w.split("-"))) for w in words]
    return sum(found) / len(words)
