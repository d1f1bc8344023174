"""The papers of a list question ("Which papers use sparse attention?"): every paper that names what is asked,
or whose title or sentences come close to the topic or state its distinctive phrases."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .critique import GENERIC_ACRONYMS
from .retrieval import Hit, Retriever
from .settings import AnswerSettings
from .text import INJECTION, fold, name_in, names, proper_nouns, split_sentences
from .topics import compound_parts, focus_overlap, lone_word_in, topic_of, topic_parts, topic_phrases

#: Weight of the share of a list topic's words found in a paper, added to its MiniLM similarity.
LIST_COVERAGE_WEIGHT = 0.25


def lone_proper_nouns(text: str) -> list[str]:
    """Capitalised words of ``text`` that name something alone (a model family such as "Qwen"), not as part of a
    run of capitalised words ("Monte Carlo Tree Search" is a phrase, read as one).

    >>> lone_proper_nouns("distil it into Llama students"), lone_proper_nouns("apply Proximal Policy Optimization")
    (['Llama'], [])
    """
    return [p for p in proper_nouns(text) if not re.search(rf"[A-Z][\w\-]*\s+{p}\b|\b{p}\s+[A-Z]", text)]


def names_version(name: str, text: str) -> bool:
    """Whether ``text`` names ``name`` as a word, or a version of it ("Qwen" in "Qwen2.5-Math-7B" or "Qwen-2.5-7B").

    >>> names_version("Qwen", "on Qwen2.5-Math-7B and Qwen-2.5-7B"), names_version("Qwen", "QwenLM"), names_version("GPT-4", "GPT-4o")
    (True, False, False)
    """
    return re.search(rf"(?<![\w-]){re.escape(name)}(?:-?\d[\w.\-]*)?(?!\w)", text) is not None


def _states(phrase: str, loose: set[str], text: str) -> bool:
    """Whether ``text`` states ``phrase``: word for word, or, for a term in ``loose``, each of its parts as a word."""
    if name_in(phrase, text):
        return True
    return phrase in loose and all(lone_word_in(part, text) for part in compound_parts(phrase))


def _phrase_matches(
    phrases: Sequence[str], loose: set[str], scored: list[tuple[float, Hit, str]], top: float
) -> list[tuple[float, Hit, str]]:
    """Candidates that state a distinctive phrase of the topic ("tree search") rank with the best match,
    with the sentence that states it; a phrase that most candidates share ("language models") counts for nothing."""
    texts = [f"{h.paper.title} {h.paper.abstract}" for _, h, _ in scored]
    phrases = [
        ph for ph in phrases
        if 0 < sum(_states(ph, loose, t) for t in texts) <= max(1, len(texts) // 2)
    ]
    out = []
    for (score, hit, sentence), text in zip(scored, texts):
        said = [ph for ph in phrases if _states(ph, loose, text)]
        if said:
            stating = [s for s in split_sentences(hit.paper.abstract) if any(_states(ph, loose, s) for ph in said)]
            score, sentence = max(score, top), (stating[0] if stating else sentence)
        out.append((score, hit, sentence))
    return out


def list_matches(question: str, retriever: Retriever, answer: AnswerSettings) -> list[tuple[float, Hit, str]]:
    """The papers a list question names, best first (at most ``answer.list_max``): (score, hit, the sentence that
    matches best)."""
    chosen: dict[str, tuple[float, Hit, str]] = {}
    # "X or Y" asks for the papers of either topic: each part is matched on its own
    parts = topic_parts(topic_of(question))
    for topic in parts:
        # a question about one word ("segmentation") lists the papers using it; a part of "X or Y" is no topic alone
        for score, hit, sentence in topic_matches(topic, retriever, answer, lone_word=len(parts) == 1):
            if hit.paper.id not in chosen or chosen[hit.paper.id][0] < score:
                chosen[hit.paper.id] = (score, hit, sentence)
    return sorted(chosen.values(), key=lambda c: -c[0])[: answer.list_max]


def topic_matches(
    topic: str, retriever: Retriever, answer: AnswerSettings, lone_word: bool = False
) -> list[tuple[float, Hit, str]]:
    """Papers that match one topic of a list question: (score, hit, the sentence that matches best)."""
    asked = [n for n in names(topic) + lone_proper_nouns(topic) if n.upper() not in GENERIC_ACRONYMS]
    if asked:  # a named benchmark, model or method: every paper that names it, nothing else
        return _naming(asked, retriever)
    hits = retriever.search(topic, k=answer.list_candidates)
    phrases, loose = topic_phrase_terms(topic, retriever, lone_word)
    hits += stating_papers(phrases, loose, {h.paper.id for h in hits}, retriever, answer.list_max)
    if not hits:
        return []
    embedder = retriever.meaning
    q = embedder.embed([topic])[0]
    scored = []
    for hit in hits:
        sentences = [s for s in split_sentences(hit.paper.abstract) if not INJECTION.search(s)]
        vectors = embedder.embed([hit.paper.title, *sentences])
        sims = vectors @ q
        best = int(np.argmax(sims[1:])) + 1 if len(sims) > 1 else 0
        # a paper matches when its title or a sentence of its abstract is close to the topic,
        # and more so when it uses the topic's own words
        coverage = focus_overlap(topic, f"{hit.paper.title} {hit.paper.abstract}")
        score = float(max(sims)) + LIST_COVERAGE_WEIGHT * coverage
        scored.append((score, hit, sentences[best - 1] if best else hit.paper.title))
    if not scored:
        return []
    top = max(score for score, _, _ in scored)
    # a paper that states the topic's distinctive phrase is listed even when no abstract is close overall
    scored = _phrase_matches(phrases, loose, scored, max(top, answer.list_min_similarity))
    floor = max(answer.list_min_similarity, top - answer.list_margin)
    return [c for c in scored if c[0] >= floor]


def _naming(asked: Sequence[str], retriever: Retriever) -> list[tuple[float, Hit, str]]:
    """Every paper whose abstract names one of ``asked`` (or a version of it), with the first sentence that does."""
    found = []
    for paper in retriever.papers():
        said = [s for s in split_sentences(paper.abstract) if not INJECTION.search(s) and any(names_version(n, s) for n in asked)]
        if said:
            found.append((2.0, Hit(paper=paper, chunk=paper.abstract, chunk_id=f"{paper.id}:name", score=0.0), said[0]))
    return found


def topic_phrase_terms(topic: str, retriever: Retriever, lone_word: bool = False) -> tuple[list[str], set[str]]:
    """The phrases a paper of the topic may state (:func:`topic_phrases`), and the hyphenated ones among them
    that at most one paper writes as such: those are also stated by a paper that has each of their parts as a
    word of its own ("the encoder feeds its states to the decoder" is an encoder-decoder design)."""
    phrases = topic_phrases(topic, lone_word)
    compounds = [ph for ph in phrases if compound_parts(ph)]
    if not compounds:
        return phrases, set()
    texts = [f"{p.title} {p.abstract}" for p in retriever.papers()]
    return phrases, {ph for ph in compounds if sum(name_in(ph, t) for t in texts) <= 1}


def stating_papers(phrases: Sequence[str], loose: set[str], seen: set[str], retriever: Retriever, most: int) -> list[Hit]:
    """Papers not in ``seen`` that state a distinctive phrase of the topic word for word ("self-play"):
    ranking can miss them when the phrase's words are common ("self" starts many titles). A phrase stated by
    more than ``most`` papers names no particular papers."""
    papers = retriever.papers()
    texts = {p.id: f"{p.title} {p.abstract}" for p in papers}
    found: dict[str, Hit] = {}
    for phrase in phrases:
        key = fold(phrase)
        # a substring test first (cheap); a loose term is stated in other words, so it is read whole
        said = [p for p in papers if (phrase in loose or key in fold(texts[p.id])) and _states(phrase, loose, texts[p.id])]
        if len(said) > most:
            continue  # a phrase this common names no particular papers
        for p in said:
            if p.id not in seen and p.id not in found:
                found[p.id] = Hit(paper=p, chunk=p.abstract, chunk_id=f"{p.id}:phrase", score=0.0)
    return list(found.values())
