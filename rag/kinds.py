"""What kind of thing each name of an abstract is (a model, a benchmark or dataset, …), as the model reads it.

A question that asks "which benchmark …" or "what backbone model …" is answered by a name of that kind, and
an abstract names many things: its rivals, its base model, its benchmarks, the site it took data from. The
small model drafting an answer sometimes gives a true sentence about the wrong one ("… collects instructions
from a web hub" for "which benchmark …"), and lexical checks cannot tell a benchmark's name from a company's.
Typing names is a reading task a small model does well: given the abstract and its names, it says what kind
each one is, under a JSON schema that allows only :data:`KINDS`. That is asked once per paper and kept, so
it costs one call the first time a question of this kind touches a paper.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import MutableMapping

from . import prompts
from .corpus import Paper
from .errors import PaperchatError
from .models import LLM, Message, Request
from .text import INJECTION, names, proper_nouns, split_sentences

log = logging.getLogger("paperchat")

#: the kinds a name is typed as (the JSON schema's enum); the last is for the rest
KINDS = ("model", "benchmark or dataset", "method or algorithm", "metric", "organization or tool", "other")

#: the noun a question asks for -> the kind of name that answers it (only kinds whose answers are names)
ASKED_KINDS = {
    **dict.fromkeys(("model", "models", "backbone", "backbones", "llm", "llms", "checkpoint", "checkpoints"), "model"),
    **dict.fromkeys(
        ("benchmark", "benchmarks", "dataset", "datasets", "corpus", "corpora", "testbed", "testbeds", "suite"),
        "benchmark or dataset",
    ),
}

# the field's own words and amounts ("LLMs", "GPU", "13K", "v2"): not names
_FIELD_WORDS = frozenset("LLM VLM LVLM MLLM LM RL AI GPU CPU TPU NLP ML DL SOTA QA".split())
_AMOUNT = re.compile(r"[vV]?\d+(?:\.\d+)?[A-Za-z]?")

# a word that can continue a name: capitalised, a version ("V2", "v1.5") or a size ("7B")
_NAME_WORD = r"(?:[A-Z][\w.\-]*|[vV]\d[\w.]*|\d+(?:\.\d+)?[A-Za-z][\w.\-]*)"


def name_phrases(text: str, limit: int = 16) -> list[str]:
    """The names of ``text`` as whole phrases ("Hugging Face", "Natural Instructions V2"), first ``limit``.

    >>> name_phrases("We tune LLaMA3-8B on data from Hugging Face and test on Natural Instructions V2 and IFEval.")
    ['LLaMA3-8B', 'Hugging Face', 'Natural Instructions V2', 'IFEval']
    >>> name_phrases("Our LLMs use 13K GPUs and v2 of FooBench.")
    ['FooBench']
    """
    seeds = names(text) + proper_nouns(text)
    found: list[str] = []
    for sentence in split_sentences(text):
        for m in re.finditer(rf"(?<![\w\-]){_NAME_WORD}(?:\s+{_NAME_WORD}){{0,3}}", sentence):
            words = m.group(0).rstrip(".,;:").split()
            if m.start() == 0 and words[0] not in seeds:  # "We", "Extensive": a sentence's first word
                words = words[1:]
            # a run is a name when one of its words is (a lone capitalised word must be found mid-sentence), and
            # starts with a word, not an amount ("13K GPUs")
            while words and (not any(w.rstrip(".,") in seeds for w in words) or _AMOUNT.fullmatch(words[0])):
                words = words[1:]
            phrase = " ".join(words)
            if phrase.upper().rstrip("S") in _FIELD_WORDS:
                continue  # "LLMs", "GPU", "13K", "v2": the field's words and amounts, not names
            if phrase and phrase not in found and len(phrase) >= 2:
                found.append(phrase)
    return found[:limit]


class NameKinds:
    """Types the names of abstracts through ``llm`` (any backend of the :class:`LLM` seam); ``cache`` keeps each
    paper's answer (pass one dict for all questions, so a paper is typed once)."""

    def __init__(self, llm: LLM, cache: MutableMapping[str, dict[str, str]] | None = None, max_names: int = 16):
        self.llm = llm
        self.cache = {} if cache is None else cache
        self.max_names = max_names
        self.calls = 0

    def of(self, paper: Paper) -> dict[str, str]:
        """Each name of ``paper``'s abstract -> its kind ({} when it names nothing or the model cannot be asked)."""
        if paper.id in self.cache:
            return self.cache[paper.id]
        abstract = " ".join(s for s in split_sentences(paper.abstract) if not INJECTION.search(s))
        found = name_phrases(abstract, self.max_names)
        kinds: dict[str, str] = {}
        if found:
            messages = [Message(r, c) for r, c in prompts.kinds_messages(paper.title, abstract, found, KINDS)]
            self.calls += 1
            try:
                reply = self.llm.complete(Request(
                    messages, max_tokens=12 * len(found) + 16, temperature=0.0,
                    json_schema=prompts.kinds_schema(found, KINDS),
                ))
                read = json.loads(reply.text)
                kinds = {n: read[n] for n in found if read.get(n) in KINDS}
            except (PaperchatError, ValueError, AttributeError) as err:
                log.warning("typing the names of %s failed (%s)", paper.id, err)
                return {}  # not kept: the next question asks again
        self.cache[paper.id] = kinds
        return kinds

    def named(self, paper: Paper, kind: str) -> list[str]:
        """The names of ``paper``'s abstract of ``kind``, in the abstract's order."""
        return [n for n, k in self.of(paper).items() if k == kind]
