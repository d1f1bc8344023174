"""The self-critique pass: check every claim of a draft against the abstracts it cites.

The checks are an ordered registry of small named checks (:mod:`.checks`; ``answer.disabled_checks``
switches them off by name), run by the :class:`Critic` (:mod:`.critic`) in stages:

1. **Deterministic** (a small model agrees with hallucinations, so these come first and
   cannot be overruled): citation numbers must exist; every number and every model or
   benchmark name in the claim must appear in a cited abstract (:mod:`.facts`); most of the claim's
   content words must appear there too. A claim whose facts sit in a *different* source
   is re-cited to it ("corrected"). A claim with no citation gets the source that holds
   its facts, or is unsupported; the refusal sentence needs no citation. A number given for
   the wrong item is rebound (:mod:`.binding`). A description (no numbers) not mostly in the
   source's words needs a source sentence close in meaning (:mod:`.meaning`, ``SEMANTIC_FLOOR``);
   the claim must answer what the question asks (:mod:`.asks`).
2. **Re-reading** (``answer.reread``): the model fills each kept claim's numbers and names again
   from the cited abstract alone (:mod:`paperchat.rag.verify`); at the answer level, the question is
   answered again from the abstract, and a question asking for a kind of name (a model, a benchmark)
   is checked against the model's typing of the abstract's names; the abstract's own sentences with
   what the answer lacks are added (:mod:`.added`, :mod:`paperchat.rag.kinds`).
3. **Model judgement** (optional; ``answer.model_judge``): for claims that pass, the model quotes the supporting
   sentence and says supported/unsupported, as JSON constrained by a schema. The quote
   must really be in the abstract; a claim the model rejects, or supports only with an
   unverifiable quote, is unsupported unless nearly all of it is in the source verbatim.
4. **Repair**: unsupported claims are removed from the answer; if none remain, the
   answer is the refusal. Nothing unsupported is ever shown as checked.

Records and claim splitting live in :mod:`.claims`; what a check reads and returns in :mod:`.context`. Every name is re-exported here.
"""

from .claims import (
    cite,
    ClaimCheck,
    ClaimVerdict,
    Critique,
    is_refusal,
    no_critique,
    REFERS_BACK,
    refers_back,
    Source,
    split_claims,
    Verdict,
)
from .facts import (
    best_sentence,
    CLAUSE_SUPPORT,
    echoes_instructions,
    FACTS_SUPPORT,
    facts_together,
    fragment,
    HIGH_SUPPORT,
    judge_can_change,
    lexical_support,
    LOW_SUPPORT,
    missing_facts,
    month_in,
    near,
    paper_sentences,
    same_number,
    SEMANTIC_CLAUSE,
    SEMANTIC_FLOOR,
    SEMANTIC_SUPPORT,
    SHORT_CLAIM_WORDS,
    SPELLED_OUT,
    spelled_out,
    states_something,
    verify_quote,
    weakest_clause,
)
from .binding import (
    magnitude,
    rebind_extreme,
    rebind_number,
    respectively_pairs,
)
from .asks import (
    answers_quantity,
    asked_phrase,
    asked_thing,
    DESCRIPTION_MARGIN,
    description_of,
    focus_words,
    GENERIC_ACRONYMS,
    gives_asked_thing,
    gives_items,
    ITEMS_SHARE,
    names_only_a_paper,
    names_thing,
    off_subject,
    own_ask,
    QUANTITY_QUESTION,
    restates,
    unnamed,
    UNRELATED_CLAIM,
    without_echo,
)
from .critic import (
    Critic,
)
from .premises import premise_check, reversed_premise
from .checks import REGISTRY, check_names
from .context import Check, Finding
from .critic import unknown_checks
