"""LLM-as-judge protocol: a pairwise prompt, verdict parsing, and the position-swap agreement rule.

Nemotron-4 340B (NVIDIA, 2024, sec. 3.2.3) first judged synthetic preference pairs with an LLM: each
pair is judged twice with the two responses in swapped positions, and a pair is kept only when both
orders pick the same response. Swapping cancels the judge's position bias instead of trusting it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from flywheel.errors import FlywheelError

Verdict = Literal["A", "B", "tie"]
Winner = Literal["first", "second"]

JUDGE_SYSTEM = """\
You are an impartial judge. You compare two assistant responses, A and B, to the same conversation \
and decide which one better serves the user's last message.

Judge on these criteria, in this order of importance:
1. Correctness: facts, reasoning, code and any final answer are right.
2. Instruction following: every explicit requirement of the user (format, length, language, \
style, constraints) is met.
3. Helpfulness: the response addresses what the user actually needs.
4. Coherence: the response is clear, consistent and well organised.
5. Appropriate detail: enough to be useful and no more; padding and repetition count against a \
response.

Rules: the order in which the responses appear, their length and their labels must not influence \
you. If both are equally good or equally bad, say so.

Write a short justification, then end with the verdict alone on the last line, exactly one of:
[[A]] if response A is better, [[B]] if response B is better, [[TIE]] if neither is better."""

_ROLE_TITLES = {"system": "System", "user": "User", "assistant": "Assistant"}
_BRACKETED = re.compile(r"\[\[\s*(A|B|TIE)\s*\]\]", re.IGNORECASE)
_LABELLED = re.compile(r"verdict\s*(?:is)?\s*[:\-]?\s*\**\s*\[?\s*(A|B|TIE)\b", re.IGNORECASE)


def _content(answer: str | Mapping[str, Any]) -> str:
    value: object = answer
    if isinstance(answer, Mapping):
        value = answer.get("content")
    if not isinstance(value, str):
        raise FlywheelError(
            f"judge_prompt: an answer must be a string or an assistant message, got {type(value).__name__}"
        )
    return value


def render_conversation(messages: Sequence[Mapping[str, Any]]) -> str:
    """Conversation as titled sections (``### User`` ...), for embedding in a judge prompt.

    Raises:
        FlywheelError: empty conversation, unknown role, non-string content, or a last turn that is
            not the user's.
    """
    if not messages:
        raise FlywheelError("judge_prompt: the question has no messages")
    parts = []
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in _ROLE_TITLES or not isinstance(content, str):
            raise FlywheelError(f"judge_prompt: message {i} is not a {{role, content}} chat message: {message!r:.80}")
        parts.append(f"### {_ROLE_TITLES[role]}\n{content.strip()}")
    if messages[-1].get("role") != "user":
        raise FlywheelError("judge_prompt: the question must end with a user turn")
    return "\n\n".join(parts)


def judge_prompt(
    question_messages: Sequence[Mapping[str, Any]],
    answer_a: str | Mapping[str, Any],
    answer_b: str | Mapping[str, Any],
) -> list[dict[str, str]]:
    """Chat messages asking the judge to compare two answers to one conversation.

    Args:
        question_messages: the prompt dialogue, ending with a user turn.
        answer_a: response shown as A (text or assistant message).
        answer_b: response shown as B.

    Returns:
        ``[system rubric, user message with conversation and both responses]``.
    """
    conversation = render_conversation(question_messages)
    body = (
        f"## Conversation\n\n{conversation}\n\n"
        f"## Response A\n\n{_content(answer_a).strip()}\n\n"
        f"## Response B\n\n{_content(answer_b).strip()}\n\n"
        "Which response is better? End with [[A]], [[B]] or [[TIE]]."
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": body}]


def parse_verdict(text: Any) -> Verdict | None:
    """Verdict from judge output.

    The last ``[[A]]`` / ``[[B]]`` / ``[[TIE]]`` wins (judges sometimes restate the options before
    deciding); without one, a final ``Verdict: A`` style line is accepted.

    Args:
        text: judge output; anything that is not a string gives None.

    Returns:
        ``"A"``, ``"B"``, ``"tie"``, or None when no verdict can be read.
    """
    if not isinstance(text, str):
        return None
    found = _BRACKETED.findall(text) or _LABELLED.findall(text)
    if not found:
        return None
    verdict = found[-1].upper()
    return "tie" if verdict == "TIE" else verdict


def combine_both_orders(verdict_ab: Verdict | None, verdict_ba: Verdict | None) -> Winner | None:
    """Winner of a pair judged in both orders.

    Order 1 shows (first, second) as (A, B); order 2 shows (second, first) as (A, B). The first
    response wins when order 1 says A and order 2 says B; the second wins on B then A.

    Args:
        verdict_ab: verdict for order 1.
        verdict_ba: verdict for the swapped order 2.

    Returns:
        ``"first"``, ``"second"``, or None for a tie, an unreadable verdict, or disagreement
        (the same position won twice: position bias, not preference).
    """
    if verdict_ab == "A" and verdict_ba == "B":
        return "first"
    if verdict_ab == "B" and verdict_ba == "A":
        return "second"
    return None


def disagreement_reason(verdict_ab: Verdict | None, verdict_ba: Verdict | None) -> str | None:
    """Why ``combine_both_orders`` gave no winner: ``"unparsed"``, ``"tie"``, ``"position_bias"``, or None."""
    if combine_both_orders(verdict_ab, verdict_ba) is not None:
        return None
    if verdict_ab is None or verdict_ba is None:
        return "unparsed"
    if verdict_ab == "tie" or verdict_ba == "tie":
        return "tie"
    return "position_bias"
