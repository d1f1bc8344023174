"""What a question asks for, and the facts of a paper's listing that can answer it.

Readers ask different kinds of questions, and each needs its own flow (see
:mod:`paperchat.rag.pipeline`): a fact from one abstract (``factoid``), which paper did something
(``which-paper``), every paper about a topic (``list``), two papers side by side
(``comparison``), or a field of the listing such as the author count (``metadata``).

The listing's fields are evidence like the abstract: :func:`listing_sentence` writes them
as one sentence that the model sees and the critique checks claims against.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from .corpus import Paper
from .text import content_words, fold, name_in, names, proper_nouns

Shape = Literal["factoid", "which-paper", "list", "comparison", "metadata"]
Field_ = Literal["authors", "author_names", "date", "upvotes", "links"]

_LIST = re.compile(
    r"\b(which|what) (other |of the |of these |of those )?(papers|works|articles|studies|ones)\b|\blist (all |the |every )?(papers|works)\b"
    r"|\b(are there|find|name|show me|give me) (any |some |all |the |two |three |several )?(papers|works|studies)\b"
    r"|\b(papers|works) (in the collection |here )?(that|which|about|on|dealing|using|proposing)\b"
    r"|\bhow many papers\b|\bmore than one paper\b|\bseveral papers\b",
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
        r"|(what|which) (date|day|month)|listing date|date of|dated)\b",
        re.IGNORECASE)),
    ("links", re.compile(
        r"\b(code|github|repository|repo|link|links|url|urls|website|project page|homepage|demo|hugging ?face)\b"
        r".{0,40}\b(available|released|find|where|link|url|get|public|open|published)\b"
        r"|\b(where|is there|any)\b.{0,40}\b(code|github|repository|repo|links?|urls?|website|project page|homepage)\b"
        r"|\b(github|url|link) (of|for|to)\b",
        re.IGNORECASE)),
)

FIELD_NAMES = {
    "authors": "number of authors",
    "author_names": "author names",
    "date": "listing date",
    "upvotes": "number of upvotes",
    "links": "code or project links",
}


@dataclass(frozen=True)
class QuestionShape:
    """The shape of a question and, for metadata questions, the listing field asked for."""

    shape: Shape
    field: Field_ | None = None


def classify(question: str) -> QuestionShape:
    """The shape of ``question``.

    >>> classify("How many authors wrote the SPELL paper?")
    QuestionShape(shape='metadata', field='authors')
    >>> classify("Who is the first author of SPARK?").field
    'author_names'
    >>> classify("Which papers use Monte Carlo Tree Search?").shape
    'list'
    >>> classify("Does SPARK or SPELL report a higher score?").shape
    'comparison'
    >>> classify("Which paper trains a model by self-play on long documents?").shape
    'which-paper'
    >>> classify("What F1 does SPARK reach on ProcessBench?").shape
    'factoid'
    """
    field = listing_field(question)
    if (_COMPARISON.search(question) and len(comparison_sides(question)) == 2) or asked_sides(question):
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


def listing_date(paper: Paper):
    """The paper's listing date as a date, when the listing gives a year (else None).

    >>> listing_date(Paper(id="x", title="T", abstract="A.", date="Sep 12, 2018"))
    datetime.date(2018, 9, 12)
    >>> listing_date(Paper(id="x", title="T", abstract="A.", date="Sep 28")) is None
    True
    """
    from datetime import datetime

    for fmt in ("%b %d, %Y", "%B %d, %Y", "%b. %d, %Y"):
        try:
            return datetime.strptime((paper.date or "").replace("Sept", "Sep"), fmt).date()
        except ValueError:
            continue
    return None


def compare_listing(a: Paper, b: Paper, field: Field_, na: int, nb: int) -> str | None:
    """A cited sentence comparing the listing field of two papers, computed from the records (None if it can't be).

    >>> a = Paper(id="a", title="SSRL: Search", abstract="A.", authors=18, date="Aug 14")
    >>> b = Paper(id="b", title="SPELL: Play", abstract="B.", authors=8, date="Sep 28")
    >>> compare_listing(a, b, "authors", 1, 2)
    'SSRL has more authors than SPELL (18 against 8) [1][2].'
    >>> compare_listing(a, b, "date", 1, 2) is None
    True
    """
    x, y = short_name(a.title), short_name(b.title)
    if field in ("authors", "upvotes"):
        va, vb = getattr(a, field), getattr(b, field)
        if va is None or vb is None:
            return None
        if va == vb:
            return f"{x} and {y} have the same number of {field} ({va}) [{na}][{nb}]."
        more, less, hi, lo = (x, y, va, vb) if va > vb else (y, x, vb, va)
        return f"{more} has more {field} than {less} ({hi} against {lo}) [{na}][{nb}]."
    if field == "date":
        da, db = listing_date(a), listing_date(b)
        if da is None or db is None:
            return None
        if da == db:
            return f"{x} and {y} were listed on the same day [{na}][{nb}]."
        first, then = (x, y) if da < db else (y, x)
        return f"{first} was listed before {then} [{na}][{nb}]."
    return None


def short_name(title: str) -> str:
    """How a paper is called in a sentence: the name before a colon, else the title.

    >>> short_name("SPARK: Stepwise Process-Aware Rewards"), short_name("Music Transformer")
    ('SPARK', 'Music Transformer')
    """
    head = title.split(":", 1)[0].strip()
    return head if ":" in title and 1 <= len(head) <= 60 else title.strip()


def mentions(text: str, paper: Paper) -> bool:
    """Whether ``text`` names ``paper``: its short name, or its whole title.

    >>> p = Paper(id="s", title="SPELL: Self-Play Reinforcement Learning", abstract="x")
    >>> mentions("SPELL reaches 60%", p), mentions("It reaches 60%", p)
    (True, False)
    """
    name = short_name(paper.title)
    if len(name) >= 3 and name_in(name, text):
        return True
    return fold(paper.title).rstrip(".") in fold(text)


def listing_sentence(paper: Paper) -> str:
    """The listing's fields of ``paper`` as one sentence, evidence like the abstract ('' when none).

    >>> p = Paper(id="x", title="T", abstract="A.", authors=8, date="Aug 11", upvotes=2, urls=["github.com/a/b"])
    >>> listing_sentence(p)
    'Listing: 8 authors; listed on Aug 11; 2 upvotes; links: github.com/a/b.'
    """
    parts = []
    if paper.authors:
        parts.append(f"{paper.authors} author{'s' if paper.authors != 1 else ''}")
    if paper.date:
        parts.append(f"listed on {paper.date}")
    if paper.upvotes is not None:
        parts.append(f"{paper.upvotes} upvote{'s' if paper.upvotes != 1 else ''}")
    if paper.urls:
        parts.append(f"links: {', '.join(paper.urls)}")
    return f"Listing: {'; '.join(parts)}." if parts else ""


def field_value(paper: Paper, field: Field_) -> str | None:
    """The listing's value of ``field`` as text, or None when the listing does not give it.

    >>> field_value(Paper(id="x", title="T", abstract="A.", authors=8), "authors")
    '8'
    """
    if field == "authors":
        return str(paper.authors) if paper.authors else None
    if field == "upvotes":
        return str(paper.upvotes) if paper.upvotes is not None else None
    if field == "date":
        return paper.date or None
    if field == "links":
        return ", ".join(paper.urls) or None
    return None  # author names: the listings carry only a count


def metadata_claim(paper: Paper, field: Field_, n: int) -> str | None:
    """A cited sentence stating ``field`` of ``paper`` from its listing, or None when not listed.

    >>> p = Paper(id="x", title="SPELL: Self-Play", abstract="A.", authors=8, date="Aug 11")
    >>> metadata_claim(p, "authors", 1), metadata_claim(p, "date", 1)
    ('SPELL has 8 authors [1].', 'SPELL was listed on Aug 11 [1].')
    >>> metadata_claim(p, "upvotes", 1) is None
    True
    """
    value = field_value(paper, field)
    if value is None:
        return None
    name = short_name(paper.title)
    if field == "authors":
        return f"{name} has {value} author{'s' if value != '1' else ''} [{n}]."
    if field == "upvotes":
        return f"{name} has {value} upvote{'s' if value != '1' else ''} [{n}]."
    if field == "date":
        return f"{name} was listed on {value} [{n}]."
    return f"{name} links to {value} [{n}]."


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
    found = [n for n in names(clause) + proper_nouns(clause) if n not in _GENERIC_SIDES and n.upper() not in _GENERIC_NAMES]
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
    >>> asked_sides("What gain does STIC report, and how much less data does it use?")
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


# ", and what …" (where the ask turns, :data:`_CLAUSE_TURN`) or a second question after a first
_SECOND_ASK = re.compile(rf"{_CLAUSE_TURN.pattern}|\?\s+\S.*\?", re.IGNORECASE)


def two_asks(question: str) -> bool:
    """Whether ``question`` asks two things at once ("Which paper …, and what do they …?").

    >>> two_asks("Which paper argues X, and what do they learn beyond it?"), two_asks("What do A and B share?")
    (True, False)
    """
    return _SECOND_ASK.search(question) is not None


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


_INTRODUCES = re.compile(r"\b(?:propose|introduce|present|call|name|dub|term|develop)(?:s|d|ed)?\b", re.IGNORECASE)
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


def introducing(text: str) -> bool:
    """Whether ``text`` uses a verb of introducing ("we propose", "SINC introduces").

    >>> introducing("To answer it, we propose a framework that introduces a meta-model."), introducing("It scores 4.0%.")
    (True, False)
    """
    return _INTRODUCES.search(text) is not None


_GENERIC_NAMES = {"LLM", "LLMS", "RL", "AI", "VLM", "VLMS", "LVLM", "LVLMS", "MLLM", "MLLMS", "SFT", "GPT-4"}


def alias(paper: Paper) -> str | None:
    """The name an abstract gives its method ("we propose STIC ..."), when the title does not carry it.

    >>> alias(Paper(id="x", title="Enhancing Vision Models", abstract="We introduce Self-Training on Image Comprehension (STIC), a method."))
    'STIC'
    >>> alias(Paper(id="y", title="SPELL: Self-play", abstract="We propose SPELL, a framework.")) is None
    True
    >>> alias(Paper(id="z", title="Implicit Self-Improvement", abstract="We propose an ImPlicit Self-ImprovemenT (PIT) framework."))
    'PIT'
    """
    for sentence in re.split(r"(?<=[.!?])\s+", paper.abstract):
        m = _INTRODUCES.search(sentence)
        if not m:
            continue
        rest = sentence[m.end():]
        # "an ImPlicit Self-ImprovemenT (PIT) framework": an acronym in brackets is the name given
        bracketed = re.match(r"[^.()]{0,80}?\(([A-Z][A-Za-z0-9\-]*[A-Z][A-Za-z0-9\-]*)\)", rest)
        if bracketed and bracketed.group(1).upper() not in _GENERIC_NAMES:
            name = bracketed.group(1)
            return None if mentions(name, paper) or name_in(name, paper.title) else name
        for name in names(rest):  # in the order they appear
            name = name.strip("-.,")
            inner_capital = any(c.isupper() and i > 0 and name[i - 1] != "-" for i, c in enumerate(name))
            if len(name) < 2 or name.upper() in _GENERIC_NAMES or not inner_capital or name[0].isdigit():
                continue
            own = short_name(paper.title)
            if mentions(name, paper) or name_in(name, paper.title) or difflib.SequenceMatcher(None, name, own).ratio() > 0.8:
                return None
            return name
    return None


def display_name(paper: Paper) -> str:
    """How a paper is named in a list: its short name, with the abstract's name for it when that differs.

    >>> display_name(Paper(id="x", title="Enhancing Vision Models", abstract="We introduce Self-Training (STIC)."))
    'Enhancing Vision Models (STIC)'
    """
    name, other = short_name(paper.title), alias(paper)
    return f"{name} ({other})" if other else name


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
