"""The critique's checks as an ordered registry of small named checks (``answer.disabled_checks`` turns them off).

Each check has a ``name``, a ``stage`` (when the :class:`~paperchat.rag.critique.critic.Critic` runs it),
``applies(ctx)`` and ``run(ctx) -> Finding | None``. The stages, in the order the critic runs them:

- ``claim``: before the claim's sources are chosen (a fragment, the drafting instructions, too short);
- ``repair``: once the sources that hold its facts are chosen, a number the abstract gives for another item, or
  for the other of "the larger/smaller", is replaced (a repair);
- ``meaning``: the claim's words are in the source, but does it say what the source says and what was asked?
- ``kept``: a kept claim re-read by the model (:mod:`paperchat.rag.verify`);
- ``sequence``: a claim read after the one before it ("This approach …" after a removed claim);
- ``answer``: the whole answer against the question (the kind of thing asked, wandering off, its premise).

The first finding of the ``claim`` and ``meaning`` stages withholds the claim; the checks after it
do not run. :data:`SKIPPED` and :data:`ONLY` say which checks a question's shape leaves out.
"""

from __future__ import annotations

from collections.abc import Callable

from ..corpus import Paper
from ..listing import GENERIC_NAMES
from ..shapes import asks_process, short_name, two_asks
from ..text import content_words, fold, name_in, names, numbers, proper_nouns, quantities
from ..verify import stated_in
from .asks import (
    ELSEWHERE,
    answers_quantity,
    asked_thing,
    gives_asked_thing,
    gives_items,
    description_of,
    names_only_a_paper,
    names_thing,
    own_ask,
    restates,
)
from .binding import rebind_extreme, rebind_number
from .claims import RESTATES, refers_back, removed_statement
from .context import AnswerContext, Check, ClaimContext, Finding
from .added import asked_kind, asked_kind_check, continues_check, reanswer_check
from .premises import premise_check, repeating
from .facts import (
    SEMANTIC_CLAUSE,
    SEMANTIC_FLOOR,
    SHORT_CLAIM_WORDS,
    best_sentence,
    echoes_instructions,
    fragment,
    weakest_clause,
)
from .meaning import describes, fits_best, fits_other_paper, unrelated, unstated


def _asked(ctx) -> bool:
    return bool(ctx.question)


# -- claim: before the sources are chosen --------------------------------------------


def _fragment(ctx: ClaimContext) -> Finding | None:
    why = fragment(ctx.text)
    return Finding(f"not a complete sentence: {why}") if why else None


def _instructions(ctx: ClaimContext) -> Finding | None:
    texts = [ctx.by_n[n].text for n in ctx.cited if n in ctx.by_n] if ctx.cited else [""]
    echo = any(echoes_instructions(ctx.text, t) for t in texts)
    return Finding("it repeats the drafting instructions, not a source") if echo else None


def _too_short(ctx: ClaimContext) -> Finding | None:
    short = ctx.bare and not (ctx.question and ctx.has_facts)
    return Finding("too short to be a statement the sources could support") if short else None


# -- repair: once the sources are chosen ----------------------------------------------


def _rebinding(rebind: Callable[[str, Paper], tuple[str, str] | None]) -> Callable[[ClaimContext], Finding | None]:
    def run(ctx: ClaimContext) -> Finding | None:
        repaired = rebind(ctx.text, ctx.paper)
        return Finding(repaired[1], text=repaired[0], withhold=False) if repaired else None

    return run


def _not_repaired(ctx: ClaimContext) -> bool:
    return not ctx.repaired  # one repair of a number per claim


# -- meaning: does the claim say what the source says, and what was asked? -------------


def _restated_identity(ctx: ClaimContext) -> Finding | None:
    """A which-paper claim that only says the question's own description of a paper ("Yes, FooNet [1] prunes
    heads by …" for "which paper prunes heads by …?"): its answer is the paper, so it becomes the paper's title,
    kept if the paper fits the description in words or in meaning (``fits_other_paper`` then compares it with the
    other sources). The reader's wording of the description is not the abstract's, and is not the answer."""
    paper = ctx.paper
    if names_only_a_paper(ctx.text, [paper]) or numbers(ctx.text):
        return None
    if any(not name_in(n, ctx.question) and not name_in(n, paper.title) for n in names(ctx.text) + proper_nouns(ctx.text)):
        return None  # it names something the question does not: it answers more than which paper
    named = set(content_words(paper.title))
    own = [w for w in content_words(ctx.text) if w not in named]
    asked = set(content_words(ctx.question))
    if not own or sum(w in asked for w in own) / len(own) < ctx.critic.restated_share:
        return None
    described = description_of(ctx.question)
    missing, support = ctx.critic.fits(described, described, ctx.by_n[ctx.chosen[0]])
    if missing:
        return Finding(f"the question's {', '.join(missing)} is not in the abstract of the paper cited")
    cosine = ctx.critic.similar(described, paper)[1] if ctx.critic.embedder is not None else 1.0
    if support < ctx.critic.low and cosine < SEMANTIC_FLOOR and not fits_best(ctx.critic, ctx.question, ctx.chosen[0],
                                                                            ctx.by_n, cosine):
        return Finding(f"the paper cited does not fit the question's description in words or meaning ({cosine:.2f})")
    ctx.identity = True
    return Finding("the rest of it restates the question's description: the paper cited is the answer",
                   text=f"{paper.title.rstrip('.')}.", withhold=False)


def _invented_part(ctx: ClaimContext) -> Finding | None:
    joined = " ".join(ctx.by_n[n].text for n in ctx.chosen)
    part, support = weakest_clause(ctx.text, joined, ctx.question)
    if part is not None and support < ctx.critic.clause_low:
        if ctx.critic.embedder is None or ctx.critic.similar(part, ctx.paper)[1] < SEMANTIC_CLAUSE:
            return Finding(f'"{part.strip(" .")}" is not in the cited abstract')
    return None


def _unstated_meaning(ctx: ClaimContext) -> Finding | None:
    if len(content_words(ctx.text)) < SHORT_CLAIM_WORDS:
        return None
    cosine = unstated(ctx.critic, ctx.text, ctx.check.lexical_support, [ctx.by_n[n].paper for n in ctx.chosen])
    if cosine is None:
        return None
    ctx.check.closest = round(cosine, 3)
    return Finding(f"no sentence of the cited abstract says this (the closest is {cosine:.2f} alike in meaning)")


def values_carry(text: str, question: str, paper: Paper) -> bool:
    """Whether ``text``'s load-bearing values carry it: it gives a number or a name that neither ``question`` nor
    ``paper``'s title gives, and ``paper``'s abstract states every number and name it gives.

    >>> p = Paper(id="f", title="FooNet: Audio", abstract="FooNet, trained on BirdClef with a ResNet-50 encoder: 86% recall.")
    >>> values_carry("Its encoder is a ResNet-50 tuned on bird songs", "What encoder does FooNet use?", p)
    True
    >>> values_carry("FooNet uses ViT-B", "What encoder does FooNet use?", p)  # a name the abstract does not state
    False
    >>> values_carry("FooNet gets 86% recall on bird songs", "Why does FooNet get 86% recall?", p)  # the question's own
    False
    >>> values_carry("On GPT-4 FooNet reaches 86% recall", "What does FooNet reach on GPT-4?", p)  # GPT-4 is not stated
    False
    >>> values_carry("FooNet: Audio is a cheese guide", "Is there a guide to making cheese?", p)  # its title only
    False
    """
    own = fold(short_name(paper.title))
    given = [v for v in numbers(text) + names(text) if fold(v) != own]
    # a name of the paper's title names the paper, not a fact of it; a generic name ("GPT-4") is anyone's
    new = [v for v in given
           if not stated_in(v, question) and not name_in(v, paper.title) and v.upper() not in GENERIC_NAMES]
    return bool(new) and all(stated_in(v, paper.abstract) for v in given)


def _or_values(run: Callable[[ClaimContext], Finding | None]) -> Callable[[ClaimContext], Finding | None]:
    """A wording check that stands aside when the re-reader will derive the claim's values again from the abstract
    it cites (:func:`values_carry`): that says more than its other words, which a right answer may put in the
    reader's own. The claim is then ``carried``: each value must be read back (being in the abstract is not enough)."""

    def checked(ctx: ClaimContext) -> Finding | None:
        finding = run(ctx)
        if not (finding and finding.withhold and _rereads(ctx) and values_carry(ctx.text, ctx.question, ctx.paper)):
            return finding
        ctx.carried = True
        return Finding(notes=(f"{finding.reason}: its numbers and names are re-read instead",), withhold=False)

    return checked


def _reason(why: str | None) -> Finding | None:
    return Finding(why) if why else None


def _answers_quantity(ctx: ClaimContext) -> Finding | None:
    if two_asks(ctx.question) and not quantities(ctx.text):
        # a question that asks two things ("Which paper …, and what rate did it reach?") may get its number in
        # one claim and the rest in another
        return None
    why = answers_quantity(ctx.text, ctx.question, ctx.together())
    if why and ctx.critic.rereader is not None and len(ctx.chosen) == 1:
        # the word match is only a proxy: the model, answering the question again from the abstract alone, gives
        # the claim's numbers, so they are the ones asked for
        asked = own_ask(ctx.question, [ctx.paper])
        ctx.critic.calls += 1
        if ctx.critic.rereader.answers_with(ctx.text, asked, ctx.paper):
            return Finding(notes=("re-read: answering the question from the abstract gives these numbers",), withhold=False)
    return Finding(f"does not answer the question: {why}") if why else None


# -- kept, sequence -------------------------------------------------------------------


def _rereads(ctx: ClaimContext) -> bool:
    """Whether ``reread`` re-reads the claim: one paper cited, and not a claim made its title (nothing else to read)."""
    return ctx.critic.rereader is not None and len(ctx.chosen) == 1 and not ctx.identity


def _reread(ctx: ClaimContext) -> Finding | None:
    """Re-derive the claim's numbers and names from its abstract (see :mod:`paperchat.rag.verify`): a value the
    abstract gives otherwise is repaired, one it does not state is withheld; a short answer is read after the
    question it answers."""
    critic = ctx.critic
    context = own_ask(ctx.question, [ctx.paper]) if ctx.terse else ""
    result = critic.rereader.check(ctx.check.text, ctx.paper, ctx.question, context, ctx.carried, ctx.settled)
    critic.calls += result.calls
    repaired = result.text if result.verdict == "repaired" else None
    return Finding(text=repaired, notes=tuple(result.reasons), withhold=result.verdict == "withheld")


def _refers_back(ctx: ClaimContext) -> Finding | None:
    # "This approach ..." after a removed claim: what it refers to is gone
    return Finding("it refers back to a claim that was removed") if refers_back(ctx.text) else None


# -- answer: the whole answer against the question ------------------------------------


def _asked_thing(ctx: AnswerContext) -> Finding | None:
    """An answer none of whose kept claims gives the kind of thing the question asks for ("What probability …?"
    answered with how performance improves), when the cited abstracts name it."""
    head, kept, by_n = asked_thing(ctx.question), ctx.kept, ctx.by_n
    if head is None or not kept or any(gives_asked_thing(c.text, ctx.question, head) for c in kept):
        return None
    if not names_thing(head, " ".join(by_n[n].paper.abstract for c in kept for n in c.sources if n in by_n)):
        return None  # the abstracts call the thing asked for by other words: the answer may too
    for c in kept:  # a claim drawn from the sentence that names the thing asked for gives it in other words
        paper = by_n[c.sources[0]].paper if c.sources and c.sources[0] in by_n else None
        closest = [best_sentence(c.text, paper)[0], ctx.critic.similar(c.text, paper)[0]] if paper else []
        if any(names_thing(head, s) for s in closest if s):
            return None
        if paper and gives_items(c.text, ctx.question, head, paper):
            return None
    return Finding(f"the answer names no {head} and gives no name or number", claims=kept)


def _stays_on_question(ctx: AnswerContext) -> Finding | None:
    """A draft that wandered off the question (a claim removed as about something else): its other claims of
    SHORT_CLAIM_WORDS or more, with no name or number, that share no word with the question go too."""
    if not any(ELSEWHERE in r for c in ctx.checks for r in c.reasons):
        return None
    asked = set(content_words(ctx.question))
    wander = [c for c in ctx.checks if c.kept and not numbers(c.text) + names(c.text)
              and len(content_words(c.text)) >= SHORT_CLAIM_WORDS and not set(content_words(c.text)) & asked]
    return Finding(f"{ELSEWHERE}, like the claim before", claims=wander)


def _premise(ctx: AnswerContext) -> Finding | None:
    answered = {n for c in ctx.kept for n in c.sources}
    added = premise_check(ctx.question, list(ctx.by_n.values()), answered.pop() if len(answered) == 1 else None)
    repeats = repeating(ctx.question, ctx.by_n[added.sources[0]].paper, ctx.kept) if added else []
    return Finding("it repeats the question's premise, which the abstract does not state", claims=repeats, added=added) if added else None


#: The checks in the order they run (names: ``answer.disabled_checks``; the same as settings.CRITIQUE_CHECKS).
REGISTRY: tuple[Check, ...] = (
    Check("fragment", "claim", _fragment, doc="not a complete sentence"),
    Check("instructions", "claim", _instructions, doc="repeats the drafting instructions"),
    Check("too_short", "claim", _too_short, doc="too few words to state anything"),
    Check("rebind_number", "repair", _rebinding(rebind_number), _not_repaired, "a number of another item"),
    Check("rebind_extreme", "repair", _rebinding(rebind_extreme), _not_repaired, "the larger/smaller swapped"),
    Check("restated_identity", "meaning", _restated_identity, doc="a which-paper claim that restates the question"),
    Check("invented_part", "meaning", _or_values(_invented_part), doc="a part of the claim not in the abstract"),
    Check("unstated_meaning", "meaning", _or_values(_unstated_meaning), doc="no sentence close in meaning"),
    Check("restates", "meaning", lambda ctx: _reason(restates(ctx.text, ctx.question) and RESTATES), _asked),
    Check("unrelated", "meaning", lambda ctx: _reason(unrelated(ctx.critic, ctx.claim, ctx.question) and
                                                      f"does not answer the question: {ELSEWHERE}"), _asked),
    Check("answers_quantity", "meaning", _answers_quantity, _asked, "no number of the thing asked"),
    Check("describes", "meaning",
          lambda ctx: _reason(describes(ctx.critic, ctx.question, ctx.text, ctx.by_n[ctx.chosen[0]])),
          lambda ctx: _asked(ctx) and not ctx.identity, "the named paper does not fit the description"),
    Check("fits_other_paper", "meaning",
          lambda ctx: _reason(fits_other_paper(ctx.critic, ctx.question, ctx.chosen[0], ctx.by_n)),
          _asked, "another paper fits the description better"),
    Check("reread", "kept", _reread, _rereads),
    Check("refers_back", "sequence", _refers_back,
          lambda ctx: ctx.check.kept and ctx.previous is not None and removed_statement(ctx.previous, ctx.question)),
    Check("asked_thing", "answer", _asked_thing, _asked, "the kind of thing asked is not given"),
    Check("stays_on_question", "answer", _stays_on_question, _asked, "wandered off the question"),
    Check("premise", "answer", _premise, _asked, "the question's own number is not the paper's, or is the other way"),
    Check("asked_kind", "answer", asked_kind_check,
          lambda ctx: ctx.critic.kinds is not None and asked_kind(ctx.question) is not None,
          "the answer names no name of the kind asked (a model, a benchmark) that the abstract names"),
    Check("reanswer", "answer", reanswer_check, lambda ctx: ctx.critic.rereader is not None and bool(ctx.question),
          "the answer lacks the value the abstract gives when asked again"),
    Check("continues", "answer", continues_check, lambda ctx: asks_process(ctx.question),
          "a how-does-it-work answer stops where the abstract's description of the method goes on"),
)

#: Checks a question's shape leaves out: a which-paper answer is a paper's name.
SKIPPED: dict[str, frozenset[str]] = {
    "which-paper": frozenset({"unrelated", "asked_thing", "asked_kind", "reanswer", "continues"}),
    "list": frozenset({"asked_kind", "reanswer", "continues"}),
    "metadata": frozenset({"asked_kind", "reanswer", "continues"}),
    "comparison": frozenset({"continues"}),
}
#: Checks only some shapes run: a which-paper answer's paper must fit the question's description.
ONLY: dict[str, frozenset[str]] = {
    "restated_identity": frozenset({"which-paper"}),
    "describes": frozenset({"which-paper"}),
    "fits_other_paper": frozenset({"which-paper"}),
}


def for_stage(stage: str, shape: str, disabled: frozenset[str] = frozenset()) -> list[Check]:
    """The checks of ``stage`` that run for a question of ``shape``, in order, without the ``disabled`` ones."""
    return [
        c for c in REGISTRY
        if c.stage == stage and c.name not in disabled and c.name not in SKIPPED.get(shape, ())
        and (c.name not in ONLY or shape in ONLY[c.name])
    ]


def check_names() -> tuple[str, ...]:
    """Every check's name, in the registry's order."""
    return tuple(c.name for c in REGISTRY)

