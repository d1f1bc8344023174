"""A claim's facts against its source: word support, missing numbers and names, fragments, the supporting
sentence, quotes the model gives, and the thresholds these checks use."""

from __future__ import annotations

import re

from .. import prompts
from ..corpus import extract_urls, Paper
from ..shapes import alias, listing_sentence, short_name
from ..text import (
    clauses,
    content_words,
    fold,
    name_in,
    names,
    number_in,
    numbers,
    proper_nouns,
    quantities,
    split_sentences,
)
from .claims import ClaimCheck, split_claims

#: Below this share of its content words found in a source, a claim is not supported by it.
LOW_SUPPORT = 0.5

#: A part of a claim (between commas or joining words) with less support than this is invented.
CLAUSE_SUPPORT = 0.4

#: At or above this share, the words are the source's own: the model cannot veto the claim.
HIGH_SUPPORT = 0.9

#: A claim with facts and fewer content words than this is read together with its question.
SHORT_CLAIM_WORDS = 6

#: With this share of its words in the source and its facts in one sentence there, the model cannot veto a claim.
FACTS_SUPPORT = 0.75

#: A claim in other words is supported when a source sentence is this close in meaning (MiniLM cosine).
SEMANTIC_SUPPORT = 0.62

#: A part of a claim in other words is not invented when a source sentence is this close in meaning.
SEMANTIC_CLAUSE = 0.5

#: A claim with no numbers (a description, which no number check guards) and not mostly in the source's
#: words (below FACTS_SUPPORT) needs a sentence of a cited abstract at least this close in meaning: else it
#: says something the abstract does not, in the abstract's words.
SEMANTIC_FLOOR = 0.55

#: A which-paper answer whose abstract says the question's description in other words (below SEMANTIC_FLOOR) is
#: still the answer when a sentence of it is at least this close and no other source fits nearly as well.
IDENTITY_FLOOR = 0.4



def states_something(draft: str) -> bool:
    """Whether the draft holds one complete statement (not only citations or fragments that name
    sources as nouns, such as "The two datasets are [1] and [2].").

    >>> states_something("[1]"), states_something("The two datasets are [1] and [2]."), states_something("SPELL uses self-play [1].")
    (False, False, True)
    """
    return any(fragment(text) is None and len(content_words(text)) >= 2 for text, _ in split_claims(draft))

#: What the drafting prompts tell the model: a claim made of these words repeats the instructions, not a source.
_INSTRUCTION_WORDS = frozenset(content_words(" ".join(
    (prompts.SYSTEM, prompts.DRAFT_RULES, prompts.DRAFT_RULES_SYSTEM, prompts.SIDE_RULES, prompts.EXTRACT_RULES)
)))



#: How the prompts speak of the sources shown ("the source above", "the sources above").
_PROMPT_TALK = re.compile(r"\b(?:the )?sources? above\b", re.IGNORECASE)


def echoes_instructions(claim: str, source_text: str) -> bool:
    """Whether a claim repeats the drafting instructions: most of its words are the prompts' own, and the cited
    source holds less than half of them.

    >>> echoes_instructions("Answer the question for FooNet in one or two complete sentences.", "FooNet denoises audio.")
    True
    >>> echoes_instructions("FooNet answers questions in two sentences.", "FooNet answers questions in two sentences.")
    False
    >>> echoes_instructions("The source above is about FooNet.", "FooNet denoises audio.")
    True
    """
    if _PROMPT_TALK.search(claim) and not _PROMPT_TALK.search(source_text):
        return True  # "The source above is about FooNet.": the prompt's words about itself, whatever else it says
    words = content_words(claim)
    said = [w for w in words if w in _INSTRUCTION_WORDS]
    return len(said) >= 3 and len(said) >= 0.6 * len(words) and lexical_support(claim, source_text) < 0.5



def lexical_support(claim: str, source_text: str) -> float:
    """Share of the claim's content words that occur in the source.

    >>> lexical_support("SPELL improves long-context reasoning", "SPELL is a self-play method that improves long-context reasoning.")
    1.0
    """
    words = content_words(claim)
    if not words:
        return 1.0
    have = set(content_words(source_text))
    return sum(w in have for w in words) / len(words)

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")



def month_in(word: str, text: str) -> bool:
    """Whether ``word`` occurs in ``text``, a month name also matching its abbreviation.

    >>> month_in("September", "listed on Sep 12, 2018"), month_in("Sept", "September 2018"), month_in("May", "in 2020")
    (True, True, False)
    """
    if name_in(word, text):
        return True
    w = word.casefold().rstrip(".")
    full = next((m for m in _MONTHS if len(w) >= 3 and m.startswith(w)), None)
    if full is None:
        return False
    return re.search(rf"\b{full[:3]}(?:{full[3:]}|t)?\.?\b", text, re.IGNORECASE) is not None



def missing_facts(claim: str, source_text: str) -> list[str]:
    """Numbers and names of the claim that the source does not contain.

    >>> missing_facts("It reaches 67.5 F1 on ProcessBench with 13 GPUs.", "achieving 67.5 F1 on ProcessBench")
    ['13', 'GPUs']
    """
    missing = [n for n in numbers(claim) if not number_in(n, source_text)]
    missing += [
        n for n in names(claim) + proper_nouns(claim)
        if not month_in(n, source_text) and not spelled_out(n, source_text) and not joined_in(n, source_text)
        and n not in missing
    ]
    return missing


def joined_in(name: str, text: str) -> bool:
    """Whether a name of words joined by dashes or slashes ("English-Chinese") stands in ``text`` with other words
    between its parts ("English leftrightarrow Chinese", "English and Chinese"): each part a word of four letters or
    more, in order, at most three words apart.

    >>> joined_in("English-Chinese", "in English leftrightarrow Chinese translation"), joined_in("Self-RAG", "self RAG")
    (True, False)
    >>> joined_in("English-Chinese", "Chinese and English"), joined_in("GPT-4o", "GPT 4o")
    (False, False)
    """
    parts = re.split(r"[-/]", name)
    if len(parts) < 2 or not all(p.isalpha() and len(p) >= 4 for p in parts):
        return False
    gap = r"\W+(?:\w+\W+){0,3}?"
    return re.search(r"\b" + gap.join(map(re.escape, parts)) + r"\b", text, re.IGNORECASE) is not None

# common acronyms that an abstract may write out instead
SPELLED_OUT = {
    "LLM": "language model", "LLMS": "language model", "LM": "language model", "LMS": "language model",
    "VLM": "vision language model", "VLMS": "vision language model", "LVLM": "vision language model",
    "LVLMS": "vision language model", "RL": "reinforcement learning", "NLP": "natural language processing",
}



def spelled_out(name: str, text: str) -> bool:
    """Whether a common acronym of the claim is written out in ``text``.

    >>> spelled_out("LLMs", "large language models improve"), spelled_out("RL", "supervised fine-tuning")
    (True, False)
    """
    words = SPELLED_OUT.get(name.upper())
    return bool(words) and name_in(words, text)



def weakest_clause(claim: str, source_text: str, given: str = "") -> tuple[str | None, float]:
    """The part of the claim least supported by the source, and its support. A part made only of ``given``'s words
    (the question's: "FooNet decides" answering "how does FooNet decide …?") is the answer's frame, not weighed here.

    >>> weakest_clause("SPELL uses self-play for reasoning, and it halves energy use in data centers.", "SPELL uses self-play for long-context reasoning.")
    ('it halves energy use in data centers.', 0.0)
    >>> claim, source = "The judge model decides, first voting over samples.", "It votes over samples."
    >>> weakest_clause(claim, source)[0], weakest_clause(claim, source, "How does the judge model decide?")[0]
    ('The judge model decides', 'first voting over samples.')
    """
    worst, low = None, 1.0
    asked = word_forms(given)
    for part in clauses(claim):
        if asked and word_forms(part) <= asked:
            continue
        support = lexical_support(part, source_text)
        if support < low:
            worst, low = part, support
    return worst, low



def word_forms(text: str) -> set[str]:
    """Content words as written, less a plural or verb ending ("trains" and "train" are one form).

    >>> sorted(word_forms("Reflection tokens reflect the trained models; it generates processes"))
    ['generat', 'model', 'process', 'reflect', 'reflection', 'token', 'train']
    """
    words = [w for w in re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", fold(text)) if len(w) > 1 and content_words(w)]
    return {_INFLECTION.sub(_base, w) if len(w) > 3 else w for w in words}

_INFLECTION = re.compile(r"(?:sses|ss|ies|es|s|ed|ing|e)$")



def _base(ending: re.Match) -> str:
    """What an inflection ending becomes: "processes" -> "process", "studies" -> "study", "trained" -> "train"."""
    return {"sses": "ss", "ss": "ss", "ies": "y"}.get(ending.group(0), "")



def paper_sentences(paper: Paper) -> list[str]:
    """The sentences a paper's record states: the abstract's, then the listing's.

    >>> paper_sentences(Paper(id="x", title="T", abstract="It works. It is fast.", authors=3))
    ['It works.', 'It is fast.', 'Listing: 3 authors.']
    """
    listing = listing_sentence(paper)
    return split_sentences(paper.abstract) + ([listing] if listing else [])

_FRAGMENT_END = re.compile(
    r"\b(on|in|of|at|to|for|by|with|from|the|a|an|and|or|but|is|are|was|were|as|than|its|their|this|these)\W*$",
    re.IGNORECASE,
)



def fragment(claim: str) -> str | None:
    """Why ``claim`` is not a complete sentence (None when it is).

    >>> fragment("The improvement is shown on."), fragment("and are about memory."), fragment("SPELL wins.")
    ('it ends mid-sentence', 'it starts mid-sentence', None)
    >>> fragment("lists 18 authors."), fragment("iPhone apps grow."), fragment("That is SPELL."), fragment("github.com/a/b")
    ('it starts mid-sentence', None, None, None)
    """
    body = claim.strip().rstrip(".!?;:, ")
    if _FRAGMENT_END.search(body):
        return "it ends mid-sentence"
    first = body.split()[0] if body.split() else ""
    if first[:1].islower() and not any(ch.isupper() or ch.isdigit() for ch in first) and not extract_urls(first):
        return "it starts mid-sentence"
    return None



def same_number(a: str, b: str) -> bool:
    """Whether two numbers as written are the same number ("51%" and "51 %").

    >>> same_number("51%", "51 %"), same_number("5", "51")
    (True, False)
    """
    return number_in(a, b) and number_in(b, a)



def figures(text: str) -> list[str]:
    """The numbers of ``text``, with counts written with a suffix ("13K", "150M"), each once.

    >>> figures("13K examples, 150M parameters and 86 participants on Qwen2.5-7B")
    ['86', '13K', '150M']
    """
    return list(dict.fromkeys(numbers(text) + [q for q in quantities(text) if q[0].isdigit()]))



def after_value(value: str, sentence: str, width: int) -> str:
    """The ``width`` words after where ``value`` occurs in ``sentence`` ('' if absent).

    >>> after_value("86", "a trial of 86 participants, we find", 2)
    'participants, we'
    """
    words = sentence.split()
    at = next((i for i, w in enumerate(words) if number_in(value, w) or fold(value) == fold(w).strip(".,;:()")), None)
    return "" if at is None else " ".join(words[at + 1 : at + 1 + width])



def near(value: str, sentence: str, width: int = 8, after: int | None = None) -> str:
    """The words of ``sentence`` within ``width`` words before and ``after`` (default ``width``) words after where
    ``value`` occurs (the whole sentence if absent).

    >>> near("25%", "It improves self-efficacy (up to 17%) and reduces negative emotions (up to 25%).", 4)
    'negative emotions (up to 25%).'
    >>> near("two", "We tested two small but very noisy sensors today.", 1, after=5)
    'tested two small but very noisy sensors'
    """
    words = sentence.split()
    key = fold(value).rstrip("%")
    hits = [i for i, w in enumerate(words) if key and number_in(key, w) or fold(value) in fold(w)]
    if not hits:
        return sentence
    ahead = width if after is None else after
    return " ".join(" ".join(words[max(0, i - width) : i + ahead + 1]) for i in hits)



def facts_together(claim: str, paper: Paper) -> bool:
    """Whether the claim has two or more numbers or names and one sentence of the paper holds them all.

    >>> p = Paper(id="w", title="Self-J", abstract="WizardLM-13B-V1.2 rises from 89.17 to 92.48 on AlpacaEval.")
    >>> facts_together("WizardLM-13B-V1.2 goes from 89.17 to 92.48.", p), facts_together("It rises to 92.48.", p)
    (True, False)
    >>> facts_together("With Self-J, WizardLM-13B-V1.2 goes from 89.17 to 92.48.", p)
    True
    """
    # the paper's own name goes without saying in each of its sentences ("boosting WizardLM ..." in Self-J's)
    own = [n for n in (short_name(paper.title), alias(paper)) if n]
    facts = [f for f in dict.fromkeys(numbers(claim) + names(claim)) if not any(name_in(f, o) for o in own)]
    if len(facts) < 2:
        return False
    return any(
        all(number_in(f, s) if f[0].isdigit() and not names(f) else name_in(f, s) for f in facts)
        for s in paper_sentences(paper)
    )



def judge_can_change(check: ClaimCheck, paper: Paper, high: float = HIGH_SUPPORT) -> bool:
    """Whether the model's judgement could still remove this claim (else asking it only costs time).

    A claim in the source's own words, or one whose two or more numbers and names stand together
    in one sentence of the source, stays whatever a small model says about it.

    >>> p = Paper(id="w", title="Self-J", abstract="WizardLM-13B-V1.2 rises from 89.17 to 92.48 on AlpacaEval.")
    >>> judge_can_change(ClaimCheck(text="WizardLM-13B-V1.2 goes from 89.17 to 92.48.", lexical_support=0.8), p)
    False
    >>> judge_can_change(ClaimCheck(text="It improves a lot.", lexical_support=0.8), p)
    True
    """
    if check.lexical_support >= high:
        return False
    return not (check.lexical_support >= FACTS_SUPPORT and facts_together(check.text, paper))



def best_sentence(claim: str, paper: Paper) -> tuple[str | None, float]:
    """The sentence of the paper's record sharing the most content words with the claim, and that share."""
    words = set(content_words(claim))
    best, score = None, 0.0
    for sentence in paper_sentences(paper):
        have = set(content_words(sentence))
        overlap = len(words & have) / len(words) if words else 0.0
        if overlap > score:
            best, score = sentence, overlap
    return best, score



def verify_quote(quote: str, paper: Paper) -> str | None:
    """The abstract sentence a model's quote reproduces (allowing small copying slips), else None.

    >>> p = Paper(id="x", title="T", abstract="We propose SPELL. It uses self-play to train.")
    >>> verify_quote("It uses self-play to train", p), verify_quote("It uses GPUs.", p)
    ('It uses self-play to train.', None)
    """
    q = fold(quote).strip(" .\"'")
    if len(q) < 8:
        return None
    for sentence in paper_sentences(paper):
        s = fold(sentence)
        if q in s or s.strip(" .") in q:
            return sentence
    words = set(content_words(quote))
    if not words:
        return None
    sentence, score = best_sentence(quote, paper)
    return sentence if score >= 0.8 and len(words) >= 4 else None
