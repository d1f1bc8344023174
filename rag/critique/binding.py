"""Numbers bound to the right item: a claim's number that the abstract gives for another item, another kind of
figure (a gain for a score) or the other extreme is rebound or flagged; listing fields (authors, votes) and
the subject a claim's facts belong to."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..corpus import Paper
from ..shapes import mentions, short_name
from ..text import fold, names, numbers, split_sentences
from .claims import Source
from .facts import paper_sentences, same_number

_AUTHOR_NAMES = re.compile(
    r"\b((first|last|lead|main|corresponding|senior) author|written by|authored by|co-?authored by|by researchers)\b",
    re.IGNORECASE,
)

_LISTING_NUMBER = {
    "authors": re.compile(r"(\d+)\s+(?:co-?)?authors?\b|\bauthors?\W+(?:is|are|was|were|of|:)?\s*(\d+)\b", re.I),
    "upvotes": re.compile(r"(\d+)\s+(?:up-?)?votes?\b|\bupvotes?\W+(?:is|are|was|were|of|:)?\s*(\d+)\b", re.I),
}



def listing_mismatch(claim: str, paper: Paper) -> str | None:
    """Why a claim about the listing's fields (author names, counts) contradicts ``paper``'s record.

    >>> p = Paper(id="x", title="T", abstract="We use 12 GPUs.", authors=8)
    >>> listing_mismatch("T has 12 authors.", p)
    'the listing gives 8 authors, not 12'
    >>> listing_mismatch("T has 8 authors.", p) is None, listing_mismatch("Its first author is Smith.", p)
    (True, 'the listings give no author names')
    """
    if _AUTHOR_NAMES.search(claim):
        return "the listings give no author names"
    for attr, pattern in _LISTING_NUMBER.items():
        actual = getattr(paper, attr)
        for m in pattern.finditer(claim):
            value = int(m.group(1) or m.group(2))
            if actual is None:
                return f"the listing gives no {attr}"
            if value != actual:
                return f"the listing gives {actual} {attr}, not {value}"
    return None



def wrong_subject(claim: str, chosen: Sequence[int], by_n: dict[int, Source]) -> str | None:
    """Why a claim that names one paper but takes its facts from another is wrong (swapped sides).

    >>> a = Source(1, Paper(id="a", title="SPARK: Rewards", abstract="SPARK reaches 67.5 F1."), [])
    >>> b = Source(2, Paper(id="b", title="SPELL: Self-play", abstract="SPELL reaches 60.1 F1."), [])
    >>> wrong_subject("SPARK reaches 60.1 F1.", [2], {1: a, 2: b})
    'it is about SPARK [1], but its facts are from source [2]'
    >>> wrong_subject("SPELL reaches 60.1 F1.", [2], {1: a, 2: b}) is None
    True
    """
    named = [n for n, src in by_n.items() if mentions(claim, src.paper)]
    if not named or set(named) & set(chosen):
        return None
    # a paper named only as the baseline of the chosen one is fine ("SPELL beats SPARK")
    if any(mentions(by_n[c].text, by_n[n].paper) for c in chosen for n in named):
        return None
    who = ", ".join(f"{short_name(by_n[n].paper.title)} [{n}]" for n in named)
    return f"it is about {who}, but its facts are from source {', '.join(f'[{c}]' for c in chosen)}"

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



def number_bound_elsewhere(claim: str, paper: Paper) -> str | None:
    """Why a number of the claim belongs to another thing in the abstract ("respectively" lists).

    >>> p = Paper(id="g", title="GRAO", abstract="GRAO achieves 57.70%, 17.65% and 5.18% gains over SFT, DPO and GRPO respectively.")
    >>> number_bound_elsewhere("GRAO improves over DPO by 57.70%.", p)
    'the abstract gives 57.70% for SFT, not for DPO'
    >>> number_bound_elsewhere("GRAO improves over DPO by 17.65%.", p) is None
    True
    """
    claim_names = set(names(claim))
    for sentence in split_sentences(paper.abstract):
        pairs = respectively_pairs(sentence)
        labels = set(pairs.values())
        for value in numbers(claim):
            for number, label in pairs.items():
                if same_number(value, number):
                    others = (claim_names & labels) - {label}
                    if others and label not in claim_names:
                        return f"the abstract gives {number} for {label}, not for {', '.join(sorted(others))}"
    return None



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



def rebind_relative(claim: str, paper: Paper) -> tuple[str, str] | None:
    """The claim with its one number replaced when it calls an absolute figure "relative": the abstract's
    sentence gives the relative figure beside it ("by 23% (a 51% relative increase)"), and why.

    A number listed with others ("57.70%, 17.65% and 5.18% relative improvements") shares the qualifier.

    >>> p = Paper(id="p", title="T", abstract="It outperforms them by 23% (a 51% relative increase).")
    >>> rebind_relative("It reports a 23% relative increase.", p)
    ('It reports a 51% relative increase.', 'the abstract calls 51% the relative figure, not 23%: corrected to 51%')
    >>> rebind_relative("It reports a 51% relative increase.", p), rebind_relative("It wins by 23%.", p)
    (None, None)
    """
    values = numbers(claim)
    if "relative" not in fold(claim) or len(values) != 1:
        return None
    value = values[0]
    for sentence in paper_sentences(paper):
        text = sentence.replace("\\%", "%")
        spans = _number_spans(text)
        if not any(same_number(value, v) for v, _, _ in spans):
            continue
        relative = [v for i, (v, _, _) in enumerate(spans) if _qualified(text, spans, i, "relative")]
        if len(relative) != 1 or any(same_number(value, v) for v in relative):
            return None
        right = relative[0]
        fixed = re.sub(rf"(?<![\w.]){re.escape(value)}(?![\w])", right, claim, count=1)
        return (fixed, f"the abstract calls {right} the relative figure, not {value}: corrected to {right}") if fixed != claim else None
    return None



def _qualified(text: str, spans: list[tuple[str, int, int]], i: int, word: str) -> bool:
    """Whether the ``i``-th number of ``text`` (or the list it ends) is followed by ``word`` ("51% relative")."""
    j = i
    while j + 1 < len(spans) and _LIST_GLUE.fullmatch(text[spans[j][2] : spans[j + 1][1]]):
        j += 1  # "57.70%, 17.65% and 5.18% relative": the qualifier after the list's last number
    upto = spans[j + 1][1] if j + 1 < len(spans) else len(text)
    return bool(re.match(rf"\W{{0,3}}(?:[a-z\-]+\W+)?{word}\b", text[spans[j][2] : upto], re.IGNORECASE))

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
