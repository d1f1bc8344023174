"""Small text helpers shared by evidence selection and the critique: sentences, facts, words."""

from __future__ import annotations

import functools
import re
import unicodedata

_ABBREVIATIONS = ("e.g.", "i.e.", "et al.", "v.s.", "vs.", "Fig.", "Eq.", "etc.", "cf.", "approx.", "No.", "Sec.")
_PLACEHOLDER = "\u2063"  # invisible separator, stands in for abbreviation dots while splitting
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")

_NUMBER = re.compile(r"(?<![\w.\-])\d+(?:[.,]\d+)*(?:\s?%|×)?(?:(?=-[a-z]{3,})|(?![\w\-]*[A-Za-z]))")
# Names: words with a capital after the first letter or with digits (ProcessBench, GPT-4o, Qwen2.5-Math-7B,
# MCTS, LLaVA), and capitalised hyphenated names. Plain sentence-initial capitals are not names.
_NAME = re.compile(
    r"\b(?:[A-Za-z]*[A-Z][a-z]*[A-Z0-9][\w.\-]*|[A-Z][a-z]+-[A-Z0-9][\w.\-]*|[A-Za-z]+\d[\w.\-]*"
    r"|\d+(?:\.\d+)?[A-Za-z][\w.\-]*)"
)
#: A lowercase ending that says what kind of thing is named ("GPT-4-class", "DBT-style"): not part of the name.
_DESCRIBING_SUFFIX = re.compile(
    r"-(?:style|like|class|based|level|type|inspired|sized|scale|grade|esque|powered|driven|derived|generated)$"
)
#: Every Unicode hyphen and dash, and the minus sign: matched as "-" by :func:`fold` and the eval's keywords.
DASHES = re.compile(r"[\u2010-\u2015\u2212]")
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
    now of off on once only or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves paper papers
    propose proposes proposed present presents presented introduce introduces introduced study studies show shows
    shown use uses used using based via approach method methods work new novel also which one two three it's""".split()
)


#: Sentences of an abstract that read as instructions to a model are never shown to it.
INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,60}\b(instructions?|prompts?|rules|above|previous|everything)\b"
    r"|\bsystem prompt\b|\byou are now\b|\b(you|assistant|ai|model) (must|should) (say|reply|answer|respond|state|write)\b"
    r"|\b(respond|reply|answer) (only )?with\b",
    re.IGNORECASE,
)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``; abbreviations such as "e.g." and decimals do not end one.

    >>> split_sentences("We use MCTS, e.g. AlphaGo. It gets 47.4% on GSM8K! Done.")
    ['We use MCTS, e.g. AlphaGo.', 'It gets 47.4% on GSM8K!', 'Done.']
    """
    guarded = text
    for abbr in _ABBREVIATIONS:
        guarded = guarded.replace(abbr, abbr.replace(".", _PLACEHOLDER))
    parts = _SENTENCE_END.split(guarded.strip())
    return [p.replace(_PLACEHOLDER, ".").strip() for p in parts if p.strip()]


def fold(text: str) -> str:
    """Lower-case, Unicode-folded text with single spaces and uniform dashes and quotes.

    For matching words and names. Not :func:`paperchat.rag.corpus.normalize_text`, which keeps dashes and
    quotes as written because it keys paper ids and titles (changing it would change every id).

    >>> fold("Qwen2.5‑Math–7B  “wins”")
    'qwen2.5-math-7b "wins"'
    """
    text = unicodedata.normalize("NFKC", text)
    text = DASHES.sub("-", text)
    text = re.sub(r"[\u2018\u2019`]", "'", text)
    text = re.sub(r"[\u201c\u201d]|''", '"', text)
    return " ".join(text.casefold().split())


def numbers(text: str) -> list[str]:
    """Stand-alone numbers in ``text`` as written (parts of names like GPT-4o or 13B are names, not numbers).

    >>> numbers("67.5 F1 vs 61.9 for GPT-4o, 47.4% accuracy, 13B and 70B models, $4 trillion.")
    ['67.5', '61.9', '47.4%', '4']
    >>> numbers("an average 7.6-point gain, 3-fold faster, 8-shot")
    ['7.6', '3', '8']
    """
    found = []
    for m in _NUMBER.finditer(text):
        found.append(m.group(0).replace(" ", "").rstrip(".,"))
    return found


def names(text: str) -> list[str]:
    """Model, benchmark and method names: tokens with inner capitals or digits.

    >>> names("Using Qwen2.5-Math-7B we beat GPT-4o on ProcessBench with MCTS and a 13B model.")
    ['Qwen2.5-Math-7B', 'GPT-4o', 'ProcessBench', 'MCTS', '13B']
    >>> names("Self-RAG and 3D Gaussian Splatting")
    ['Self-RAG', '3D']
    >>> names("GPT-4-class models teach DBT-style skills")  # a describing suffix is not part of the name
    ['GPT-4', 'DBT']
    """
    out = []
    for m in _NAME.finditer(text):
        token = _DESCRIBING_SUFFIX.sub("", m.group(0).rstrip(".-"))
        if len(token) >= 2 and token not in out:
            out.append(token)
    return out


def english_stemmer():
    """A new Snowball English stemmer (PyStemmer): the one stemmer BM25 and the critique's word matching use."""
    import Stemmer

    return Stemmer.Stemmer("english")


_stemmer = functools.lru_cache(maxsize=1)(english_stemmer)


def content_words(text: str) -> list[str]:
    """Stemmed words that carry meaning (stop words and one-letter words dropped).

    >>> content_words("The critics are criticizing the proposed models")
    ['critic', 'critic', 'model']
    """
    words = [w for w in _WORD.findall(fold(text)) if len(w) > 1 and w not in STOPWORDS]
    return _stemmer().stemWords(words)


_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
_ONES += "seventeen eighteen nineteen twenty"
#: Whole numbers an abstract may spell out, by their digits.
NUMBER_WORDS = {str(i): w for i, w in enumerate(_ONES.split()) if i > 1} | {
    str(10 * i): w for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), 3)
}  # not "one" (as in "one model"), nor "hundred" (as in "three hundred")


def number_in(value: str, text: str) -> bool:
    """Whether the number ``value`` occurs in ``text`` as a whole number (not inside another).

    >>> number_in("47.4%", "we achieve 47.4% average accuracy"), number_in("7", "Qwen2.5-Math-7B"), number_in("4", "47.4")
    (True, True, False)
    >>> number_in("4", "four times as long"), number_in("4", "fourteen layers"), number_in("40", "forty tasks")
    (True, False, True)
    """
    core = fold(value).rstrip("%x×").strip()
    pattern = rf"(?<![\d.]){re.escape(core)}(?![\d]|\.\d)"
    if re.search(pattern, fold(text)) is not None:
        return True
    # a small whole number the text spells out: "4" is in "four times the length"
    word = NUMBER_WORDS.get(core)
    return word is not None and re.search(rf"\b{word}\b", fold(text)) is not None


def name_in(name: str, text: str) -> bool:
    """Whether ``name`` occurs in ``text``, ignoring case, dashes and spaces.

    >>> name_in("GPT4o", "compared to GPT-4o"), name_in("Llama-3", "Llama2-Chat")
    (True, False)
    """
    squash = lambda s: re.sub(r"[\s\-_]", "", fold(s))  # noqa: E731
    return squash(name) in squash(text)


_CLAUSE_BREAK = re.compile(r"[,;:()]|\s(?:and|but|while|whereas|which|that|with|using|by)\s", re.IGNORECASE)


def clauses(text: str, min_words: int = 3) -> list[str]:
    """Parts of a sentence between commas and joining words, keeping those with ``min_words`` content words.

    >>> clauses("SPELL uses self-play for reasoning, and it was built jointly with a hospital network in Norway.")
    ['SPELL uses self-play for reasoning', 'a hospital network in Norway.']
    """
    return [c.strip() for c in _CLAUSE_BREAK.split(text) if len(content_words(c)) >= min_words]


def proper_nouns(text: str) -> list[str]:
    """Capitalised words that do not start a sentence (places, languages, organisations).

    >>> proper_nouns("It was written in Haskell. The code runs in Norway and Paris.")
    ['Haskell', 'Norway', 'Paris']
    >>> proper_nouns("Follow-up (about: What is SPELL?)")
    []
    """
    out = []
    for sentence in split_sentences(text):
        for m in re.finditer(r"(?<=[\w,;:)] )([A-Z][a-z]{2,})\b", sentence):
            if m.group(1).lower() in STOPWORDS:  # "What", "The" after a colon are not names
                continue
            if m.group(1) not in out:
                out.append(m.group(1))
    return out


_MAGNITUDE = re.compile(r"(?<![\w.\-])\d+(?:\.\d+)?\s?(?:[KMBT]|k|thousand|million|billion|trillion)\b")
_NUMBER_WORDS = re.compile(r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?)\b", re.I)


def quantities(text: str) -> list[str]:
    """Everything in ``text`` that states an amount: numbers, magnitudes (13K, 150M) and number words.

    >>> quantities("trained with 13K examples and 150M parameters, two stages, 47.4% accuracy")
    ['47.4%', '13K', '150M', 'two']
    """
    found = numbers(text)
    found += [m.group(0) for m in _MAGNITUDE.finditer(text) if m.group(0) not in found]
    found += [m.group(0) for m in _NUMBER_WORDS.finditer(text)]
    return found
