"""Two-turn prompts (user, assistant, user) with a generated follow-up question.

The Nemotron-4 340B report (section 3.2.1, "Synthetic two-turn prompts") builds preference
prompts of the form "User: XXX; Assistant: XXX; User: XXX": a first user prompt, an assistant
answer from the instruct model, and a next user question also written by the model. Here the
generator sees the first exchange as a transcript and writes only the follow-up.
"""

from __future__ import annotations

from flywheel.errors import FlywheelError
from flywheel.sdg.dialogue import clean_user_turn
from flywheel.sdg.parse import parse_single

Message = dict[str, str]


def _text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FlywheelError(f"two-turn prompt: {what} must be a non-empty string")
    return value.strip()


def followup_prompt(first_user: str, assistant_answer: str) -> list[Message]:
    """Ask the generator for the user's next question after one exchange.

    Args:
        first_user: the first user turn.
        assistant_answer: the assistant's reply to it.

    Returns:
        One user message holding the transcript and the request; parse the reply with
        ``parse_followup``.
    """
    transcript = f"User: {_text(first_user, 'first_user')}\n\nAssistant: {_text(assistant_answer, 'assistant_answer')}"
    return [
        {
            "role": "user",
            "content": "Here is the start of a conversation between a user and an AI "
            f"assistant:\n\n{transcript}\n\nWrite the user's next message: a natural follow-up "
            "question or request that builds on the assistant's answer, as the user would type "
            "it. Do not thank the assistant and do not answer the question. Reply with the "
            "user's message only.",
        }
    ]


def parse_followup(text: str, min_chars: int = 10, max_chars: int = 2000) -> str | None:
    """The follow-up question from raw generator text, or ``None`` if nothing usable."""
    single = parse_single(text, min_chars=1, max_chars=max_chars, max_paragraphs=3)
    if single is None:
        return None
    return clean_user_turn(single, min_chars=min_chars)


def two_turn_messages(first_user: str, assistant_answer: str, followup: str) -> list[Message]:
    """The final two-turn prompt: ``[user, assistant, user]``."""
    return [
        {"role": "user", "content": _text(first_user, "first_user")},
        {"role": "assistant", "content": _text(assistant_answer, "assistant_answer")},
        {"role": "user", "content": _text(followup, "followup")},
    ]
