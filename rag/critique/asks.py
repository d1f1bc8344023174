"""What the question asks, and whether a claim gives it: the thing asked for, a quantity, a paper's name, a
description (which-paper); a claim that only restates the question. (The question's own premise:
:mod:`.premises`.)"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..corpus import Paper
from ..shapes import asked_sides, mentions
from ..text import NUMBER_WORDS, STOPWORDS, content_words, fold, name_in, names, number_in, numbers, proper_nouns, quantities
from .facts import near, paper_sentences, word_forms

#: A claim that shares no word with the question and is less alike in meaning (MiniLM cosine) answers something else
#: (the relevance gate's floor, ``answer.min_relevance``, for the question against the papers).
UNRELATED_CLAIM = 0.25

ELSEWHERE = "it is about something else"

NO_NUMBER = "it gives no number, and the question asks for one"

#: A which-paper claim is withheld when another source fits the question's description by this much more.
DESCRIPTION_MARGIN = 0.1

_WHICH_PAPER_LEAD = re.compile(
    r"^\s*(?:(?:which|what)\s+(?:paper|work|study|article|method|model|framework|system|approach)s?\s+"
    r"|(?:is there|do you know|i remember|there's|there is)\s+(?:a|any|the|one)\s+"
    r"(?:paper|work|study|article|method|model|framework|system|approach)\s+(?:that|which|where|in which)?\s*)"
    r"(?:in the collection\s+)?",
    re.IGNORECASE,
)

# "… what's it called?": the ask after the description
_NAME_ASK = re.compile(r"[?.]?\s*(?:so\s+)?what(?:'s| is| was) (?:it|this|that|the method|the paper) called\s*\??\s*$"
                       r"|[?.]?\s*what(?:'s| is) its name\s*\??\s*$", re.IGNORECASE)



def description_of(question: str) -> str:
    """What a which-paper question says of the paper, without the asking around it.

    >>> description_of("do you know a model which spots cracks in old bridges? what is it called?")
    'spots cracks in old bridges'
    >>> description_of("Which paper trains judges?")
    'trains judges?'
    """
    return _NAME_ASK.sub("", _WHICH_PAPER_LEAD.sub("", question)).strip()

#: Questions that ask for a quantity: a claim answering one must give a number, about the thing asked.
QUANTITY_QUESTION = re.compile(
    r"\b(how (many|much|large|big|long|often|fast|far)|by how|what (\S+ ){0,4}(rates?|sizes?|scores?|accuracy|"
    r"percentage|percent|number|count|f1|bleu|gains?|improvements?|resolution|age|speed-?up|pass@\S+))\b",
    re.IGNORECASE,
)

# a word written in mixed case is a name ("SCoRe", "DiT-Mem"), whatever ordinary word it spells
_MIXED_CASE = re.compile(r"\b[\w\-]*[a-z][\w\-]*[A-Z][\w\-]*\b")


def asks_amount(question: str) -> bool:
    """Whether ``question`` asks for an amount (:data:`QUANTITY_QUESTION`), reading names as names.

    >>> asks_amount("What score does FooNet reach?"), asks_amount("What training algorithm does SCoRe use?")
    (True, False)
    >>> asks_amount("what's FooNet's top-1 hit rate on BarSet?")
    True
    """
    # "what's its hit rate": read without the contraction's verb, as "what … rate"
    asked = re.sub(r"\b(what|how)'s\b", r"\1", question, flags=re.IGNORECASE)
    return QUANTITY_QUESTION.search(_MIXED_CASE.sub("Name", asked)) is not None


#: Field-wide acronyms that name no particular paper: a question using them is not "about" them.
GENERIC_ACRONYMS = frozenset(
    "LLM LLMS VLM VLMS LVLM LVLMS MLLM MLLMS LM LMS AI RL RLHF NLP ML DL GPU GPUS CPU CPUS SOTA QA".split()
)

_GENERIC_QUESTION_WORDS = (
    "what which how many much large big long does did do use used report reports reported achieve achieves "
    "reach reaches give gives get gets make makes need needs show shows number kind type compared compare value "
    "paper method approach model models study"
)



def focus_words(question: str, title: str = "") -> set[str]:
    """What a question asks about: its content words minus question vocabulary and the paper's name.

    The name is the part of the title before a colon ("SPARK" in "SPARK: Stepwise ..."); the
    descriptive rest of the title may well be what is asked about.

    >>> sorted(focus_words("What learning rate did SPARK use?", "SPARK: Stepwise Process-Aware Rewards"))
    ['learn', 'rate']
    >>> sorted(focus_words("How much memory does Zebra Caching save?", "Zebra Caching: Striped Memory"))
    ['memori', 'save']
    """
    generic = set(content_words(_GENERIC_QUESTION_WORDS))
    name = title.split(":", 1)[0] if ":" in title else ""
    return set(content_words(question)) - generic - set(content_words(name))



# the words that relate two things compared ("bigger", "the most", "fewer"): what a comparison asks of each side is
# its own value, which one abstract states; how the two values relate, no one abstract does
_RELATION = re.compile(
    r"\b(?:(?:bigg|larg|small|high|low|few|great|long|short|fast|slow)(?:er|est)|better|best|worse|worst|more|most|less|"
    r"least)\b",
    re.IGNORECASE,
)


def side_ask(question: str) -> str:
    """What a comparison's side question asks of its one paper: the question without the words that relate the two
    sides (no abstract of one side states that it is the bigger one).

    >>> side_ask("Does FooNet keep fewer sensor frames than BarNet, and how many?")
    'Does FooNet keep sensor frames than BarNet, and how many?'
    >>> side_ask("How many GPUs does FooNet use?")
    'How many GPUs does FooNet use?'
    """
    return " ".join(_RELATION.sub(" ", question).split())


def own_ask(question: str, papers: Sequence[Paper]) -> str:
    """The part of a question about two papers (:func:`~paperchat.rag.shapes.asked_sides`) that asks about the one
    paper of ``papers``, else the whole question.

    >>> p = Paper(id="f", title="FooNet: Denoising", abstract="FooNet beats BarNet by 3.27%.")
    >>> own_ask("FooNet vs QuxGAN: how much does FooNet beat BarNet, and by how much does QuxGAN help?", [p])
    'How much does FooNet beat BarNet?'
    """
    if len(papers) != 1:
        return question
    for side, asked in asked_sides(question):
        if mentions(side, papers[0]) or name_in(side, f"{papers[0].title} {papers[0].abstract}"):
            return asked
    return question



def unnamed(question: str, paper: Paper) -> list[str]:
    """The names ``question`` asks about (not field-wide acronyms) that ``paper``'s title and abstract lack.

    >>> unnamed("Did SPARK beat GPT-4 on ProcessBench?", Paper(id="s", title="SPARK", abstract="It tops ProcessBench."))
    ['GPT-4']
    """
    text = f"{paper.title}. {paper.abstract}"
    asked = [n for n in dict.fromkeys(names(question) + proper_nouns(question)) if n.upper() not in GENERIC_ACRONYMS]
    return [n for n in asked if not name_in(n, text)]



def off_subject(question: str, paper: Paper) -> str | None:
    """Why a claim from ``paper`` cannot answer ``question``: a name the question asks about is not in it.

    >>> p = Paper(id="m", title="Momentum-GS: Gaussian Self-Distillation", abstract="Blocks are bounded by GPUs.")
    >>> off_subject("On how many GPUs did FooNet train?", p)
    'the question is about FooNet, which the cited abstract does not mention'
    >>> off_subject("How does Momentum-GS use GPUs?", p) is None
    True
    """
    missing = unnamed(question, paper)
    if missing:
        return f"the question is about {', '.join(missing)}, which the cited abstract does not mention"
    return None

# "how many hidden layers and attention heads does ...": the words up to the verb
_COUNTED = re.compile(
    r"\bhow many ((?:[a-z][\w\-]*\s+){0,5}?[a-z][\w\-]*)"
    r"(?=\s+(?:do|does|did|are|were|is|was|has|have|had|can|will|would)\b)",
    re.IGNORECASE,
)

# nouns that count people: "how many people were surveyed" is answered by "412 respondents"
_PEOPLE = frozenset(content_words(
    "people persons individuals humans participants subjects users annotators volunteers respondents patients "
    "workers raters experts clinicians doctors students learners players"
))

# words that name the same figure: "what improvements does STIC report?" is answered by "performance gains of 4.0%"
_SAME_FIGURE = (
    frozenset(content_words("improvement improve gain boost increase enhancement lift rise outperform surpass")),
    frozenset(content_words("reduction reduce decrease drop fewer less saving")),
)



def answers_quantity(claim: str, question: str, paper: Paper) -> str | None:
    """For a question asking for a quantity: why the claim does not give it (None if it does).

    The claim must hold a number, and a sentence of the abstract that holds that number must
    mention something the question asks about (so "SPARK used Qwen2.5-Math-7B" does not answer
    "What learning rate did SPARK use?", nor does a number about something else).
    """
    if not asks_amount(question):
        return None
    values = quantities(claim)
    if not values:
        return NO_NUMBER
    focus = focus_words(question, paper.title)
    if not focus:
        return None
    for same in _SAME_FIGURE:
        if focus & same:
            focus = focus | same
    # "How many GPUs ...?": what is counted must stand next to the number in the source; it is the
    # phrase up to the verb ("how many GPUs did ... use" counts GPUs)
    counted = _COUNTED.search(question)
    if counted is None:
        counted = re.search(r"\bhow many ([a-z][\w\-]*)", question, re.IGNORECASE)
    unit = set(content_words(counted.group(1))) if counted else set()
    # "How many of FooBench's tasks are puzzles?": what is counted is the puzzles
    among = re.search(r"\bhow many of\b[^?]*?\b(?:are|were)\s+([a-z][\w\-]*)", question, re.IGNORECASE)
    if among and content_words(among.group(1)):
        unit = set(content_words(among.group(1)))
    if unit & _PEOPLE:  # "how many people": the abstract counts them as participants, users, annotators …
        unit |= _PEOPLE
    sentences = [paper.title, *paper_sentences(paper)]
    for value in values:
        for sentence in sentences:
            present = number_in(value, sentence) if value[0].isdigit() else fold(value) in fold(sentence)
            around = set(content_words(near(value, sentence)))
            # what is counted stands next to the number, or after the words that describe it ("seven public
            # industrial and medical datasets")
            counted_here = set(content_words(near(value, sentence, 3, after=6)))
            if present and focus & around and (not unit or unit & counted_here):
                return None
    return f"the abstract does not give {', '.join(values)} as the {' / '.join(sorted(focus))} the question asks about"



def restates(claim: str, question: str) -> bool:
    """Whether the claim only repeats the question's words, adding no name, number or content word.

    >>> restates("FooNet distils into a small student.", "Which small student does FooNet distil into?")
    True
    >>> restates("FooNet distils into TinyBar-2.", "Which small student does FooNet distil into?")
    False
    """
    words = set(content_words(claim))
    asked = set(content_words(question))
    facts = [f for f in numbers(claim) + names(claim) if not name_in(f, question)]
    # "three" in "over three iterations" is a number the question did not give
    facts += [w for w in re.findall(r"[a-z]+", fold(claim)) if w in SPELLED_NUMBERS and w not in fold(question).split()]
    # stems alone would call "reflection tokens" a restatement of "to reflect": a word the question
    # has only in another form (not just a plural or verb ending) is new
    return (bool(words) and words <= asked and not facts and word_forms(claim) <= word_forms(question)
            and not chooses(claim, question))


#: Whole numbers written as words, which a claim may give instead of digits.
SPELLED_NUMBERS = frozenset(NUMBER_WORDS.values())
#: Where a question's clauses part: an "A or B" choice is read within one clause.
_CLAUSE_MARK = re.compile(r"[,;:?()—]")


def chooses(claim: str, question: str) -> bool:
    """Whether the claim picks one of the alternatives the question offers ("A or B?"): it has words only one
    side has, and none that only the other has. Such a claim answers with the question's own words.

    >>> q = "Which did better, the repeated cosine schedule or the infinite schedule?"
    >>> chooses("The infinite schedule did better.", q), chooses("The schedule did better.", q)
    (True, False)
    """
    words = set(content_words(claim))
    for clause in _CLAUSE_MARK.split(question):
        parts = re.split(r"\s+or\s+", clause, maxsplit=1, flags=re.IGNORECASE)
        if len(parts) != 2:
            continue
        left, right = set(content_words(parts[0])), set(content_words(parts[1]))
        only_left, only_right = left - right, right - left
        if bool(words & only_left) != bool(words & only_right):
            return True
    return False



def asked_phrase(claim: str, question: str, paper: Paper) -> bool:
    """Whether a short answer with no name or number ("Gradient-based methods") stands word for word in a sentence
    of ``paper`` that also holds a word of what the question asks about, and is not the question's own words.

    >>> p = Paper(id="s", title="SINC", abstract="SINC outperforms gradient-based methods. It uses prompts.")
    >>> asked_phrase("Gradient-based methods.", "What does it outperform?", p), asked_phrase("Prompts.", "What does it outperform?", p)
    (True, False)
    """
    phrase = fold(claim).strip(" .!?;:,")
    if not phrase or set(content_words(phrase)) <= set(content_words(question)):
        return False
    focus = focus_words(question, paper.title)
    for sentence in paper_sentences(paper):
        if re.search(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", fold(sentence)) and focus & set(content_words(sentence)):
            return True
    return False



def names_only_a_paper(claim: str, papers: Sequence[Paper]) -> bool:
    """Whether ``claim`` is no statement but the title (or short name) of one of ``papers``.

    >>> p = Paper(id="k", title="Small Nets (Often) Guess Their Own Errors", abstract="x")
    >>> names_only_a_paper("Small Nets (Often) Guess Their Own Errors.", [p]), names_only_a_paper("It guesses P(Wrong).", [p])
    (True, False)
    """
    words = set(content_words(claim))
    return bool(words) and not numbers(claim) and any(words <= set(content_words(p.title)) for p in papers)

# "What latency are devices expected …?", "Which small student does FooNet distil into?": the thing asked for
_ASKED_THING = re.compile(
    r"^\s*(?:what|which)\s+((?:[a-z][\w\-]*\s+){0,2}?[a-z][\w\-]*)\s+"
    r"(?:do|does|did|is|are|was|were|has|have|had|can|could|would|will|should)\b",
    re.IGNORECASE,
)

# heads that do not say what kind of answer is wanted
_VAGUE_HEADS = {"paper", "papers", "work", "works", "study", "studies", "article", "kind", "kinds", "type", "types",
                "way", "ways", "part", "parts", "role", "aspect", "aspects", "thing", "things", "one", "ones"}



# the same ask after a lead-in ("FooNet and BarNet both prune - which backbone does each use?")
_ASKED_THING_LATER = re.compile(rf"(?:[:;,—–]|\s-)\s*{_ASKED_THING.pattern.removeprefix('^')}", re.IGNORECASE)


def asked_thing(question: str, anywhere: bool = False) -> str | None:
    """The noun a "What/Which <noun> …?" question asks for, or None when it asks for no kind of thing; with
    ``anywhere``, also after a lead-in clause.

    >>> asked_thing("What latency are edge devices expected to meet?"), asked_thing("What does FooNet introduce?")
    ('latency', None)
    >>> asked_thing("Which small student model does FooNet distil into?"), asked_thing("Which paper proposes FooNet?")
    ('model', None)
    >>> asked_thing("FooNet prunes heads - which backbone does it use?", anywhere=True)
    'backbone'
    """
    m = _ASKED_THING.search(question) or (_ASKED_THING_LATER.search(question) if anywhere else None)
    if m is None:
        return None
    head = m.group(1).split()[-1].lower()
    return None if head in _VAGUE_HEADS or not content_words(head) else head



def gives_asked_thing(claim: str, question: str, head: str) -> bool:
    """Whether ``claim`` can be the ``head`` the question asks for: it names it (in any word form), or it
    gives a number or a name the question does not already hold.

    >>> q = "What probability are models asked to estimate?"
    >>> gives_asked_thing("They estimate the probability that answers are true.", q, "probability")
    True
    >>> gives_asked_thing("They estimate it as 0.8.", q, "probability"), gives_asked_thing("Performance improves with more samples.", q, "probability")
    (True, False)
    """
    claim = without_echo(claim, question)  # "The benchmarks used to test X were …": the head is the question's
    if names_thing(head, claim):
        return True
    return any(not name_in(f, question) for f in numbers(claim) + names(claim) + proper_nouns(claim))



def without_echo(claim: str, question: str, least: int = 5) -> str:
    """What ``claim`` adds to ``question`` when it repeats a run of at least ``least`` of its words: the claim
    without the question's words (else the claim as it is).

    >>> without_echo("The sets chosen to train the detector were drone photos.", "Which sets were chosen to train the detector?")
    'drone photos.'
    >>> without_echo("SPARK uses 47.4% accuracy.", "What accuracy does SPARK reach?")
    'SPARK uses 47.4% accuracy.'
    """
    words = claim.split()
    folded = [fold(w).strip(",.?;:") for w in words]
    asked = [fold(w).strip(",.?;:") for w in question.split()]
    runs = {tuple(asked[i : i + least]) for i in range(len(asked) - least + 1)}
    if not any(tuple(folded[i : i + least]) in runs for i in range(len(folded) - least + 1)):
        return claim
    kept = [w for w, f in zip(words, folded) if f not in set(asked) and f not in STOPWORDS]
    return " ".join(kept)

#: Share of an answer's own words that a sentence naming the thing asked for must hold for the answer to be its items.
ITEMS_SHARE = 0.6



def gives_items(claim: str, question: str, head: str, paper: Paper) -> bool:
    """Whether ``claim`` names at least two things, not in the question, that a sentence of ``paper`` gives as the
    ``head`` asked for ("questioner, responder, verifier" from "three cyclical roles-questioner, responder, and verifier").

    >>> p = Paper(id="s", title="SPELL", abstract="SPELL has three roles-questioner, responder, and verifier. The questioner asks.")
    >>> gives_items("Questioner, responder, verifier.", "What roles does SPELL play?", "role", p)
    True
    >>> gives_items("It asks questions.", "What roles does SPELL play?", "role", p)
    False
    """
    new = word_forms(claim.replace("-", " ")) - word_forms(question)
    for sentence in paper_sentences(paper):
        shared = new & word_forms(sentence.replace("-", " "))
        if names_thing(head, sentence) and len(shared) >= 2 and len(shared) >= ITEMS_SHARE * len(new):
            return True
    return False



def names_thing(head: str, text: str) -> bool:
    """Whether ``text`` names ``head`` in any word form, hyphenated terms read whole and by their parts.

    >>> names_thing("role", "three cyclical roles-questioner, responder"), names_thing("factor", "two pivotal ones")
    (True, False)
    """
    return bool(word_forms(head) & (word_forms(text) | word_forms(text.replace("-", " "))))
