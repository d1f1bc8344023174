"""The question's own premise: a number it takes for granted that the paper it names does not give, or gives
with the opposite direction ("70% more data" where the abstract has "70% less")."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .. import prompts
from ..corpus import Paper
from ..shapes import alias, mentions, short_name
from ..text import NUMBER_WORDS, content_words, fold, name_in, names, number_in, split_sentences
from .binding import respectively_pairs
from .claims import ClaimCheck, Source
from .facts import after_value, figures, near, paper_sentences

# Direction words that say the opposite of each other about the same amount; each word is read in its plain form
# (:func:`_direction`). Only exact opposites count: "40% faster" and "reduces latency by 40%" do not disagree.
OPPOSITES = frozenset(
    frozenset(pair)
    for pair in (
        ("more", "less"), ("more", "fewer"), ("higher", "lower"), ("larger", "smaller"), ("bigger", "smaller"),
        ("greater", "smaller"), ("faster", "slower"), ("better", "worse"), ("longer", "shorter"),
        ("increase", "decrease"), ("increase", "reduce"), ("improve", "degrade"), ("above", "below"),
        ("gain", "loss"), ("outperform", "underperform"), ("up", "down"),
    )
)
_WORDS = {w for pair in OPPOSITES for w in pair}
_FORMS = re.compile(r"^(increas|decreas|reduc|improv|degrad|outperform|underperform|gain|loss)\w*$")
_MULTIPLIER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?[x×](?!\w)")  # "3x faster", which :func:`figures` leaves out
_PLAIN = {"increas": "increase", "decreas": "decrease", "reduc": "reduce", "improv": "improve", "degrad": "degrade"}


def _direction(word: str) -> str | None:
    """The plain form of a direction word ("reduced" -> "reduce", "gains" -> "gain"), or None."""
    word = fold(word).strip(".,;:()[]\"'")
    m = _FORMS.match(word)
    if m:
        word = _PLAIN.get(m.group(1), m.group(1))
    return word if word in _WORDS else None


def directions(value: str, sentence: str) -> dict[str, int]:
    """The direction words within two words after or four before ``value`` in ``sentence``, each with its word
    position ({} when the value is absent).

    >>> directions("70%", "STIC gains 4.0% on average while using 70% less supervised data.")
    {'less': 8}
    >>> directions("12%", "It reduces the error by 12% overall.")
    {'reduce': 1}
    """
    words = sentence.split()
    found: dict[str, int] = {}
    for at in _places(value, words):
        for i in [*range(at + 1, min(len(words), at + 3)), *range(max(0, at - 4), at)]:
            d = _direction(words[i])
            if d:
                found.setdefault(d, i)
    return found


def _places(value: str, words: Sequence[str]) -> list[int]:
    """Where the amount ``value`` stands among ``words`` ("70%" in "70%", "(30B)" or "MPT-30B")."""
    key = fold(value).rstrip("%")
    return [i for i, w in enumerate(words) if number_in(key, w) or fold(value) == fold(w).strip(".,;:()")]


def _span(words: list[str], value: str, at: int, extend: set[str] = frozenset()) -> str:
    """The words from ``value``'s place nearest ``at`` to the direction word at ``at``, without their punctuation,
    then the words after that ``extend`` holds (at most three): "70% less labelled data"."""
    near_at = min(_places(value, words), key=lambda i: abs(i - at))
    start, end = min(at, near_at), max(at, near_at) + 1
    while end < len(words) and end - at <= 3 and content_words(words[end]) and set(content_words(words[end])) <= extend:
        end += 1
    return " ".join(w.strip(".,;:()[]\"'") for w in words[start:end])


def reversed_premise(question: str, paper: Paper) -> tuple[str, str, str, str] | None:
    """(the amount, the question's direction word, the question's words for it, the abstract's) when ``paper``
    states the question's amount with the opposite direction word and never with the question's own, else None.

    >>> foo = Paper(id="f", title="FooNet", abstract="FooNet trains with 70% less labelled data than BarNet.")
    >>> reversed_premise("Why does FooNet need 70% more labelled data than BarNet?", foo)
    ('70%', 'more', '70% more', '70% less labelled data')
    >>> reversed_premise("Why does FooNet need 70% less labelled data?", foo) is None
    True
    """
    sentences = [s for s in split_sentences(paper.abstract) if s]
    for value in dict.fromkeys(figures(question) + _MULTIPLIER.findall(question)):
        asked = directions(value, question)
        stated = [(s, directions(value, s)) for s in sentences if number_in(value, s)]
        said = {d for _, ds in stated for d in ds}
        for mine, place in asked.items():
            if mine in said:
                break
            for sentence, ds in stated:
                other = next((d for d in ds if frozenset((mine, d)) in OPPOSITES), None)
                if other is not None:
                    right = _span(sentence.split(), value, ds[other], set(content_words(question)))
                    return value, mine, _span(question.split(), value, place), right
    return None


def repeating(question: str, paper: Paper, claims: Sequence[ClaimCheck]) -> list[ClaimCheck]:
    """The ``claims`` that repeat the question's premise about ``paper``: an amount stated the way the question turned
    it (:func:`reversed_premise`), or a count the abstract does not give (written in words, which the claim checks do
    not read as numbers: "after five rounds" where the abstract has three).

    >>> foo = Paper(id="f", title="FooNet", abstract="FooNet is trained over three rounds.")
    >>> [c.text for c in repeating("Why did FooNet need five rounds?", foo,
    ...                            [ClaimCheck(text="FooNet needed five rounds."), ClaimCheck(text="FooNet trains in rounds.")])]
    ['FooNet needed five rounds.']
    """
    turned = reversed_premise(question, paper)
    if turned:
        return [c for c in claims if turned[1] in directions(turned[0], c.text)]
    unstated = [w for w in counted_in_words(question) if not number_in(_DIGITS[fold(w)], paper.abstract)]
    return [c for c in claims if any(re.search(rf"\b{w}\b", c.text, re.IGNORECASE) for w in unstated)]


def premise_check(question: str, sources: Sequence[Source], answered: int | None = None) -> ClaimCheck | None:
    """A claim correcting a number of the question that the paper it names (else the one source ``answered``, which
    every kept claim cites, for a question that describes its paper) does not give, or gives the other way
    (:func:`reversed_premise`).

    Asked "What did FooCare's study of 300 patients show?" of an abstract stating "a study of
    212 patients", the answer should say so rather than let the premise stand; the right
    number is the one the abstract gives for the same thing (the word after the question's
    number, within five words, or the item of a "respectively" list the question names).

    >>> foo = Paper(id="f", title="FooCare: Triage", abstract="In a cohort study of 212 patients, we see fewer errors.")
    >>> premise_check("What did FooCare's study of 300 patients show?", [Source(1, foo, [])]).text
    "FooCare's abstract gives 212 patients, not 300."
    >>> premise_check("What did FooCare's study of 212 patients show?", [Source(1, foo, [])]) is None
    True
    """
    def named(src: Source) -> bool:
        other = alias(src.paper)
        return mentions(question, src.paper) or bool(other and name_in(other, question))

    papers = [s for s in sources if named(s)] or [s for s in sources if s.n == answered]
    if len(papers) != 1:
        return None
    source = papers[0]
    paper = source.paper
    name = short_name(paper.title) if mentions(question, paper) else alias(paper) or short_name(paper.title)
    turned = reversed_premise(question, paper)
    if turned is not None:
        wrong, right = turned[2:]
        return ClaimCheck(
            text=prompts.PREMISE_REVERSED.format(name=name, right=right, wrong=wrong), cited=[source.n],
            sources=[source.n], verdict="supported", reasons=[f"the question's {wrong!r} is the other way in {name}'s abstract"],
        )
    for value in [*figures(question), *counted_in_words(question)]:
        spelled = not value[0].isdigit()
        if number_in(_DIGITS.get(fold(value), value), source.text) or fold(value) in fold(source.text):
            continue
        before = question[: question.find(value)].split()
        if before and before[-1][:1].isupper() and len(before) > 1:
            continue  # part of a name: "Llama 2", "Gemini 1.5"
        after = question[question.find(value) + len(value):]
        unit = next(iter(content_words(" ".join(after.split()[:3]))), None)
        label = next((n for n in names(after) if not mentions(n, paper)), None)
        found = _in_its_place(value, question, paper) or _same_thing(paper, unit, label)
        if spelled and len(found) != 1:
            continue  # "what two tricks …" counts what the question asks for: only another count of it is a premise
        support = None
        if len(found) == 1:
            right, support = next(iter(found.items()))
            asked = set(content_words(" ".join(after.split()[:4])))
            tail = []  # the abstract's words for the thing counted, as far as the question uses them too
            for word in after_value(right, support, 3).split():
                if not content_words(word) or not set(content_words(word)) <= asked:
                    break
                tail.append(word.strip(".,;:()"))
            shown = " ".join([right, *tail])
            text = prompts.PREMISE_CORRECTED.format(name=name, right=shown, value=value)
        else:
            text = prompts.PREMISE_UNSTATED.format(name=name, value=value)
        return ClaimCheck(
            text=text, cited=[source.n], sources=[source.n], verdict="supported", support=support,
            reasons=[f"the question's {value} is not in the abstract of {name}"],
        )
    return None


# a count written in words before a plural noun ("five iterations"), not "one" (as in "one model")
_COUNTED_IN_WORDS = re.compile(r"\b(" + "|".join(NUMBER_WORDS.values()) + r")\s+(?=[a-z][\w\-]*s\b)", re.IGNORECASE)
_DIGITS = {w: d for d, w in NUMBER_WORDS.items()}


def counted_in_words(text: str) -> list[str]:
    """The counts ``text`` writes in words before a plural noun, each once.

    >>> counted_in_words("After five iterations and two stages, one model wins.")
    ['five', 'two']
    """
    return list(dict.fromkeys(m.group(1) for m in _COUNTED_IN_WORDS.finditer(text)))


def _in_its_place(value: str, question: str, paper: Paper) -> dict[str, str]:
    """The number ``paper`` gives where the question has ``value``: after the same two words, when one of them is a
    number ("from 61.0% to ___"), with its sentence ({} when the abstract has no such place).

    >>> p = Paper(id="m", title="Tally", abstract="Tally raises top-1 accuracy from 61.0% to 74.5% on CrowdCount.")
    >>> _in_its_place("80.2%", "Tally raised top-1 accuracy from 61.0% to 80.2%: and on NightCrowd?", p)
    {'74.5%': 'Tally raises top-1 accuracy from 61.0% to 74.5% on CrowdCount.'}
    >>> q = Paper(id="q", title="Quill", abstract="We test Quill on two corpora of 300M and 2B tokens respectively.")
    >>> _in_its_place("8B", "Quill was tested on corpora of 300M and 8B tokens: how?", q)
    {'2B': 'We test Quill on two corpora of 300M and 2B tokens respectively.'}
    """
    words = question.split()
    at = next((i for i, w in enumerate(words) if value in w), None)
    lead = words[max(0, at - 2) : at] if at is not None else []
    if len(lead) < 2 or not any(figures(w) for w in lead):
        return {}
    # the number with its percent sign or scale letter ("1B", not "1")
    place = re.compile(r"\s+".join(re.escape(w) for w in lead) + r"\s+(\d[\d.,]*(?:%|[KMBT](?![\w\-]))?)")
    for sentence in paper_sentences(paper):
        m = place.search(sentence)
        if m and not number_in(value, m.group(1)):
            return {m.group(1).rstrip(".,"): sentence}
    return {}


def _same_thing(paper: Paper, unit: str | None, label: str | None) -> dict[str, str]:
    """The numbers ``paper`` gives for the thing a question's number counts (``unit``, the word after it, or the
    item ``label`` of a "respectively" list), each with its sentence: the ones right before the unit word when
    there are such, else those within five words of it (none when several stand right before it)."""
    beside: dict[str, str] = {}  # numbers with the unit word right after them: "86 participants"
    around: dict[str, str] = {}  # numbers with the unit word within five words
    for sentence in paper_sentences(paper):
        pairs = respectively_pairs(sentence)
        for number, item in pairs.items():
            if label and item == label:
                beside.setdefault(number, sentence)
        if pairs and label:
            continue
        for number in [*figures(sentence), *counted_in_words(sentence)]:
            if unit and unit in content_words(after_value(number, sentence, 2)):
                beside.setdefault(number, sentence)
            elif unit and unit in content_words(near(number, sentence, 5)):
                around.setdefault(number, sentence)
    return beside if len(beside) == 1 else around if not beside else {}
