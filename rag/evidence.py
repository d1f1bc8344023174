"""The abstract sentences a question is answered from, and how close the papers found come to the question.

Context shape, chosen by measurement (README, "How answers are made"): rather than
whole abstracts, the model sees the sentences of the top papers that best match the
question (MiniLM similarity plus word overlap), grouped under each paper's title in
their original order. On the public question set the chosen 8 sentences still hold
every answer keyword 98% of the time, at a third of the tokens of three full abstracts,
so the draft starts three times sooner on a CPU. The critique still checks claims
against the *full* abstracts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .answer import Related
from .critique import Source, paper_sentences
from .embeddings import Embedder
from .listing import introducing
from .retrieval import Hit
from .shapes import asks_introduced, two_asks
from .text import INJECTION, content_words, name_in, names, proper_nouns, split_sentences

#: A sentence shown as "what the abstracts do state" must be at least this close to the question (MiniLM cosine).
RELATED_MIN_SIMILARITY = 0.35
#: Added to a sentence that introduces something when the question asks what a paper introduces
#: (half of what a sentence holding every word of the question gains).
INTRODUCING_WEIGHT = 0.25


def _scored_sentences(embedder: Embedder, question: str, hits: Sequence[Hit]) -> list[tuple[float, int, int, str]]:
    """Every sentence of the hits' abstracts as (score, hit rank, sentence index, sentence)."""
    q_vec = embedder.embed([question])[0]
    q_words = set(content_words(question))
    # "What does SINC introduce …?" is answered where the paper introduces something ("we propose …, that
    # introduces a meta-model"), whatever else the sentence shares with the question
    asks_new = asks_introduced(question)
    candidates: list[tuple[float, int, int, str]] = []
    for rank, hit in enumerate(hits):
        sentences = [s for s in split_sentences(hit.paper.abstract) if not INJECTION.search(s)]
        if not sentences:
            continue
        vectors = embedder.embed(sentences)
        title_words = set(content_words(hit.paper.title))
        for i, (sentence, vec) in enumerate(zip(sentences, vectors)):
            words = title_words | set(content_words(sentence))
            overlap = len(q_words & words) / max(1, len(q_words))
            score = float(np.dot(vec, q_vec)) + 0.5 * overlap - 0.05 * rank
            if asks_new and introducing(sentence):
                score += INTRODUCING_WEIGHT
            candidates.append((score, rank, i, sentence))
    return candidates


def pick_evidence(
    embedder: Embedder,
    question: str,
    hits: Sequence[Hit],
    *,
    count: int,
    margin: float,
    whole_best: bool = False,
    always_whole: bool = False,
) -> list[Source]:
    """Numbered sources holding the ``count`` sentences that best match the question (none more than ``margin``
    below the best); with ``whole_best``, a question that asks two things (:func:`two_asks`), or any question
    with ``always_whole``, also gets all of the best-matching paper's sentences."""
    candidates = _scored_sentences(embedder, question, hits)
    ranked = sorted(candidates, key=lambda c: -c[0])
    # sentences far below the best match rarely hold the answer, and each costs the model time to read
    chosen = [c for c in ranked[:count] if c[0] >= ranked[0][0] - margin]
    if ranked and whole_best and (always_whole or two_asks(question)):
        # the second ask's sentence is often worded unlike the question ("beyond plain step-by-step optimization"
        # for "surpass plain gradient descent"): the paper that best answers the first ask is shown whole
        best = ranked[0][1]
        chosen += [c for c in candidates if c[1] == best and c not in chosen]
    sources: list[Source] = []
    for rank, hit in enumerate(hits):
        picked = sorted((i, s) for _, r, i, s in chosen if r == rank)
        if picked:
            sources.append(Source(n=len(sources) + 1, paper=hit.paper, excerpt=[s for _, s in picked], chunk=hit.chunk))
    return sources


def relevance(embedder: Embedder, question: str, hits: Sequence[Hit]) -> float:
    """How close the closest title or abstract sentence of ``hits`` is to ``question`` (MiniLM cosine)."""
    texts = [t for h in hits for t in (h.paper.title, *split_sentences(h.paper.abstract))]
    return float(np.max(embedder.embed(texts) @ embedder.embed([question])[0])) if texts else 0.0


def unrelated(embedder: Embedder, question: str, hits: Sequence[Hit], min_relevance: float) -> bool:
    """Whether no paper of ``hits`` is about what ``question`` asks: no name the question uses ("SPARK",
    "GPT-4o"; not plain capitalised words) is in them, and no title or sentence of theirs comes within
    ``min_relevance`` of it (a name found keeps the question, whatever its language or wording)."""
    if any(name_in(n, f"{h.paper.title} {h.paper.abstract}") for n in names(question) for h in hits):
        return False
    return relevance(embedder, question, hits) < min_relevance


def on_subject(question: str, paper) -> bool:
    """Whether ``paper`` is about something the question names (or the question names nothing).

    >>> from paperchat.rag.corpus import Paper
    >>> p = Paper(id="f", title="FooNet: Sparse Audio", abstract="FooNet denoises field recordings.")
    >>> on_subject("What SNR does FooNet reach on BarBench?", p), on_subject("Who painted the Mona Lisa?", p)
    (True, False)
    """
    asked = [n for n in dict.fromkeys(names(question) + proper_nouns(question))]
    return not asked or any(name_in(n, f"{paper.title} {paper.abstract}") for n in asked)


def related_sentences(embedder: Embedder, question: str, sources: Sequence[Source], limit: int = 2) -> list[Related]:
    """What the sources do state about the thing asked, for a withheld or refused answer."""
    out: list[Related] = []
    q = embedder.embed([question])[0]
    for src in sources:
        if len(out) >= limit or not on_subject(question, src.paper):
            continue
        sentences = [s for s in paper_sentences(src.paper) if not INJECTION.search(s)]
        if not sentences:
            continue
        sims = embedder.embed(sentences) @ q
        i = int(np.argmax(sims))
        if sims[i] >= RELATED_MIN_SIMILARITY:
            out.append(Related(n=src.n, title=src.paper.title, sentence=sentences[i]))
    return out
