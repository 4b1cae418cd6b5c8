"""Role-play support for 3-turn synthetic dialogues: the generator plays the user with a persona.

The Nemotron-4 340B report (section 3.2.2) builds multi-turn dialogues by letting the instruct
model alternate between the assistant and the user. To get user-like turns it gives the model
an explicit user persona plus the dialogue so far, and post-processes user turns to drop polite
statements ("Thank you for ...", "Sure, I'd be happy to ...") that real users rarely write.

Chat models answer as the assistant, so ``user_turn_prompt`` flips the roles: the simulated
user's own earlier turns become ``assistant`` messages and the real assistant's replies become
``user`` messages; the model's next assistant turn is then the user's next message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from flywheel.errors import FlywheelError
from flywheel.sdg.parse import strip_think
from flywheel.sdg.quality import is_refusal

Message = dict[str, str]

PERSONAS: tuple[dict[str, str], ...] = (
    {
        "name": "curious_student",
        "description": "a high-school student, new to most subjects and "
        "curious; you ask why things work and ask for simple examples",
    },
    {
        "name": "busy_professional",
        "description": "a busy professional who wants short, practical "
        "answers; you ask how to apply the answer to your own work",
    },
    {
        "name": "skeptic",
        "description": "a skeptical reader who doubts claims; you ask for evidence "
        "and point out gaps, exceptions or counterexamples",
    },
    {
        "name": "domain_expert",
        "description": "an expert in the field; you ask precise, technical "
        "follow-ups about edge cases and details the answer skipped",
    },
    {
        "name": "planner",
        "description": "someone planning a concrete project; you ask about steps, "
        "costs, timelines and what could go wrong",
    },
    {
        "name": "creative_writer",
        "description": "a creative writer; you ask for variations, alternatives and more vivid or original versions",
    },
    {
        "name": "non_native_speaker",
        "description": "a non-native English speaker; you write simple, "
        "slightly informal sentences and ask what unfamiliar terms mean",
    },
    {
        "name": "parent",
        "description": "a parent who wants to explain things to a child; you ask "
        "for simpler wording and everyday comparisons",
    },
    {
        "name": "teacher",
        "description": "a teacher preparing a lesson; you ask for exercises, "
        "summaries and ways to check that students understood",
    },
    {
        "name": "terse_user",
        "description": "a terse user; you write very short messages, often a few words, with no greeting",
    },
)

_KICKOFF = "Hello! What would you like to talk about today?"
_SYSTEM = (
    "You are role-playing a human user who is chatting with an AI assistant. Your persona: "
    "{description}. In this conversation your own earlier messages appear as your turns and "
    "the AI assistant's replies appear as the other side's turns. Write your next message to "
    "the AI assistant, in your persona's voice: a follow-up question or request that builds on "
    "its last reply. Write only that message. Do not thank the assistant or praise its answer, "
    "do not answer your own question, do not write the assistant's reply, and do not start "
    "with a name or a role label."
)

_ROLE_PREFIX = re.compile(
    r"^\s*(?:\*\*|__)?\s*(?:user|human|me|customer|student|client|persona|question)"
    r"(?:\s*\([^)\n]{0,40}\))?\s*(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*",
    re.IGNORECASE,
)
_ASSISTANT_LINE = re.compile(
    r"(?im)^\s*(?:\*\*|__)?\s*(?:assistant|ai|ai assistant|bot|chatbot|model)\s*(?:\*\*|__)?\s*:"
)
_POLITE = re.compile(
    r"^\s*(?:thank(?:s| you)\b|many thanks\b|sure\b|of course\b|certainly\b|absolutely\b"
    r"|(?:that'?s a |what a )?(?:great|good|excellent) (?:question|point|answer|explanation)\b"
    r"|i'?d be (?:happy|glad)\b|i(?: am|'m) (?:happy|glad) to\b|i (?:really )?appreciate\b"
    r"|that(?:'s| is| was) (?:very |really |so |super )?(?:helpful|great|interesting|useful"
    r"|fascinating|clear|amazing|a great)\b|awesome\b|perfect\b|wonderful\b|got it\b|okay\b"
    r"|ok\b|alright\b|great\b|excellent\b|no problem\b|you'?re welcome\b|i see\b)",
    re.IGNORECASE,
)
_CONNECTIVE = re.compile(r"^(?:but|so|and|now)\s+", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_QUOTES = "\"'“”"


def persona_by_name(name: str) -> dict[str, str]:
    """The shipped persona called ``name``."""
    for persona in PERSONAS:
        if persona["name"] == name:
            return persona
    raise FlywheelError(f"unknown persona {name!r}; known: {[p['name'] for p in PERSONAS]}")


def select_personas(names: Sequence[str]) -> list[dict[str, str]]:
    """Personas by name; an empty selection means all shipped personas."""
    return [persona_by_name(n) for n in names] if names else list(PERSONAS)


def flip_roles(dialogue: Sequence[Message]) -> list[Message]:
    """Swap user and assistant roles; system messages are dropped."""
    swap = {"user": "assistant", "assistant": "user"}
    return [{"role": swap[m["role"]], "content": m["content"]} for m in dialogue if m.get("role") in swap]


def user_turn_prompt(dialogue: Sequence[Message], persona: dict[str, str]) -> list[Message]:
    """Messages that make the generator write the next *user* turn of ``dialogue``.

    Args:
        dialogue: the conversation so far, ``[user, assistant, ...]``, ending with an
            assistant turn (system messages are ignored).
        persona: ``{"name", "description"}``, e.g. from ``PERSONAS``.

    Returns:
        ``[system persona, user greeting, assistant (user turn 1), user (assistant turn 1),
        ...]``: roles flipped, alternating and starting with a user turn, so chat templates
        that insist on alternation accept it. The reply is the next user turn; clean it with
        ``clean_user_turn``.
    """
    turns = [m for m in dialogue if m.get("role") in ("user", "assistant")]
    if not turns or turns[-1]["role"] != "assistant":
        raise FlywheelError("user_turn_prompt: dialogue must end with an assistant turn")
    if not persona.get("description"):
        raise FlywheelError(f"user_turn_prompt: persona without description: {persona!r:.80}")
    return [
        {"role": "system", "content": _SYSTEM.format(description=persona["description"])},
        {"role": "user", "content": _KICKOFF},
        *flip_roles(turns),
    ]


def _clean_sentence(sentence: str) -> str:
    """Drop a polite sentence; for a polite-opened question keep the question after the comma."""
    if not _POLITE.match(sentence):
        return sentence
    if not sentence.rstrip().endswith("?"):
        return ""
    comma = sentence.find(",")
    if comma < 0 or comma > 60:
        return sentence
    rest = _CONNECTIVE.sub("", sentence[comma + 1 :].strip())
    return rest[:1].upper() + rest[1:]


def _clean_line(line: str) -> str:
    kept = (_clean_sentence(s) for s in _SENTENCE_END.split(line.strip()))
    return " ".join(s for s in kept if s)


def clean_user_turn(text: str, min_chars: int = 10) -> str | None:
    """Post-process a simulated user turn so it reads like a real user's message.

    Removes reasoning blocks, anything from an ``Assistant:`` line on (the model kept
    writing the other side), a leading role label ("User:", "**Human:**"), outer quotes,
    and polite filler sentences ("Thank you for ...", "Sure, I'd be happy to ...",
    "Great question!"). Code blocks are kept verbatim.

    Args:
        text: raw generator output for the user turn.
        min_chars: shorter results are rejected.

    Returns:
        The cleaned turn, or ``None`` when nothing useful is left (or it is a refusal).
    """
    if not isinstance(text, str):
        return None
    text = strip_think(text)
    cut = _ASSISTANT_LINE.search(text)
    if cut:
        text = text[: cut.start()]
    text = _ROLE_PREFIX.sub("", text.strip(), count=1).strip()
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    lines: list[str] = []
    in_code = False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
            lines.append(line)
        elif in_code:
            lines.append(line)
        else:
            cleaned = _clean_line(line)
            if cleaned or (lines and lines[-1] != ""):
                lines.append(cleaned)
    result = "\n".join(lines).strip()
    if len(result) < min_chars or not any(ch.isalnum() for ch in result) or is_refusal(result):
        return None
    return result
