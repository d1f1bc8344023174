"""What a question asks for: its shape, and the listing fields it asks about.

Readers ask different kinds of questions, and each needs its own flow (see
:mod:`paperchat.rag.plans`): a fact from one abstract (``factoid``), which paper did something
(``which-paper``), every paper about a topic (``list``), two papers side by side
(``comparison``), or a field of the listing such as the author count (``metadata``).

The rest of what the question is read for lives beside it: the sides of a comparison in
:mod:`paperchat.rag.sides`, the topic of a list in :mod:`paperchat.rag.topics`, and a paper's
listing facts and names in :mod:`paperchat.rag.listing` (their names used elsewhere are
re-exported here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .listing import (
    FIELD_NAMES,
    Field_,
    alias,
    compare_listing,
    display_name,
    field_value,
    introducing,
    listing_date,
    listing_sentence,
    mentions,
    metadata_claim,
    short_name,
)
from .sides import asked_sides, comparison_sides, side_questions, two_asks
from .topics import compound_parts, focus_overlap, lone_word_in, topic_of, topic_parts, topic_phrases

# the names this module held before it was split stay importable from it (rag/critique.py imports some)
__all__ = [
    "FIELD_NAMES", "Field_", "QuestionShape", "Shape", "alias", "asked_sides", "asks_introduced", "asks_listing",
    "classify", "compare_listing", "comparison_sides", "compound_parts", "display_name", "field_value",
    "focus_overlap", "introducing", "listing_date", "listing_field", "listing_field_ok", "listing_fields",
    "listing_sentence", "lone_word_in", "mentions", "metadata_claim", "short_name", "side_questions", "topic_of",
    "topic_parts", "topic_phrases", "two_asks",
]

Shape = Literal["factoid", "which-paper", "list", "comparison", "metadata"]

_LIST = re.compile(
    r"\b(which|what) (other |of the |of these |of those )?(papers|works|articles|studies|ones)\b|\blist (all |the |every )?(papers|works)\b"
    r"|\b(are there|find|name|show me|give me) (any |some |all |the |two |three |several )?(papers|works|studies)\b"
    r"|\b(papers|works) (in the collection |here )?(that|which|about|on|dealing|using|proposing)\b"
    # "how many papers does the survey review?" counts what one paper covers, not the papers that match
    r"|\bhow many papers\b(?!\s+(?:does|do|did|has|have|had)\b)|\bmore than one paper\b|\bseveral papers\b",
    re.IGNORECASE,
)
_COMPARISON = re.compile(
    r"\b(compare[ds]?|comparison|versus|vs\.?|differ(s|ence)?|in contrast)\b"
    r"|\b(higher|lower|better|worse|more|fewer|larger|smaller|faster|slower|bigger|most|best|earlier|later|older|newer)\b.*\b(or|than)\b"
    r"|\bor\b.*\b(higher|lower|better|worse|more|fewer|larger|smaller|faster|slower|bigger)\b"
    r"|\bwhich (one |of the two |of them )?(is|has|was|came|reaches|gets|uses|achieves|reports)\b.*\bor\b"
    r"|\bboth\b.*\band\b|\band\b[^.?]*\b(both|each)\b|^\W*(does|do|did|is|are|was|were|has|have)\b.*\bor\b",
    re.IGNORECASE,
)
#: A phrase about several papers, which no side of a comparison is.
_SEVERAL = re.compile(r"\b(papers|works|studies|articles)\b", re.IGNORECASE)
_WHICH_PAPER = re.compile(
    r"\b(which|what) (paper|work|article|study|method|model|framework|system|approach)\b"
    r"|\b(is there|do you have|find|name) (a|any|the) (paper|work|study|method|model|framework|system|approach)\b"
    r"|\bthe paper (that|which|where)\b|\bwhat is the (name|title) of\b|\bin which paper\b|\bwhich one\b"
    r"|\bwhat(?:'s| is| was) (it|this|that) called\b|\bwhat(?:'s| is) its name\b",
    re.IGNORECASE,
)
_FIELDS: tuple[tuple[Field_, re.Pattern[str]], ...] = (
    ("author_names", re.compile(
        r"\b(who (are|were|is|was) (the )?(first |last |lead |main )?authors?|who (wrote|authored|is behind)"
        r"|(first|last|lead|main|corresponding) author|names? of (the )?authors?|authors'? names)\b",
        re.IGNORECASE)),
    ("authors", re.compile(
        r"\b(how many (authors|co-?authors|writers)|how many (people|researchers)\b(?=[^?]{0,40}\b(wrote|write|authored|"
        r"authors?|listed|behind|contributed|worked on)\b)|(number|count) of (authors|co-?authors)"
        r"|author count|authors? (does|did) .{0,60}\bhave|written by how many)\b",
        re.IGNORECASE)),
    ("upvotes", re.compile(r"\b(up-?votes?|how many votes|votes? (does|did|has)|how popular|likes)\b", re.IGNORECASE)),
    ("date", re.compile(
        r"\b(when (was|were|is|did)\b.{0,80}\b(listed|published|posted|released|appear|added|submitted|come out|out)"
        r"|(what|which) (date|day|month|year)|listing date|date of|dated)\b",
        re.IGNORECASE)),
    ("links", re.compile(
        r"\b(code|github|repository|repo|link|links|url|urls|website|project page|homepage|demo|hugging ?face)\b"
        r".{0,40}\b(available|released|find|where|link|url|get|public|open|published)\b"
        r"|\b(where|is there|any)\b.{0,40}\b(code|github|repository|repo|links?|urls?|website|project page|homepage)\b"
        r"|\b(github|url|link) (of|for|to)\b",
        re.IGNORECASE)),
)


@dataclass(frozen=True)
class QuestionShape:
    """The shape of a question and, for metadata questions, the listing field asked for."""

    shape: Shape
    field: Field_ | None = None


def classify(question: str) -> QuestionShape:
    """The shape of ``question``.

    >>> classify("How many authors are credited on DreamTuner?")
    QuestionShape(shape='metadata', field='authors')
    >>> classify("Who is the first author of SPARK?").field
    'author_names'
    >>> classify("Which papers use Monte Carlo Tree Search?").shape
    'list'
    >>> classify("Does SPARK or SPELL report a higher score?").shape
    'comparison'
    >>> classify("Are there papers on speech synthesis or speech recognition?").shape
    'list'
    >>> classify("Which paper trains a model by self-play on long documents?").shape
    'which-paper'
    >>> classify("How many layers does FooNet prune from its encoder?").shape
    'factoid'
    """
    field = listing_field(question)
    sides = comparison_sides(question) if _COMPARISON.search(question) else []
    # each side of a comparison is one paper: "papers on X or Y" asks for every paper of either topic
    sides = [] if any(_SEVERAL.search(side) for side in sides) else sides
    if len(sides) == 2 or asked_sides(question):
        return QuestionShape("comparison", field)
    if field:
        return QuestionShape("metadata", field)
    if _LIST.search(question):
        return QuestionShape("list")
    if _WHICH_PAPER.search(question):
        return QuestionShape("which-paper")
    return QuestionShape("factoid")


def listing_field(question: str) -> Field_ | None:
    """The listing field a question asks about, if any.

    >>> listing_field("Does FooNet or BarGAN have more authors?"), listing_field("What does FooNet do?")
    ('authors', None)
    """
    if re.search(r"\b(more|fewer|most|least) (authors|co-?authors)\b|\bauthors? (count|list)\b", question, re.I):
        return "authors"
    if re.search(r"\b(more|fewer|most|least) (up-?votes|votes)\b", question, re.I):
        return "upvotes"
    if re.search(r"\b(listed|posted|published|released|dated|appeared|came out|come out) (earlier|later|first|last|before|after)\b"
                 r"|\b(earlier|later|older|newer|more recent)\b.{0,40}\b(listed|posted|published|date|listing)\b"
                 r"|\bwhich (was|is) (listed|posted|published) (earlier|later|first)\b", question, re.I):
        return "date"
    for field, pattern in _FIELDS:
        if pattern.search(question):
            if field == "links" and not re.search(r"\b(code|github|repo|repository|link|url|website|page|demo)", question, re.I):
                continue
            return field
    return None


def listing_fields(question: str) -> list[Field_]:
    """Every listing field a question asks about (author names excepted), in the order of ``_FIELDS``.

    >>> listing_fields("How many upvotes has FooNet got, and when was it posted?")
    ['upvotes', 'date']
    """
    return [f for f, pattern in _FIELDS if f != "author_names" and pattern.search(question) and listing_field_ok(f, question)]


_LISTING_WORDS = re.compile(
    r"\b(authors?|co-?authors?|wrote|written|up-?votes?|votes?|popular|listed|listing|posted|published|released|"
    r"dated?|when|year|month|recent|earlier|later|older|newer|links?|urls?|code|github|repo|repository|website|"
    r"page|demo)\b",
    re.IGNORECASE,
)


def asks_listing(question: str) -> bool:
    """Whether ``question`` may be about a listing's fields (authors, date, upvotes, links): only then does the
    model see each source's listing line (other questions read ~10% fewer source tokens).

    >>> asks_listing("Who wrote more papers, and when were they listed?"), asks_listing("What does SPELL propose?")
    (True, False)
    """
    return bool(listing_fields(question)) or bool(_LISTING_WORDS.search(question))


def listing_field_ok(field: Field_, question: str) -> bool:
    """Whether a matched field is really asked (a "page" or "code" is needed for links)."""
    return field != "links" or bool(re.search(r"\b(code|github|repo|repository|link|url|website|page|demo)", question, re.IGNORECASE))


_ASKS_INTRODUCED = re.compile(
    r"\bwhat\b[^?]*?\b(?:does|do|did)\b[^?]*?\b(?:propose|introduce|present|develop)\b", re.IGNORECASE
)


def asks_introduced(question: str) -> bool:
    """Whether ``question`` asks what a paper introduces ("What does SINC introduce …?"), not about something
    introduced ("What two strategies are proposed …?", "… their own proposed answers").

    >>> asks_introduced("What does FooNet introduce so that X?"), asks_introduced("What two modules are proposed?")
    (True, False)
    """
    return _ASKS_INTRODUCED.search(question) is not None


# "how" that asks for an amount or a verdict ("how many", "how well") rather than a mechanism
_HOW_AMOUNT = r"many|much|well|long|large|big|often|fast|far|old|good|accurate|high|low|strong|small|close"
_ASKS_PROCESS = re.compile(
    rf"\bhow\b(?!\s+(?:{_HOW_AMOUNT})\b)(?![^?]*\b(?:perform|compare|differ|rank|score|fare)s?\b)"
    r"|\bwhat\b[^?]{0,40}?\b(?:components|steps|stages|parts|phases|modules|ingredients|roles|mechanisms"
    r"|approaches|techniques|strategies|procedure|pipeline)\b"
    r"|\b(?:components|steps|stages|phases|modules|ingredients)\b"
    r"|\b(?:walk (?:me )?through|break down|what(?:'s| is) inside|what does [^?]{1,60} do)\b",
    re.IGNORECASE,
)


def asks_process(question: str) -> bool:
    """Whether ``question`` asks how something works or what it is made of (a mechanism, its steps or parts),
    whose answer is spread over several of an abstract's sentences.

    >>> asks_process("How does FooNet denoise its inputs?"), asks_process("What are BarNet's three modules?")
    (True, True)
    >>> asks_process("How many layers does FooNet use?"), asks_process("How does FooNet perform on BazBench?")
    (False, False)
    """
    return _ASKS_PROCESS.search(question) is not None
