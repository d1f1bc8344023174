"""The checked claims made into the answer: its text shaped for the question, its rows, and its citations."""

from __future__ import annotations

from collections.abc import Sequence

from . import prompts
from .answer import AnswerRow, Citation
from .critique import Critique, Source, cite
from .listing import alias, display_name, mentions
from .plans import Plan
from .text import name_in


def finish(plan: Plan, result: Critique, sources: Sequence[Source]) -> tuple[str, list[AnswerRow]]:
    """The answer text and its rows, shaped for the question from the checked claims."""
    kept = [c for c in result.claims if c.kept]
    by_n = {s.n: s for s in sources}
    answer = plan.draft if plan.refusal and plan.draft else result.answer
    rows: list[AnswerRow] = []
    if plan.shape == "which-paper" and kept:
        cited = [n for c in kept for n in c.sources if n in by_n]
        if cited and not any(mentions(answer, by_n[n].paper) for n in cited):
            answer = f'The paper is "{by_n[cited[0]].paper.title}" [{cited[0]}]. {answer}'
        for n in dict.fromkeys(cited):  # the abstract's name for its method, when the title lacks it: "… From Data (PIT)"
            paper, other = by_n[n].paper, alias(by_n[n].paper)
            if other and paper.title in answer and not name_in(other, answer):
                quoted = f'"{paper.title}"' if f'"{paper.title}"' in answer else paper.title
                answer = answer.replace(quoted, f"{quoted} ({other})", 1)
    elif plan.shape == "list" and kept:
        for c in kept:
            if not c.sources or c.sources[0] not in by_n:
                continue
            src = by_n[c.sources[0]]
            same = next((r for r in rows if r.sources[0] == src.n), None)
            if same is not None:  # a line the critique re-cited to a paper already listed joins that paper's row
                same.text = f"{same.text} {cite(c.text, c.sources)}"
                continue
            rows.append(AnswerRow(label=src.paper.title, text=cite(c.text, c.sources), sources=c.sources))
        names_ = "; ".join(f"{display_name(by_n[r.sources[0]].paper)} [{r.sources[0]}]" for r in rows)
        answer = f"{len(rows)} paper{'s' if len(rows) != 1 else ''} match: {names_}."
    elif plan.shape == "comparison":
        for side in plan.sides:
            src = by_n.get(plan.side_of[side]) if side in plan.side_of else None
            claims = [c for c in kept if src is not None and src.n in c.sources]
            text = " ".join(cite(c.text, c.sources) for c in claims)
            rows.append(
                AnswerRow(label=side, text=text or prompts.SIDE_MISSING, sources=[src.n] if src and claims else [], missing=not claims)
            )
        placed = [c for c in kept if any(c.sources and c.sources[0] == r.sources[0] for r in rows if r.sources)]
        if kept and len(placed) == len(kept) and len(plan.side_of) == len(plan.sides):
            # each side's sentences say which paper they are about ("we report 18% …" does not)
            answer = " ".join(_named(r.label, by_n[r.sources[0]].paper, r.text) for r in rows if not r.missing)
        gaps = [r.label for r in rows if r.missing]
        if gaps and kept:
            answer = f"{answer} {prompts.SIDE_NOT_STATED.format(side=' and '.join(gaps))}"
            if result.verdict == "supported":
                # one side unanswered: the comparison asked is only partly answered, whatever the kept side's support
                result.verdict = "partially supported"
    return answer, rows


def _named(label: str, paper, text: str) -> str:
    """A comparison side's text, led by the side's name when its sentences name neither the side nor its paper
    (a described side is led by its paper's name).

    >>> from paperchat.rag.corpus import Paper
    >>> p = Paper(id="f", title="FooNet: Sparse Audio", abstract="FooNet denoises.")
    >>> _named("FooNet", p, "We gain 3 dB [1]."), _named("the audio paper", p, "It gains 3 dB [1]."), _named("FooNet", p, "FooNet gains [1].")
    ('FooNet: We gain 3 dB [1].', 'FooNet: It gains 3 dB [1].', 'FooNet gains [1].')
    """
    if name_in(label, text) or mentions(text, paper):
        return text
    lead = label if name_in(label, f"{paper.title} {paper.abstract}") else display_name(paper)
    return f"{lead}: {text}"


def citations(result: Critique, sources: Sequence[Source]) -> list[Citation]:
    """The cited sources of the kept claims, each with the abstract sentences that support them."""
    by_n = {s.n: s for s in sources}
    used: dict[int, list[str]] = {}
    for claim in result.claims:
        if not claim.kept:
            continue
        for n in claim.sources:
            support = used.setdefault(n, [])
            if claim.support and claim.support not in support:
                support.append(claim.support)
    out = []
    for n in sorted(used):
        src = by_n.get(n)
        if src is None:
            continue
        out.append(Citation(n=n, **src.paper.shown(), chunk=src.chunk, supporting=used[n]))
    return out
