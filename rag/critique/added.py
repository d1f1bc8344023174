"""Sentences of an abstract added to an answer that lacks what the question asks for, and the kind of name asked.

Two answer-level checks add the abstract's own sentences (supported by construction, cited): ``reanswer``
(the question answered again from the abstract gives a value the answer lacks) and ``asked_kind`` (the
question asks for a kind of name, a model or a benchmark, and the answer names none of the kind the
abstract names; the names are typed by the model, :mod:`paperchat.rag.kinds`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..corpus import Paper
from ..kinds import ASKED_KINDS
from ..listing import alias, short_name
from ..text import INJECTION, content_words, fold, name_in, names, proper_nouns, split_sentences
from ..verify import answer_values, stated_in
from .asks import asked_thing, asks_amount
from .claims import ClaimCheck
from .context import AnswerContext, Finding
from .facts import paper_sentences


def holding_sentences(paper: Paper, n: int, values: Sequence[str], reply: str, limit: int, why: str) -> list[ClaimCheck]:
    """The abstract's sentences that hold ``values`` (at most ``limit``), as supported claims citing ``n``, in the
    abstract's order: each time the one holding most of the values still missing, as written ("6 times", before
    "six methods"), then the one sharing most words with ``reply``."""
    said = set(content_words(reply))
    sentences = [x for x in paper_sentences(paper) if not INJECTION.search(x)]
    values = list(values)
    added: list[ClaimCheck] = []
    while values and sentences and len(added) < limit:
        def score(x: str) -> tuple[int, int]:
            held = sum(2 if fold(v) in fold(x) else 1 for v in values if stated_in(v, x))
            return held, len(said & set(content_words(x)))

        best = max(sentences, key=score)
        if not score(best)[0]:
            break
        added.append(ClaimCheck(text=best.rstrip(), cited=[n], sources=[n], verdict="supported", support=best,
                                reasons=[why]))
        values = [v for v in values if not stated_in(v, best)]
        sentences.remove(best)
    order = {x: i for i, x in enumerate(paper_sentences(paper))}
    return sorted(added, key=lambda c: order.get(c.support or "", 0))


def asked_kind(question: str) -> str | None:
    """The kind of name (:data:`paperchat.rag.kinds.ASKED_KINDS`) that answers ``question``, None for any other ask.

    >>> asked_kind("FooNet distils speech; what checkpoint is it distilled from?")
    'model'
    >>> asked_kind("Which benchmarks does FooNet report?"), asked_kind("What speed-up does FooNet report?")
    ('benchmark or dataset', None)
    """
    head = asked_thing(question, anywhere=True)
    if head is None or asks_amount(question):
        return None
    return ASKED_KINDS.get(head.lower())


def wanted_names(kinds: dict[str, str], kind: str, question: str, paper: Paper) -> list[str]:
    """The names of ``kind`` in ``kinds`` (one abstract's typed names) that could answer ``question``: not one the
    question states, not the paper's own name.

    >>> p = Paper(id="x", title="FooNet: Pruning", abstract="")
    >>> wanted_names({"FooNet": "model", "Qwen-7B": "model", "BarBench": "benchmark or dataset", "Bar-3B": "model"},
    ...              "model", "Does FooNet beat Bar-3B, and which model does it prune?", p)
    ['Qwen-7B']
    """
    own = {fold(x) for x in (short_name(paper.title), alias(paper)) if x}
    return [n for n, k in kinds.items() if k == kind and fold(n) not in own and not stated_in(n, question)]


def other_kind_claims(claims: Sequence[ClaimCheck], kinds: dict[str, str], kind: str, question: str) -> list[ClaimCheck]:
    """The claims whose names (those the question does not state) are all typed, and none of them ``kind``: they
    answer with a name of another kind ("data from a web hub" for "which benchmark")."""
    out = []
    for c in claims:
        named = [x for x in dict.fromkeys(names(c.text) + proper_nouns(c.text)) if not stated_in(x, question)]
        typed = [next((k for n, k in kinds.items() if stated_in(x, n) or stated_in(n, x)), None) for x in named]
        if named and all(typed) and kind not in typed:
            out.append(c)
    return out


def value_unit(value: str) -> str:
    """What a number counts, without the number: its scale letter, sign or unit word.

    >>> value_unit("13B"), value_unit("7B"), value_unit("9 hours"), value_unit("15.6%"), value_unit("eight")
    ('b', 'b', 'hours', '%', 'eight')
    """
    return re.sub(r"[\d.,\s]", "", fold(value))


def _answer_paper(ctx: AnswerContext) -> int | None:
    """The source number of the paper the answer is about: its first kept claim's, else its first cited one."""
    n = next((m for c in ctx.kept for m in c.sources if m in ctx.by_n), None)
    return n if n is not None else next((m for c in ctx.checks for m in c.cited if m in ctx.by_n), None)


def asked_kind_check(ctx: AnswerContext) -> Finding | None:
    """A question that asks for a kind of name (a model, a benchmark) whose answer names none of that kind, when the
    abstract names some (the model types the abstract's names, :mod:`paperchat.rag.kinds`): the abstract's sentences
    holding them are added, and the claims that answered with a name of another kind are withheld."""
    n, kind = _answer_paper(ctx), asked_kind(ctx.question)
    if n is None or kind is None:
        return None
    paper = ctx.by_n[n].paper
    before = ctx.critic.kinds.calls
    kinds = ctx.critic.kinds.of(paper)
    ctx.critic.calls += ctx.critic.kinds.calls - before
    wanted = wanted_names(kinds, kind, ctx.question, paper)
    if not wanted or any(stated_in(w, c.text) for w in wanted for c in ctx.kept):
        return None
    why = f"the question asks for a {kind}; the abstract names {', '.join(wanted)}, which the answer did not"
    added = holding_sentences(paper, n, wanted, ctx.question, ctx.critic.reanswer_sentences, f"added: {why}")
    if not added:
        return None
    wrong = other_kind_claims([c for c in ctx.kept if c.sources == [n]], kinds, kind, ctx.question)
    return Finding(f"it names something other than a {kind}: {why}", claims=wrong, then=tuple(added))


def reanswer_check(ctx: AnswerContext) -> Finding | None:
    """The question answered again from the answer's paper alone (QA-style, through the re-reader): when that answer
    gives numbers or names the abstract states and the kept claims do not give, the draft said something true about
    the right paper but not what was asked (its method, for "what latency does it measure?"); the abstract's sentences
    that hold those values are added (at most ``critic.reanswer_sentences``), in the abstract's words and cited."""
    n = _answer_paper(ctx)
    if n is None:
        return None
    paper = ctx.by_n[n].paper
    ctx.critic.calls += 1
    reply = ctx.critic.rereader.answer(ctx.question, paper)
    values = [v for v in answer_values(reply, paper) if not stated_in(v, ctx.question)]
    if asks_amount(ctx.question):  # an amount is asked: only a number answers it, not a name
        values = [v for v in values if v[:1].isdigit()]
    given = " ".join(c.text for c in ctx.kept)
    missing = [v for v in values if not stated_in(v, given)]
    if len(missing) < len(values):
        # an answer that gives some of the values gets the rest of the same kind ("13B" beside its "7B"), not the
        # reply's other details ("eight GPUs" beside "9 hours")
        units = {value_unit(v) for v in values if v not in missing}
        missing = [v for v in missing if v[:1].isdigit() and value_unit(v) in units]
    values = missing
    if not values:
        return None
    why = f"added: answering the question again from the abstract gives {', '.join(values)}, which the answer did not"
    added = holding_sentences(paper, n, values, reply, ctx.critic.reanswer_sentences, why)
    return Finding(why, then=tuple(added), withhold=False) if added else None


# Where an abstract's description of its method ends: the sentence that reports results (or points elsewhere).
_RESULTS = re.compile(
    r"^(?:(?:extensive|comprehensive|our|the|empirical|experimental|further)\s+)*"
    r"(?:experiments?|experimental results?|results|evaluations?|empirically|studies|code|project page|listing)\b"
    r"|\bwe (?:validate|evaluate|demonstrate|show|report|conduct|have observed)\b|\b(?:outperform|surpass)(?:s|es|ed|ing)?\b"
    r"|\bdemonstrat(?:e|es|ed|ing)\b|\bimprovements?\b|\bachiev(?:es|ed|ing)\b[^.]*\b(?:performance|results|accuracy|gains?)\b"
    r"|\bfrom \d[\d.]*%? to \d|\b(?:accuracy|f1|bleu|scores?|pass@\d+|win rate)\b[^.]*\d|https?://",
    re.IGNORECASE,
)


def describes_method(sentence: str) -> bool:
    """Whether an abstract's sentence still describes how the method works (not its results, code or page).

    >>> describes_method("We then route each token through a small gating network.")
    True
    >>> describes_method("Extensive experiments on four datasets show consistent gains.")
    False
    >>> describes_method("FooNet outperforms prior work by 3 points."), describes_method("It lifts F1 from 40 to 52.")
    (False, False)
    """
    return _RESULTS.search(sentence.strip()) is None


#: a sentence whose content words the answer already gives at least this share of is not added again
SAID_SHARE = 0.6


def _item_names(text: str) -> set[str]:
    return {fold(n) for n in names(text) + proper_nouns(text)}


def continued_sentences(paper: Paper, used: Sequence[str], given: str, limit: int, question: str = "") -> list[str]:
    """The abstract's sentences that go on describing the method after the last of ``used`` (sentences an answer
    drew on), up to the first that reports results, skipping those ``given`` already says; at most ``limit``. When
    ``question`` asks about one named part of the method, not the paper as a whole, the description of that part
    ends where a sentence names another part.

    >>> p = Paper(id="x", title="FooNet", abstract="We propose FooNet. It first masks the input with Grid-Drop. "
    ...     "Then a decoder fills the masks. Next, Token-Mix shuffles them. Experiments show gains.")
    >>> continued_sentences(p, ["It first masks the input with Grid-Drop."], "FooNet masks the input [1].", 3)
    ['Then a decoder fills the masks.', 'Next, Token-Mix shuffles them.']
    >>> continued_sentences(p, ["It first masks the input with Grid-Drop."], "", 3, "How does Grid-Drop work?")
    ['Then a decoder fills the masks.']
    """
    sentences = split_sentences(paper.abstract)
    at = [i for i, x in enumerate(sentences) if x in used]
    if not at or not describes_method(sentences[max(at)]):
        return []
    said = set(content_words(given))
    own = _item_names(paper.title) | {fold(n) for n in (short_name(paper.title), alias(paper)) if n}
    asked = {n for n in _item_names(question) - own if name_in(n, paper.abstract)}
    known = asked | own | _item_names(" ".join(sentences[i] for i in at))
    out: list[str] = []
    for sentence in sentences[max(at) + 1 :]:
        if len(out) >= limit or INJECTION.search(sentence) or not describes_method(sentence):
            break
        if asked and _item_names(sentence) - known:  # the part asked about is described; the next part is not asked
            break
        words = set(content_words(sentence))
        if words and len(words & said) / len(words) < SAID_SHARE:
            out.append(sentence)
    return out


def continues_check(ctx: AnswerContext) -> Finding | None:
    """A question that asks how something works, answered from one sentence of the paper's description when the
    abstract's description goes on (the small model names the first step or part and stops): the abstract's next
    sentences that still describe the method are added (at most ``critic.process_sentences``), cited."""
    n = _answer_paper(ctx)
    if n is None:
        return None
    kept = [c for c in ctx.kept if c.sources == [n] and c.support]
    paper = ctx.by_n[n].paper
    given = " ".join(c.text for c in ctx.kept)
    more = continued_sentences(paper, [c.support for c in kept], given, ctx.critic.process_sentences, ctx.question)
    if not more:
        return None
    why = "added: the question asks how it works, and the abstract's description goes on past the answer"
    added = tuple(ClaimCheck(text=x, cited=[n], sources=[n], verdict="supported", support=x, reasons=[why]) for x in more)
    return Finding(why, then=added, withhold=False)
