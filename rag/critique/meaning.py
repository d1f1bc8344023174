"""The critique's checks by meaning (MiniLM cosines through the critic's embedder): a claim about something else,
a description no sentence of the abstract says, a which-paper answer whose paper does not fit the question.

Each takes the :class:`~paperchat.rag.critique.critic.Critic` (its embedder, its per-paper sentence vectors and
thresholds) and says nothing without an embedder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..corpus import Paper
from ..shapes import focus_overlap
from ..text import content_words, names, numbers, quantities
from .asks import DESCRIPTION_MARGIN, UNRELATED_CLAIM, description_of, names_only_a_paper, off_subject
from .claims import Source
from .facts import FACTS_SUPPORT, IDENTITY_FLOOR, SEMANTIC_FLOOR, SHORT_CLAIM_WORDS, lexical_support


def unrelated(critic: Any, text: str, question: str) -> bool:
    """Whether a claim of SHORT_CLAIM_WORDS or more, with no name or number, shares no content word with the
    question and is further from it in meaning (MiniLM cosine) than UNRELATED_CLAIM: true, perhaps, but about
    something else."""
    words = content_words(text)
    if critic.embedder is None or len(words) < SHORT_CLAIM_WORDS or set(words) & set(content_words(question)):
        return False  # a short answer ("Gradient-based methods.") is no less an answer for its few words
    if numbers(text) or names(text):
        return False  # its names and numbers are checked as such ("SFT (given coverage); RLHF via …")
    vectors = critic.embedder.embed([text, question])
    return float(vectors[0] @ vectors[1]) < UNRELATED_CLAIM


def unstated(critic: Any, description: str, lexical: float, papers: Sequence[Paper]) -> float | None:
    """For a description (no numbers) with ``lexical`` support below FACTS_SUPPORT: the cosine of the closest
    sentence of ``papers`` when it is below SEMANTIC_FLOOR (the meaning is not there), else None."""
    if critic.embedder is None or numbers(description) or quantities(description) or lexical >= FACTS_SUPPORT:
        return None
    cosine = max(critic.similar(description, p)[1] for p in papers)
    return cosine if cosine < SEMANTIC_FLOOR else None


def describes(critic: Any, question: str, text: str, source: Source) -> str | None:
    """For a which-paper claim that is only the paper's title ("[1]" drafts become one): the claim says "this
    paper is the one described", so the description must hold for that paper as any claim's words and facts
    must; why not, or None."""
    if not names_only_a_paper(text, [source.paper]):
        return None
    described = description_of(question)
    missing, support = critic.fits(described, described, source)
    if missing:
        return f"the question's {', '.join(missing)} is not in the abstract of the paper named"
    if support < critic.low:
        return "the abstract of the paper named does not state what the question describes"
    # a description is words that may all occur in an unrelated abstract ("a weather model that forecasts
    # rain from radar images" in a speech paper's): as for any description, its meaning must be there too
    cosine = unstated(critic, described, lexical_support(described, source.text), [source.paper])
    if cosine is not None:
        return f"no sentence of the paper named says what the question describes (the closest is {cosine:.2f} alike)"
    return off_subject(question, source.paper)


def fits_other_paper(critic: Any, question: str, n: int, by_n: dict[int, Source]) -> str | None:
    """For a which-paper question: why the paper a claim names is not the answer (another source fits the
    question's description clearly better), or None."""
    if critic.embedder is None or len(by_n) < 2:
        return None
    fit = description_fits(critic, question, by_n)
    best = max(fit, key=fit.get)
    if best != n and fit[best] - fit[n] >= DESCRIPTION_MARGIN:
        return f"the question's description fits source [{best}] better than the paper this claim names"
    return None


def fits_best(critic: Any, question: str, n: int, by_n: dict[int, Source], cosine: float) -> bool:
    """For a which-paper question: whether source ``n`` is the answer although its abstract words the question's
    description otherwise: its closest sentence is ``cosine`` >= IDENTITY_FLOOR alike, and it fits the description
    better than every other source by DESCRIPTION_MARGIN (a reader's paraphrase, not a paper nobody wrote)."""
    if critic.embedder is None or cosine < IDENTITY_FLOOR or n not in by_n or len(by_n) < 2:
        return False
    fit = description_fits(critic, question, by_n)
    return all(fit[n] - f >= DESCRIPTION_MARGIN for m, f in fit.items() if m != n)


def description_fits(critic: Any, question: str, by_n: dict[int, Source]) -> dict[int, float]:
    """How well each source fits a which-paper question's description (:func:`description_fit`), by number."""
    described = description_of(question)
    q = critic.embedder.embed([described])[0]
    titles = critic.embedder.embed([src.paper.title for src in by_n.values()]) @ q
    return {m: description_fit(critic, described, q, float(t), src.paper) for (m, src), t in zip(by_n.items(), titles)}


def description_fit(critic: Any, described: str, vector, title_cosine: float, paper: Paper) -> float:
    """How well ``paper`` fits a description (``vector`` its embedding): the closest sentence's (or the title's)
    cosine plus half the share of the description's content words it uses (the weights of evidence selection)."""
    vectors = critic.sentence_vectors(paper)
    cosine = float((vectors @ vector).max()) if vectors is not None else 0.0
    return max(cosine, title_cosine) + 0.5 * focus_overlap(described, f"{paper.title} {paper.abstract}")
