"""Numbers bound to the right item: a claim's number that the abstract gives for another item of a
"respectively" list, or for the other of "the larger/smaller", is rebound to the right one."""

from __future__ import annotations

import re

from ..corpus import Paper
from ..text import names, numbers, split_sentences
from .facts import same_number

_LIST_GLUE = re.compile(r"[\s,;%]*(?:and|or)?[\s,]*")



def _number_spans(text: str) -> list[tuple[str, int, int]]:
    """Each number of ``text`` with where it starts and ends.

    >>> _number_spans("from 89.17 to 92.48")
    [('89.17', 5, 10), ('92.48', 14, 19)]
    """
    spans, at = [], 0
    for value in numbers(text):
        start = text.find(value, at)
        if start < 0:
            break
        spans.append((value, start, start + len(value)))
        at = start + len(value)
    return spans



def respectively_pairs(sentence: str) -> dict[str, str]:
    """Numbers paired with the names they belong to in a "... respectively" sentence.

    Only the run of numbers listed together ("15.6% and 9.1%") is paired, so other numbers of
    the sentence ("Gemini 1.0 Pro") are not.

    >>> respectively_pairs("achieving 57.70%, 17.65% and 5.18% improvements over SFT, DPO and GRPO respectively.")
    {'57.70%': 'SFT', '17.65%': 'DPO', '5.18%': 'GRPO'}
    >>> respectively_pairs("On Gemini 1.0 Pro it improves by 15.6% and 9.1% respectively on the MATH and HumanEval benchmarks.")
    {'15.6%': 'MATH', '9.1%': 'HumanEval'}
    """
    text = sentence.replace("\\%", "%")
    if "respectively" not in text.casefold():
        return {}
    spans = _number_spans(text)
    run = spans[-1:]
    for prev in reversed(spans[:-1]):  # the numbers listed together with the last one
        if not _LIST_GLUE.fullmatch(text[prev[2] : run[0][1]]):
            break
        run.insert(0, prev)
    labels = names(text[run[-1][2] :]) if run else []
    if len(run) >= 2 and len(run) == len(labels):
        return dict(zip((v for v, _, _ in run), labels))
    return {}



def rebind_number(claim: str, paper: Paper) -> tuple[str, str] | None:
    """The claim with a number that belongs to another item of a "respectively" list replaced by the
    abstract's number for the one item the claim names, and why (None: nothing to repair).

    >>> p = Paper(id="g", title="GRAO", abstract="GRAO achieves 57.70%, 17.65% and 5.18% gains over SFT, DPO and GRPO respectively.")
    >>> rebind_number("GRAO improves over DPO by 57.70%.", p)
    ('GRAO improves over DPO by 17.65%.', 'the abstract gives 57.70% for SFT and 17.65% for DPO: corrected to 17.65%')
    >>> rebind_number("GRAO improves over SFT by 57.70%.", p) is None
    True
    """
    claim_names = set(names(claim))
    values = numbers(claim)
    for sentence in split_sentences(paper.abstract):
        pairs = respectively_pairs(sentence)
        named = claim_names & set(pairs.values())
        listed = [v for v in values if any(same_number(v, n) for n in pairs)]
        if len(named) != 1 or len(listed) != 1:
            continue
        (label,) = named
        given = next(n for n in pairs if same_number(listed[0], n))
        if pairs[given] == label:
            return None
        right = next(n for n, lab in pairs.items() if lab == label)
        value = listed[0]
        # keep the claim's own way of writing a percentage ("17.65%" for "17.65\\%")
        fixed_value = right if value.endswith("%") or not right.endswith("%") else right.rstrip("%")
        fixed = re.sub(rf"(?<![\w.]){re.escape(value)}(?![\w])", fixed_value, claim, count=1)
        if fixed == claim:
            return None
        return fixed, f"the abstract gives {given} for {pairs[given]} and {right} for {label}: corrected to {right}"
    return None



_SIZE_WORDS = {
    "larger": max, "largest": max, "bigger": max, "biggest": max,
    "smaller": min, "smallest": min,
}

_SIZE_PHRASE = re.compile(r"\b(larger|largest|bigger|biggest|smaller|smallest)\s+(?:of\s+the\s+)?[a-z][\w\-]*", re.IGNORECASE)

_MAGNITUDE = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}



def magnitude(value: str) -> tuple[float, str] | None:
    """A number as written with its scale suffix read ("1B" is 1e9), and its kind ("%" or ""), or None.

    >>> magnitude("500M"), magnitude("1.5B"), magnitude("12%"), magnitude("v2")
    ((500000000.0, ''), (1500000000.0, ''), (12.0, '%'), None)
    """
    m = re.fullmatch(r"(\d+(?:[.,]\d+)*)\s*([kKmMbBtT]?)(%?)", value.strip())
    if m is None:
        return None
    return float(m.group(1).replace(",", "")) * _MAGNITUDE[m.group(2).lower()], m.group(3)

_AMOUNT = re.compile(r"(?<![\w.\-])\d+(?:[.,]\d+)*(?:\s*[kKmMbBtT](?![\w])|\s*%|(?![\w.%]))")



def _amount_spans(text: str) -> list[tuple[str, int, int]]:
    """Each amount of ``text`` (a number, with its scale suffix or percent sign) with where it starts and ends.

    >>> _amount_spans("with 500M and 1B examples, 12% of GPT-4")
    [('500M', 5, 9), ('1B', 14, 16), ('12%', 27, 30)]
    """
    return [(m.group(0), m.start(), m.end()) for m in _AMOUNT.finditer(text)]



def rebind_extreme(claim: str, paper: Paper) -> tuple[str, str] | None:
    """The claim with its one number replaced when it names "the larger/smaller X" but gives a number that
    the abstract lists together with a larger (smaller) one of the same kind, and why.

    >>> p = Paper(id="r", title="T", abstract="We use two datasets with 500M and 1B training examples respectively.")
    >>> rebind_extreme("Its larger dataset has 500M training examples.", p)
    ('Its larger dataset has 1B training examples.', 'the abstract lists 500M and 1B: the larger is 1B: corrected to 1B')
    >>> rebind_extreme("Its larger dataset has 1B training examples.", p), rebind_extreme("It uses 500M examples.", p)
    (None, None)
    """
    asked = _SIZE_PHRASE.search(claim)
    values = [v for v, _, _ in _amount_spans(claim)]
    if asked is None or len(values) != 1:
        return None
    value = values[0]
    pick = _SIZE_WORDS[asked.group(1).lower()]
    for sentence in split_sentences(paper.abstract):
        text = sentence.replace("\\%", "%")
        spans = _amount_spans(text)
        at = next((i for i, (v, _, _) in enumerate(spans) if same_number(value, v)), None)
        if at is None:
            continue
        run = [at]  # the numbers listed together with it ("500M and 1B")
        while run[0] > 0 and _LIST_GLUE.fullmatch(text[spans[run[0] - 1][2] : spans[run[0]][1]]):
            run.insert(0, run[0] - 1)
        while run[-1] + 1 < len(spans) and _LIST_GLUE.fullmatch(text[spans[run[-1]][2] : spans[run[-1] + 1][1]]):
            run.append(run[-1] + 1)
        listed = [(magnitude(spans[i][0]), spans[i][0]) for i in run]
        kinds = {m[1] for m, _ in listed if m is not None}
        if len(listed) < 2 or None in (m for m, _ in listed) or len(kinds) != 1:
            continue
        right = pick(listed, key=lambda item: item[0][0])[1]
        if same_number(right, value):
            return None
        fixed = re.sub(rf"(?<![\w.]){re.escape(value)}(?![\w])", right, claim, count=1)
        word = "larger" if pick is max else "smaller"
        shown = " and ".join(v for _, v in listed)
        return (fixed, f"the abstract lists {shown}: the {word} is {right}: corrected to {right}") if fixed != claim else None
    return None
