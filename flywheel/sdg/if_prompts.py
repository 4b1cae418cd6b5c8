"""Instruction-following prompts: sampling compatible instructions and building the prompts.

The Nemotron-4 340B report (section 3.2.1, "Synthetic instruction-following prompts") builds
three shapes from verifiable instructions (``flywheel.sdg.instructions``):

* single-turn: a synthetic prompt followed by one or more instructions;
* multi-turn: the first user turn states instructions that hold for this and every later
  question, and later turns only ask new questions;
* second-turn revision: question, answer, then a user turn asking to rewrite the answer so
  that it follows the instructions.

Instructions are sampled at random but never in contradictory pairs (lowercase with uppercase,
JSON with bullet points, ...), see ``CONFLICTS``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.sdg.instructions import REGISTRY, make_instruction, spec_for

Message = dict[str, str]
Instruction = dict[str, Any]

_JSON_CLASHES = (
    "paragraphs",
    "bullets",
    "sections",
    "title",
    "quotation",
    "postscript",
    "end_phrase",
    "start_phrase",
    "two_responses",
    "no_commas",
    "highlights",
    "placeholders",
    "sentence_count",
)
_CONFLICT_LIST: tuple[tuple[str, str], ...] = (
    ("all_lowercase", "all_uppercase"),
    ("all_lowercase", "capital_words_frequency"),
    ("all_uppercase", "capital_words_frequency"),
    # Fixed phrases, "Section X" and "P.S." carry capitals and lowercase letters.
    ("all_lowercase", "start_phrase"),
    ("all_lowercase", "end_phrase"),
    ("all_lowercase", "sections"),
    ("all_lowercase", "postscript"),
    ("all_uppercase", "start_phrase"),
    ("all_uppercase", "end_phrase"),
    ("length_max_words", "length_min_words"),
    ("sentence_count", "length_max_words"),
    ("sentence_count", "length_min_words"),
    ("paragraphs", "sections"),
    ("paragraphs", "two_responses"),
    ("sections", "two_responses"),
    ("quotation", "start_phrase"),
    ("quotation", "end_phrase"),
    ("quotation", "two_responses"),
    ("two_responses", "start_phrase"),
    ("two_responses", "end_phrase"),
    ("end_phrase", "postscript"),
    ("start_phrase", "title"),
) + tuple(("json_format", other) for other in _JSON_CLASHES)

CONFLICTS: frozenset[frozenset[str]] = frozenset(frozenset(pair) for pair in _CONFLICT_LIST)


def compatible(kind_a: str, kind_b: str) -> bool:
    """False for the same kind twice or a listed contradictory pair."""
    return kind_a != kind_b and frozenset((kind_a, kind_b)) not in CONFLICTS


def sample_instructions(rng: random.Random, n: int, kinds: Sequence[str] | None = None) -> list[Instruction]:
    """Draw up to ``n`` mutually compatible instructions with random params.

    Args:
        rng: source of randomness (seed it for reproducible prompts).
        n: number wanted; fewer come back when ``kinds`` cannot supply ``n`` compatible ones.
        kinds: allowed instruction kinds; ``None`` or empty means the whole registry.

    Returns:
        Instruction dicts ``{"kind", "params", "text"}`` in draw order.
    """
    pool = sorted(set(kinds)) if kinds else sorted(REGISTRY)
    for kind in pool:
        spec_for(kind)
    rng.shuffle(pool)
    return draw_compatible(pool, n, lambda kind: REGISTRY[kind].sample(rng))


def draw_compatible(
    order: Iterable[str], n: int, params_for: Callable[[str], dict[str, Any] | None]
) -> list[Instruction]:
    """Up to ``n`` mutually compatible instructions, trying the kinds in ``order``.

    ``params_for(kind)`` is asked only for a kind compatible with those already chosen (so a seeded draw spends
    randomness on chosen kinds only); a None from it skips the kind.
    """
    chosen: list[Instruction] = []
    for kind in order:
        if len(chosen) >= n:
            break
        if all(compatible(kind, c["kind"]) for c in chosen):
            params = params_for(kind)
            if params is not None:
                chosen.append(make_instruction(kind, params))
    return chosen


def describe_all(instructions: Sequence[Instruction]) -> str:
    """The instruction sentences joined into one paragraph."""
    if not instructions:
        raise FlywheelError("instruction-following prompt needs at least one instruction")
    return " ".join(ins["text"] for ins in instructions)


def _text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FlywheelError(f"instruction-following prompt: {what} must be a non-empty string")
    return value.strip()


def if_single_prompt(base_prompt: str, instructions: Sequence[Instruction]) -> str:
    """Single-turn prompt: the base prompt, a blank line, then the instructions."""
    return f"{_text(base_prompt, 'base_prompt')}\n\n{describe_all(instructions)}"


def if_multi_messages(
    questions: Sequence[str],
    instructions: Sequence[Instruction],
    answers: Sequence[str] = (),
) -> list[Message]:
    """Multi-turn prompt whose first user turn sets instructions for every later turn.

    Args:
        questions: user questions in order, at least one.
        instructions: instructions that every assistant turn must follow.
        answers: assistant answers to all questions but the last (``len(questions) - 1``).

    Returns:
        ``[user, assistant, user, ...]`` ending with the last question as a user turn.
    """
    if not questions or len(answers) != len(questions) - 1:
        raise FlywheelError(
            f"if_multi_messages: need answers for all but the last question, got "
            f"{len(questions)} questions and {len(answers)} answers"
        )
    rules = describe_all(instructions)
    first = (
        f"For this and every later question in our conversation, follow these instructions: "
        f"{rules}\n\n{_text(questions[0], 'question')}"
    )
    messages: list[Message] = [{"role": "user", "content": first}]
    for answer, question in zip(answers, questions[1:], strict=True):
        messages.append({"role": "assistant", "content": _text(answer, "answer")})
        messages.append({"role": "user", "content": _text(question, "question")})
    return messages


def if_revision_messages(question: str, answer: str, instructions: Sequence[Instruction]) -> list[Message]:
    """Second-turn revision prompt: question, answer, then "Rewrite your answer so that ..."."""
    return [
        {"role": "user", "content": _text(question, "question")},
        {"role": "assistant", "content": _text(answer, "answer")},
        {
            "role": "user",
            "content": "Rewrite your answer so that it follows these instructions: " + describe_all(instructions),
        },
    ]
