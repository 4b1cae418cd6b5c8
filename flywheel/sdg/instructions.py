"""Verifiable instructions (IFEval style): a registry of kinds, each described and checked in code.

The Nemotron-4 340B report (section 3.2.1) appends verifiable instructions from Zhou et al.
2023 (IFEval, arXiv:2311.07911) to synthetic prompts; a response's compliance is then checked
by a program rather than a judge. Written here rather than wrapping a packaged IFEval verifier
because the one found on PyPI needs NLTK tokenizer data fetched at run time plus nltk,
langdetect and datasets, none of which this pure module may rely on.

An *instruction* is a JSON-able dict ``{"kind": str, "params": dict, "text": str}``; ``text``
is the sentence appended to a prompt. ``REGISTRY[kind].verify(response, params)`` is pure.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flywheel.errors import FlywheelError

Params = dict[str, Any]

KEYWORD_POOL: tuple[str, ...] = (
    "balance",
    "future",
    "method",
    "history",
    "quality",
    "system",
    "energy",
    "pattern",
    "journey",
    "value",
    "detail",
    "community",
    "progress",
    "challenge",
    "resource",
)
FORBIDDEN_POOL: tuple[str, ...] = (
    "very",
    "really",
    "basically",
    "actually",
    "thing",
    "stuff",
    "nice",
    "literally",
    "obviously",
)
END_PHRASES: tuple[str, ...] = (
    "Is there anything else I can help with?",
    "Let me know if you have additional questions.",
    "That is all for now.",
    "Hope this helps!",
)
START_PHRASES: tuple[str, ...] = ("My answer is as follows:", "Here is my response:", "To begin with")
RELATIONS: tuple[str, ...] = ("at least", "less than")
COMMON_LETTERS = "etaoinsr"
RARE_LETTERS = "qzxjkvwybp"

_WORD = re.compile(r"\w+(?:['’]\w+)*")
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")  # where ``sentences`` splits
_BULLET = re.compile(r"(?m)^\s*[*-]\s+\S")
_HIGHLIGHT = re.compile(r"\*[^\n*]+\*")
_PLACEHOLDER = re.compile(r"\[[^\[\]\n]+\]")
_TITLE = re.compile(r"<<[^\n<>]*[^\s<>][^\n<>]*>>")
_SECTION = re.compile(r"(?im)^\s*(?:#+\s*)?(?:\*\*)?section\s+\d+")
_STAR_DIVIDER = re.compile(r"(?m)^\s*\*\*\*\s*$")
_BLANK_LINE = re.compile(r"\n\s*\n")
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.DOTALL)
_PS = {"P.S.": re.compile(r"(?im)^\s*(?:\*\*)?p\.\s?s\."), "P.P.S.": re.compile(r"(?im)^\s*(?:\*\*)?p\.\s?p\.\s?s\.")}


def words(text: str) -> list[str]:
    """Word tokens (letters/digits, inner apostrophes kept: "don't" is one word)."""
    return _WORD.findall(text)


def sentences(text: str) -> list[str]:
    """Sentences split after ``.``, ``!`` or ``?`` plus whitespace; wordless pieces dropped."""
    return [s for s in SENTENCE_BREAK.split(text.strip()) if _WORD.search(s)]


def compare(count: int, relation: str, n: int) -> bool:
    """``count >= n`` for "at least", ``count < n`` for "less than"."""
    if relation == "at least":
        return count >= n
    if relation == "less than":
        return count < n
    raise FlywheelError(f"unknown relation {relation!r}; expected one of {RELATIONS}")


def count_word(text: str, word: str) -> int:
    """How often ``word`` occurs in ``text`` as a whole word, any case (what the keyword checks count)."""
    return len(re.findall(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE))


def _quoted(items: list[str], joiner: str) -> str:
    quoted = [f'"{w}"' for w in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" {joiner} " + quoted[-1]


def _paragraph_count(text: str, sep: str) -> int | None:
    """Paragraphs split by ``***`` lines or blank lines; a lone ``<<title>>`` chunk and a
    postscript chunk are not counted. ``None`` when an inner paragraph is empty."""
    splitter = _STAR_DIVIDER if sep == "***" else _BLANK_LINE
    chunks = [c.strip() for c in splitter.split(text.strip())]
    if chunks and _TITLE.fullmatch(chunks[0]):
        chunks = chunks[1:]
    chunks = [c for c in chunks if not (_PS["P.S."].match(c) or _PS["P.P.S."].match(c))]
    if any(not c for c in chunks):
        return None
    return len(chunks)


def _sections_ok(text: str, n: int) -> bool:
    bodies = _SECTION.split(text)[1:]
    return len(bodies) == n and all(any(ch.isalnum() for ch in b) for b in bodies)


def _json_ok(text: str) -> bool:
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        return isinstance(json.loads(body), (dict, list))
    except (ValueError, RecursionError):
        return False


def _two_responses_ok(text: str) -> bool:
    parts = [p.strip() for p in re.split(r"\*{6,}", text)]
    return len(parts) == 2 and all(parts) and parts[0] != parts[1]


def placeholder_count(text: str) -> int:
    """Placeholders in square brackets, such as ``[name]``."""
    return len(_PLACEHOLDER.findall(text))


def capital_words(text: str) -> int:
    """Words of two or more letters written entirely in capitals."""
    return sum(1 for w in words(text) if len(w) >= 2 and w.isupper())


@dataclass(frozen=True)
class InstructionSpec:
    """One verifiable instruction kind.

    Attributes:
        kind: registry name.
        sample: draws random params.
        describe: params -> the instruction sentence shown to the model.
        check: (response, params) -> compliance; only called on non-blank strings.
    """

    kind: str
    sample: Callable[[random.Random], Params]
    describe: Callable[[Params], str]
    check: Callable[[str, Params], bool]

    def verify(self, response: str, params: Params) -> bool:
        """True when ``response`` follows the instruction; a blank response never does."""
        if not isinstance(response, str) or not response.strip():
            return False
        return bool(self.check(response, params))


def _rel(rng: random.Random, lo: int, hi: int) -> Params:
    return {"relation": rng.choice(RELATIONS), "n": rng.randint(lo, hi)}


def _letter(rng: random.Random) -> Params:
    # Common letters get a floor, rare ones a ceiling: a ceiling on "e" would forbid real prose.
    if rng.random() < 0.5:
        return {"letter": rng.choice(COMMON_LETTERS), "relation": "at least", "n": rng.randint(5, 15)}
    return {"letter": rng.choice(RARE_LETTERS), "relation": "less than", "n": rng.randint(2, 5)}


def _sentence_params(rng: random.Random) -> Params:
    # "less than" needs room for a real answer, so its bound starts higher.
    if rng.random() < 0.5:
        return {"relation": "at least", "n": rng.randint(3, 8)}
    return {"relation": "less than", "n": rng.randint(4, 10)}


_SPECS: tuple[InstructionSpec, ...] = (
    InstructionSpec(
        "length_max_words",
        lambda r: {"n": r.choice((100, 150, 200, 250, 300))},
        lambda p: f"Answer with at most {p['n']} words.",
        lambda t, p: len(words(t)) <= p["n"],
    ),
    InstructionSpec(
        "length_min_words",
        lambda r: {"n": r.choice((150, 200, 300, 400))},
        lambda p: f"Answer with at least {p['n']} words.",
        lambda t, p: len(words(t)) >= p["n"],
    ),
    InstructionSpec(
        "paragraphs",
        lambda r: {"n": r.randint(2, 5), "sep": r.choice(("***", "blank"))},
        lambda p: (
            f"Write exactly {p['n']} paragraphs, "
            + (
                "with a line containing only the markdown divider *** between consecutive paragraphs."
                if p["sep"] == "***"
                else "separated from each other by one blank line."
            )
        ),
        lambda t, p: _paragraph_count(t, p["sep"]) == p["n"],
    ),
    InstructionSpec(
        "bullets",
        lambda r: {"n": r.randint(2, 6)},
        lambda p: f'Include exactly {p["n"]} markdown bullet points, each on its own line starting with "* ".',
        lambda t, p: len(_BULLET.findall(t)) == p["n"],
    ),
    InstructionSpec(
        "keywords_include",
        lambda r: {"keywords": r.sample(KEYWORD_POOL, 2)},
        lambda p: f"Use the words {_quoted(p['keywords'], 'and')} in your response.",
        lambda t, p: all(count_word(t, k) > 0 for k in p["keywords"]),
    ),
    InstructionSpec(
        "keywords_forbidden",
        lambda r: {"words": r.sample(FORBIDDEN_POOL, 2)},
        lambda p: f"Do not use the words {_quoted(p['words'], 'or')} anywhere in your response.",
        lambda t, p: all(count_word(t, k) == 0 for k in p["words"]),
    ),
    InstructionSpec(
        "keyword_frequency",
        lambda r: {"keyword": r.choice(KEYWORD_POOL), **_rel(r, 2, 4)},
        lambda p: f'The word "{p["keyword"]}" must appear {p["relation"]} {p["n"]} times in your response.',
        lambda t, p: compare(count_word(t, p["keyword"]), p["relation"], p["n"]),
    ),
    InstructionSpec(
        "all_lowercase",
        lambda r: {},
        lambda p: "Write your whole response in lowercase letters; no capital letters at all.",
        lambda t, p: t == t.lower() and any(ch.isalpha() for ch in t),
    ),
    InstructionSpec(
        "all_uppercase",
        lambda r: {},
        lambda p: "Write your whole response in capital letters only.",
        lambda t, p: t == t.upper() and any(ch.isalpha() for ch in t),
    ),
    InstructionSpec(
        "capital_words_frequency",
        lambda r: _rel(r, 2, 10),
        lambda p: f"Use {p['relation']} {p['n']} words written entirely in capital letters (such as IMPORTANT).",
        lambda t, p: compare(capital_words(t), p["relation"], p["n"]),
    ),
    InstructionSpec(
        "json_format",
        lambda r: {},
        lambda p: "Format your whole response as valid JSON; a markdown code fence around it is allowed.",
        lambda t, p: _json_ok(t),
    ),
    InstructionSpec(
        "end_phrase",
        lambda r: {"phrase": r.choice(END_PHRASES)},
        lambda p: f'End your response with the exact phrase "{p["phrase"]}" and write nothing after it.',
        lambda t, p: t.strip().endswith(p["phrase"]),
    ),
    InstructionSpec(
        "start_phrase",
        lambda r: {"phrase": r.choice(START_PHRASES)},
        lambda p: f'Start your response with the exact phrase "{p["phrase"]}".',
        lambda t, p: t.strip().startswith(p["phrase"]),
    ),
    InstructionSpec(
        "sections",
        lambda r: {"n": r.randint(2, 5)},
        lambda p: (
            f"Divide your response into exactly {p['n']} sections and begin each one with "
            'its label, "Section 1", "Section 2" and so on.'
        ),
        lambda t, p: _sections_ok(t, p["n"]),
    ),
    InstructionSpec(
        "title",
        lambda r: {},
        lambda p: "Give your response a title wrapped in double angle brackets, like <<a day at sea>>.",
        lambda t, p: bool(_TITLE.search(t)),
    ),
    InstructionSpec(
        "no_commas",
        lambda r: {},
        lambda p: "Do not use a single comma anywhere in your response.",
        lambda t, p: "," not in t and "，" not in t,
    ),
    InstructionSpec(
        "quotation",
        lambda r: {},
        lambda p: "Put your entire response inside one pair of double quotation marks.",
        lambda t, p: len(t.strip()) > 2 and t.strip()[0] == '"' and t.strip()[-1] == '"',
    ),
    InstructionSpec(
        "placeholders",
        lambda r: {"n": r.randint(1, 3)},
        lambda p: f"Include at least {p['n']} placeholders in square brackets, such as [name].",
        lambda t, p: placeholder_count(t) >= p["n"],
    ),
    InstructionSpec(
        "postscript",
        lambda r: {"marker": r.choice(tuple(_PS))},
        lambda p: f"After the main part of your response, add a postscript that starts with {p['marker']}",
        lambda t, p: bool(_PS[p["marker"]].search(t)),
    ),
    InstructionSpec(
        "highlights",
        lambda r: {"n": r.randint(1, 4)},
        lambda p: f"Highlight at least {p['n']} parts of your response with markdown asterisks, like *this part*.",
        lambda t, p: sum(1 for h in _HIGHLIGHT.findall(t) if h.strip("* ")) >= p["n"],
    ),
    InstructionSpec(
        "sentence_count",
        _sentence_params,
        lambda p: f"Your response must contain {p['relation']} {p['n']} sentences.",
        lambda t, p: compare(len(sentences(t)), p["relation"], p["n"]),
    ),
    InstructionSpec(
        "letter_frequency",
        _letter,
        lambda p: f'The letter "{p["letter"]}" must appear {p["relation"]} {p["n"]} times in your response.',
        lambda t, p: compare(t.lower().count(p["letter"]), p["relation"], p["n"]),
    ),
    InstructionSpec(
        "two_responses",
        lambda r: {},
        lambda p: "Give two different responses, separated only by a line of six asterisks: ******",
        lambda t, p: _two_responses_ok(t),
    ),
)

REGISTRY: dict[str, InstructionSpec] = {spec.kind: spec for spec in _SPECS}


def spec_for(kind: str) -> InstructionSpec:
    """Registry lookup that names the culprit on failure."""
    if kind not in REGISTRY:
        raise FlywheelError(f"unknown instruction kind {kind!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[kind]


def make_instruction(kind: str, params: Params | None = None) -> dict[str, Any]:
    """An instruction dict ``{"kind", "params", "text"}`` from explicit params."""
    params = dict(params or {})
    return {"kind": kind, "params": params, "text": spec_for(kind).describe(params)}


def verify_all(response: str, instructions: list[dict[str, Any]]) -> tuple[bool, dict[str, bool]]:
    """Check a response against every instruction.

    Args:
        response: the assistant's reply.
        instructions: instruction dicts (``{"kind", "params", ...}``), e.g. from a row's meta.

    Returns:
        ``(all_ok, per_kind)`` with one bool per instruction kind; a blank response is never
        ``all_ok``.
    """
    per_kind: dict[str, bool] = {}
    for ins in instructions:
        if not isinstance(ins, dict) or "kind" not in ins:
            raise FlywheelError(f"verify_all: bad instruction record {ins!r:.80}")
        spec = spec_for(ins["kind"])
        try:
            per_kind[spec.kind] = spec.verify(response, ins.get("params") or {})
        except (KeyError, TypeError) as err:
            raise FlywheelError(f"verify_all: bad params for {spec.kind!r}: {err}") from err
    ok = all(per_kind.values()) and isinstance(response, str) and bool(response.strip())
    return ok, per_kind
