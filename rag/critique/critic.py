"""The critic: runs the registry's checks (:mod:`paperchat.rag.critique.checks`) on each claim of a draft and on
the whole answer, asks the model judge (optional), and repairs the answer from the claims kept."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..corpus import Paper
from ..embeddings import Embedder
from ..errors import PaperchatError, ConfigError
from ..models import LLM, Message, Request
from ..shapes import mentions
from ..text import content_words, fold, names, numbers, proper_nouns, quantities
from .. import prompts
from ..kinds import NameKinds
from ..verify import Rereader
from .asks import asked_phrase, own_ask, side_ask
from .checks import check_names, for_stage, values_carry
from .context import AnswerContext, ClaimContext, Finding
from .claims import ClaimCheck, Critique, Source, Verdict, cite, is_refusal, split_claims, withhold
from .facts import (
    CLAUSE_SUPPORT,
    HIGH_SUPPORT,
    LOW_SUPPORT,
    SEMANTIC_SUPPORT,
    SHORT_CLAIM_WORDS,
    best_sentence,
    judge_can_change,
    lexical_support,
    missing_facts,
    month_in,
    paper_sentences,
    verify_quote,
)

log = logging.getLogger(__name__)


#: the answer-level checks a comparison's side runs (against its own question and paper)
_SIDE_CHECKS = ("asked_kind", "reanswer")


def _new(added: Sequence[ClaimCheck], checks: Sequence[ClaimCheck]) -> list[ClaimCheck]:
    """The claims of ``added`` whose text no claim of ``checks`` has (two checks may add the same sentence)."""
    have = {c.text for c in checks}
    return [c for c in added if c.text not in have]


def unknown_checks(disabled) -> list[str]:
    """The names of ``disabled`` that name no check of the registry."""
    return [name for name in disabled if name not in check_names()]


@dataclass
class Critic:
    """Checks drafts; ``llm`` is the judge model (None: deterministic checks only); ``disabled`` names checks of
    the registry that do not run (``answer.disabled_checks``)."""

    llm: LLM | None = None
    layout: str = "rules_last"
    low: float = LOW_SUPPORT
    high: float = HIGH_SUPPORT
    clause_low: float = CLAUSE_SUPPORT
    #: a which-paper claim whose words outside the paper's title are at least this share the question's own is an
    #: answer naming that paper (``answer.restated_share``)
    restated_share: float = 0.7
    #: most abstract sentences the ``reanswer`` check adds to an answer or a comparison side (``answer.reanswer_sentences``)
    reanswer_sentences: int = 2
    #: most abstract sentences the ``continues`` check adds to a how-does-it-work answer (``answer.process_sentences``)
    process_sentences: int = 3
    judge_tokens: int = 64
    embedder: Embedder | None = None
    #: re-reads each kept claim's numbers and names from its abstract through the model (None: not done)
    rereader: Rereader | None = None
    #: types the names of abstracts through the model, for the ``asked_kind`` check (None: not done)
    kinds: NameKinds | None = None
    disabled: frozenset[str] = frozenset()
    calls: int = field(default=0, init=False)
    _vectors: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = unknown_checks(self.disabled)
        if unknown:
            raise ConfigError(
                f"No critique check is called {', '.join(map(repr, unknown))}. "
                f"Name checks to switch off from: {', '.join(check_names())}."
            )
        self.disabled = frozenset(self.disabled)

    def check(
        self,
        draft: str,
        sources: Sequence[Source],
        sources_text: str = "",
        on_claim: Callable[[ClaimCheck], None] | None = None,
        question: str = "",
        shape: str = "factoid",
    ) -> Critique:
        """Check every claim of ``draft`` against ``sources`` (and whether it answers ``question``, a
        question of ``shape``: see :func:`paperchat.rag.shapes.classify`)."""
        started = time.perf_counter()
        self.calls = 0
        by_n = {s.n: s for s in sources}
        checks = self._check_claims(draft, by_n, sources_text, question, on_claim, shape)
        ctx = AnswerContext(self, checks, question, shape, by_n)
        found_kind = False
        for entry in self._stage("answer", shape, ctx):
            if entry.name == "reanswer" and found_kind:
                continue  # the answer has the abstract's names of the kind asked: nothing more to add
            finding = entry.run(ctx)
            found_kind = found_kind or (entry.name == "asked_kind" and finding is not None)
            if finding is None:
                continue
            withhold(finding.claims, finding.reason)
            if finding.added is not None:  # the question's own false number is corrected first
                checks.insert(0, finding.added)
                if on_claim:
                    on_claim(finding.added)
            for added in _new(finding.then, checks):  # the abstract's sentences with what was asked, last
                checks.append(added)
                if on_claim:
                    on_claim(added)
        return self._repair(checks, time.perf_counter() - started)

    def check_parts(self, parts: Sequence[tuple[str, str, str]], sources: Sequence[Source]) -> Critique:
        """Check a draft written in parts (the sides of a comparison): each part is ``(draft, question,
        sources_text)``, checked against the question asked of it; one verdict for the whole."""
        started = time.perf_counter()
        self.calls = 0
        by_n = {s.n: s for s in sources}
        checks: list[ClaimCheck] = []
        for draft, asked, text in parts:
            # a side's claims answer what its question asks of its own paper, not how the two sides relate
            part = self._check_claims(draft, by_n, text, side_ask(asked))
            # each side is asked again of its own paper: a side that answered something else gets the abstract's value
            side = AnswerContext(self, part, asked, "factoid", by_n)
            for entry in self._stage("answer", "factoid", side):
                if entry.name in _SIDE_CHECKS and (finding := entry.run(side)) is not None:
                    withhold(finding.claims, finding.reason)
                    part += _new(finding.then, part)
                    break  # the side has the abstract's names of the kind asked, or its value read again
            checks += part
        return self._repair(checks, time.perf_counter() - started)

    def _stage(self, stage: str, shape: str, ctx) -> list:
        """The registry's checks of ``stage`` that apply to ``ctx``, in order."""
        return [c for c in for_stage(stage, shape, self.disabled) if c.applies(ctx)]

    def _check_claims(
        self,
        draft: str,
        by_n: dict[int, Source],
        sources_text: str,
        question: str,
        on_claim: Callable[[ClaimCheck], None] | None = None,
        shape: str = "factoid",
    ) -> list[ClaimCheck]:
        checks: list[ClaimCheck] = []
        for text, cited in split_claims(draft):
            check = self._check_claim(text, cited, by_n, sources_text, question, shape)
            ctx = ClaimContext(self, check, check.text, check.text, cited, by_n, question, shape,
                               previous=checks[-1] if checks else None)
            self._first_withholds(ctx, "sequence")
            checks.append(check)
            if on_claim:
                on_claim(check)
        return checks

    # -- one claim -------------------------------------------------------------------

    def _first_withholds(self, ctx: ClaimContext, stage: str) -> bool:
        """Run ``stage``'s checks until one withholds the claim (True); repairs on the way are applied."""
        for entry in for_stage(stage, ctx.shape, self.disabled):
            if not entry.applies(ctx):  # asked when its turn comes: an earlier check may have changed the claim
                continue
            finding = entry.run(ctx)
            if finding is None:
                continue
            if finding.text is not None:
                self._apply_repair(ctx, finding, stage)
            ctx.check.reasons.extend(finding.notes)
            if finding.withhold:
                ctx.check.verdict = "unsupported"
                if finding.reason:
                    ctx.check.reasons.append(finding.reason)
                return True
        return False

    @staticmethod
    def _apply_repair(ctx: ClaimContext, finding: Finding, stage: str) -> None:
        """A repair: the claim's new text (a terse answer's is still read after its question)."""
        if stage == "kept":  # re-reading repaired a kept claim
            ctx.check.text = finding.text
            ctx.check.verdict = "corrected"
            return
        ctx.claim = ctx.claim.replace(ctx.text, finding.text) if ctx.terse else finding.text
        ctx.settled += tuple(v for v in numbers(finding.text) if v not in numbers(ctx.text))
        ctx.text = ctx.check.text = finding.text
        ctx.check.reasons.append(finding.reason)
        ctx.repaired = True

    def _check_claim(
        self, text: str, cited: list[int], by_n: dict[int, Source], sources_text: str, question: str = "",
        shape: str = "factoid",
    ) -> ClaimCheck:
        check = ClaimCheck(text=text, cited=cited)
        if is_refusal(text):
            check.verdict = "refusal"
            return check
        ctx = ClaimContext(self, check, text, text, cited, by_n, question, shape)
        ctx.has_facts = bool(numbers(text) or names(text) or quantities(text) or proper_nouns(text))
        ctx.bare = len(content_words(text)) < 2
        phrase = False
        if ctx.bare and question and not ctx.has_facts:
            # "Biomedical [1]." answers "which area was the method tested in?" when a cited abstract says it where it
            # speaks of what the question asks ("… on biomedical domain"): that sentence is its support
            phrase = ctx.has_facts = any(n in by_n and asked_phrase(text, question, by_n[n].paper) for n in cited)
        if self._first_withholds(ctx, "claim"):
            return check
        # a short answer ("It has 2 authors.", "Sep 12, 2018.") is read together with the question it answers
        ctx.terse = bool(question) and ctx.has_facts and len(content_words(text)) < SHORT_CLAIM_WORDS
        bad = [n for n in cited if n not in by_n]
        if bad:
            check.reasons.append(f"cites source {', '.join(map(str, bad))}, which does not exist")
        # a terse answer ("47.4% [1].") is read together with the question it answers (in a question about two
        # papers, the part asked of the cited one)
        if ctx.terse and not phrase:
            ctx.claim = f"{own_ask(question, [by_n[n].paper for n in cited if n in by_n])} {text}"
        ctx.chosen, ctx.carried = self._choose_sources(ctx.claim, text, cited, by_n, check, question)
        if not ctx.chosen:
            check.verdict = "unsupported"
            return check
        check.sources = ctx.chosen
        self._first_withholds(ctx, "repair")  # a number given for the wrong item or extreme: the right one
        check.lexical_support = round(lexical_support(ctx.claim, " ".join(by_n[n].text for n in ctx.chosen)), 3)
        if self._first_withholds(ctx, "meaning"):
            return check
        check.support, _ = best_sentence(ctx.claim, ctx.paper)
        as_cited = set(ctx.chosen) <= {n for n in cited if n in by_n} and cited
        check.verdict = "supported" if as_cited and not ctx.repaired else "corrected"
        if self._first_withholds(ctx, "kept"):
            return check
        if self.llm is not None and not ctx.terse:
            if judge_can_change(check, ctx.paper, self.high):
                self._judge(check, by_n[ctx.chosen[0]], sources_text)
            else:
                check.reasons.append("kept without asking the model: the source states it in these words")
        return check

    def fits(self, claim: str, facts_of: str, source: Source) -> tuple[list[str], float]:
        """Facts of the claim missing from ``source``, and how much of the claim it supports."""
        support = lexical_support(claim, source.text)
        if support < self.low and self.embedder is not None and self.similar(claim, source.paper)[1] >= SEMANTIC_SUPPORT:
            support = self.low  # the same meaning in other words
        return missing_facts(facts_of, source.text), support
    def _choose_sources(
        self, claim: str, text: str, cited: list[int], by_n: dict[int, Source], check: ClaimCheck, question: str = ""
    ) -> tuple[list[int], bool]:
        """The cited sources that hold the claim's facts, else the one other source that does (re-cited); and
        whether that source was chosen for the claim's values alone (:func:`values_carry`: it is re-read strictly)."""
        valid = [n for n in cited if n in by_n]
        if valid:
            fits = {n: self.fits(claim, text, by_n[n]) for n in valid}
            together = " ".join(by_n[n].text for n in valid)
            missing = missing_facts(text, together)
            support = max([lexical_support(claim, together)] + [f[1] for f in fits.values()])
            if not missing and support >= self.low:
                # keep every cited source that holds one of the claim's facts or a share of its words
                facts = numbers(text) + names(text) + proper_nouns(text)
                return [
                    n for n in valid
                    if fits[n][1] >= self.low or any(month_in(f, by_n[n].text) for f in facts) or fits[n][1] >= 0.25
                ] or valid, False
            if missing:
                check.reasons.append(f"{', '.join(missing)} not in the cited abstract")
            else:
                check.reasons.append(f"only {support:.0%} of its words are in the cited abstract")
        elif not cited:
            check.reasons.append("no citation")
        # re-cite: the one source that holds all the facts and most of the words; a claim that
        # names a paper can only move to that paper
        named = [n for n, src in by_n.items() if mentions(text, src.paper)]
        candidates = [n for n in (named or by_n) if n not in valid]
        ranked = sorted(((self.fits(claim, text, by_n[n]), n) for n in candidates), key=lambda i: (len(i[0][0]), -i[0][1]))
        if ranked and not ranked[0][0][0] and ranked[0][0][1] >= self.low:
            check.reasons.append(f"re-cited to source {ranked[0][1]}, which contains it")
            return [ranked[0][1]], False
        if self.rereader is not None:
            # a claim in the reader's words ("the bird-song encoder was tuned on 40 hours of audio") whose numbers and
            # names one source alone states: that source, whose abstract the re-reader checks each of them against
            holding = [n for n in candidates if values_carry(text, question, by_n[n].paper)]
            if len(holding) == 1:
                check.reasons.append(f"re-cited to source {holding[0]}, which states its numbers and names")
                return holding, True
        return [], False

    def sentence_vectors(self, paper: Paper):
        """The embeddings of ``paper_sentences(paper)``, computed once per paper (None without sentences or embedder)."""
        if self.embedder is None or not paper_sentences(paper):
            return None
        if paper.id not in self._vectors:
            self._vectors[paper.id] = self.embedder.embed(paper_sentences(paper))
        return self._vectors[paper.id]

    def similar(self, text: str, paper: Paper) -> tuple[str | None, float]:
        """The sentence of ``paper`` closest in meaning to ``text`` (embedding cosine), and the cosine."""
        vectors = self.sentence_vectors(paper)
        if vectors is None:
            return None, 0.0
        sentences = paper_sentences(paper)
        sims = vectors @ self.embedder.embed([text])[0]
        i = int(sims.argmax())
        return sentences[i], float(sims[i])

    def _judge(self, check: ClaimCheck, source: Source, sources_text: str) -> None:
        messages = [Message(r, c) for r, c in prompts.judge_messages(sources_text, check.text, source.n, self.layout)]
        try:
            self.calls += 1
            reply = self.llm.complete(
                Request(messages, max_tokens=self.judge_tokens, temperature=0.0, json_schema=prompts.JUDGE_SCHEMA)
            ).json()
            verdict = str(reply.get("verdict", "")).lower()
            quote = str(reply.get("quote", ""))
        except (ValueError, AttributeError) as err:
            log.info("judge reply unusable (%s); keeping the deterministic verdict", err)
            check.reasons.append("the model's judgement was unreadable")
            return
        except PaperchatError as err:
            log.warning("judge call failed (%s); keeping the deterministic verdict", err)
            check.reasons.append("the model could not judge this claim")
            return
        check.model_verdict = verdict
        check.model_quote = quote
        verified = verify_quote(quote, source.paper) if quote else None
        check.quote_verified = verified is not None
        if verified:
            check.support = verified
        if verdict != "supported":
            check.verdict = "unsupported"
            check.reasons.append("the model judged it unsupported by the source")
        elif not verified and check.lexical_support < 0.7:
            check.verdict = "unsupported"
            check.reasons.append("the model's supporting quote is not in the abstract")

    # -- the whole answer ------------------------------------------------------------

    def _repair(self, checks: list[ClaimCheck], seconds: float) -> Critique:
        kept, seen = [], set()
        for c in checks:  # a claim the draft repeats is said once
            if c.kept and fold(c.text) not in seen:
                kept.append(c)
                seen.add(fold(c.text))
        rejected = [c for c in checks if c.verdict == "unsupported"]
        if kept:
            answer = " ".join(cite(c.text, c.sources) for c in kept)
            verdict: Verdict = "partially supported" if rejected else "supported"
        elif rejected:
            answer, verdict = f"{prompts.REFUSAL} {prompts.WITHHELD}", "not supported"
        else:
            answer, verdict = prompts.REFUSAL, "refused"
        for c in rejected:
            c.reasons.append(prompts.REMOVED_NOTE)
        return Critique(
            claims=checks,
            verdict=verdict,
            answer=answer,
            removed=len(rejected),
            seconds=round(seconds, 3),
            model_calls=self.calls,
        )
