"""Instructions read off an answer: verifiable instructions the answer already follows.

Repair (:mod:`flywheel.judges.repair`) can only make an answer follow instructions about its form. Kinds about
its content -- use these words, this many sentences, at least N words -- cannot be added to an answer without
changing what it says. They can be taken from it instead: the answer's own words, counts and length give
instruction parameters it satisfies, so (question + instruction, answer) is a verified instruction-following
example whose answer the generator wrote (constraint back-translation, as in Qi et al. 2024, "Constraint
Back-translation Improves Complex Instruction Following").

``derive(kind, answer, rng)`` returns parameters for ``kind`` that ``answer`` satisfies, in the ranges the
instruction registry draws from where the answer allows it, or ``None`` when the answer gives none. The
instruction sentence is the registry's own, so a derived instruction reads exactly like a drawn one.

``two_responses`` is derived from two different answers to one prompt: :func:`join_two` writes them as the
instruction asks.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from flywheel.sdg.instructions import (
    COMMON_LETTERS,
    FORBIDDEN_POOL,
    KEYWORD_POOL,
    RARE_LETTERS,
    capital_words,
    sentences,
    verify_all,
    words,
)

Params = dict[str, Any]

# Function words: "use the words 'which' and 'there'" teaches nothing about following an instruction.
# fmt: off
_STOP = frozenset((
    "about", "above", "after", "again", "against", "because", "been", "before", "being", "below", "between", "both",
    "cannot", "could", "does", "doing", "down", "during", "each", "from", "further", "have", "having", "here",
    "into", "itself", "just", "more", "most", "only", "other", "ought", "over", "same", "should", "some", "such",
    "than", "that", "their", "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "under",
    "until", "very", "were", "what", "when", "where", "which", "while", "whom", "with", "would", "your", "yours",
    "also", "many", "much", "often", "will", "can",
))
# fmt: on
_MIN_WORD_STEPS = (50, 100, 150, 200, 300, 400)
_SEPARATOR = "\n******\n"


def _content_words(answer: str) -> Counter[str]:
    return Counter(
        w.lower() for w in words(answer) if len(w) >= 5 and w.isalpha() and w.isascii() and w.lower() not in _STOP
    )


def _keywords_include(answer: str, rng: random.Random) -> Params | None:
    counts = _content_words(answer)
    pool = [w for w in KEYWORD_POOL if w in counts] or sorted(counts)
    if len(pool) < 2:
        return None
    return {"keywords": rng.sample(pool, 2)}


def _keyword_frequency(answer: str, rng: random.Random) -> Params | None:
    counts = _content_words(answer)
    repeated = sorted(w for w, c in counts.items() if c >= 2)
    if repeated and rng.random() < 0.5:
        word = rng.choice(repeated)
        return {"keyword": word, "relation": "at least", "n": rng.randint(2, min(4, counts[word]))}
    rare = sorted(w for w, c in counts.items() if c <= 3)
    if not rare:
        return None
    word = rng.choice(rare)
    return {"keyword": word, "relation": "less than", "n": rng.randint(max(2, counts[word] + 1), 4)}


def _letter_frequency(answer: str, rng: random.Random) -> Params | None:
    text = answer.lower()
    if rng.random() < 0.5:
        letter = rng.choice(COMMON_LETTERS)
        if text.count(letter) < 5:
            return None
        return {"letter": letter, "relation": "at least", "n": rng.randint(5, min(15, text.count(letter)))}
    rare = [ch for ch in RARE_LETTERS if text.count(ch) <= 4]
    if not rare:
        return None
    letter = rng.choice(rare)
    return {"letter": letter, "relation": "less than", "n": rng.randint(max(2, text.count(letter) + 1), 5)}


def _sentence_count(answer: str, rng: random.Random) -> Params | None:
    s = len(sentences(answer))
    if s == 0:
        return None
    if rng.random() < 0.5 and s >= 2:
        return {"relation": "at least", "n": rng.randint(max(2, s - 2), s)}
    return {"relation": "less than", "n": rng.randint(s + 1, s + 3)}


def _length_min_words(answer: str, rng: random.Random) -> Params | None:
    n = len(words(answer))
    fits = [step for step in _MIN_WORD_STEPS if step <= n]
    return {"n": fits[-1]} if fits else None


def _capital_words_frequency(answer: str, rng: random.Random) -> Params | None:
    c = capital_words(answer)
    if c >= 2 and rng.random() < 0.5:
        return {"relation": "at least", "n": rng.randint(2, min(10, c))}
    return {"relation": "less than", "n": rng.randint(max(2, c + 1), max(2, c + 1) + 3)}


def _keywords_forbidden(answer: str, rng: random.Random) -> Params | None:
    counts = Counter(w.lower() for w in words(answer))
    absent = [w for w in FORBIDDEN_POOL if counts[w] == 0]
    return {"words": rng.sample(absent, 2)} if len(absent) >= 2 else None


_DERIVE: dict[str, Callable[[str, random.Random], Params | None]] = {
    "keywords_include": _keywords_include,
    "keyword_frequency": _keyword_frequency,
    "letter_frequency": _letter_frequency,
    "sentence_count": _sentence_count,
    "length_min_words": _length_min_words,
    "capital_words_frequency": _capital_words_frequency,
    "keywords_forbidden": _keywords_forbidden,
}
DERIVABLE_KINDS: tuple[str, ...] = (*sorted(_DERIVE), "two_responses")


def derive(kind: str, answer: str, rng: random.Random) -> Params | None:
    """Parameters for ``kind`` that ``answer`` satisfies, or None (see the module docstring).

    Only kinds of ``DERIVABLE_KINDS`` other than ``two_responses`` (use :func:`join_two`); the returned
    parameters are checked against ``answer`` with the registry's own verifier.
    """
    params = _DERIVE[kind](answer, rng)
    if params is None:
        return None
    ok, _ = verify_all(answer, [{"kind": kind, "params": params}])
    return params if ok else None


def join_two(first: str, second: str) -> str | None:
    """Two different answers as ``two_responses`` asks for them (one line of six asterisks between), or None
    when they are the same text or either holds such a line already."""
    a, b = first.strip(), second.strip()
    if not a or not b or a == b or re.search(r"\*{6,}", a + b):
        return None
    return f"{a}{_SEPARATOR}{b}"
