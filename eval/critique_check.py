"""The critique alone, on answers whose rightness is known: no drafting, so it takes seconds.

``python -m paperchat.eval.critique_check eval/questions.jsonl [--judge] [--reread]`` checks, for every answerable
row, the generated wrong variants of its reference answer (changed number, wrong paper,
invented detail: must be caught) and the reference itself, and its hand-written ``reworded``
and ``terse`` correct answers (must be kept). Prints the counts as JSON, then each miss.
"""

from __future__ import annotations

import argparse
import json
import time

from paperchat.rag.services import build_pipeline, settings_from_env

from .questions import load_questions
from .runner import planted_checks, run_tool


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions")
    parser.add_argument("--judge", action="store_true", help="let the model judge too (slow: loads the model)")
    parser.add_argument("--reread", action="store_true", help="re-read claims with the model too (loads it)")
    args = parser.parse_args(argv)
    pipeline = build_pipeline(settings_from_env())
    critic = pipeline.critic(judge=args.judge, reread=args.reread)
    started = time.perf_counter()
    checks = []
    for row in load_questions(args.questions)[0]:
        for check in planted_checks(pipeline, row, critic):
            checks.append({**check, "id": row.id})
    right: dict[str, list[int]] = {}
    for c in checks:
        tally = right.setdefault(c["kind"], [0, 0])
        tally[0] += c["flagged"] == c["must_flag"]
        tally[1] += 1
    print(json.dumps({"judge": args.judge, "reread": args.reread, "right/total by kind": right, "seconds": round(time.perf_counter() - started, 1)}))
    for c in checks:
        if c["flagged"] != c["must_flag"]:
            print(f"  {'missed' if c['must_flag'] else 'false alarm'} {c['id']} {c['kind']}: {c['text'][:120]}")
            if not c["must_flag"]:
                print(f"      why: {'; '.join(c['reasons'])[:300]}")
    return 0


def run(argv: list[str] | None = None) -> int:
    """``main`` with a missing index or model file reported as a sentence, not a traceback."""
    return run_tool(main, "critique_check", argv)


if __name__ == "__main__":
    raise SystemExit(run())
