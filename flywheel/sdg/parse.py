"""Parsers turning a generator's raw text into list items or a single prompt.

Generators wrap what we asked for in chatter ("Sure! Here are 5 subtopics:"), labels
("Question:"), markdown and quotes, and sometimes answer with JSON. These parsers keep what is
usable and never raise on malformed text: ``parse_list`` returns a possibly empty list and
``parse_single`` returns ``None`` so that the caller can count the skip.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flywheel.sdg.quality import is_refusal, normalize_text

_MARKER = re.compile(r"^\s*(?:\(?\d{1,3}\s*[.):\]-]|\(\d{1,3}\)|[-*•·+–▪●])(?:\s+|$)")
_BOLD = re.compile(r"\*\*|__")
_QUOTES = "\"'“”‘’`«»"
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_CHATTER_START = re.compile(
    r"^\s*(?:(?:sure|certainly|of course|okay|ok|absolutely|great)\s*[!,.]"
    r"|(?:here(?:'s| is| are)|below (?:is|are)|i hope|let me know|feel free|note\b"
    r"|these (?:are|questions|topics|subtopics|tasks))\b)",
    re.IGNORECASE,
)
_LEAD_IN = re.compile(
    r"^\s*(?:(?:sure|certainly|of course|okay|ok|absolutely|great)\b[^\n:]{0,40}?[!.,]\s*)?"
    r"(?:here(?:'s| is| are)|below (?:is|are))\b[^\n:]{0,80}:\s*",
    re.IGNORECASE,
)
_LABEL = re.compile(
    r"^\s*(?:\*\*|__|#+\s*)?\s*(?:(?:revised|refined|improved|new|final|generated|more detailed|"
    r"detailed|specific|rewritten|user)\s+)?(?:question|task|prompt|instruction|problem|"
    r"writing task|query|request|q)\s*\d*\s*(?:\*\*|__)?\s*[:\-–]\s*(?:\*\*|__)?\s*",
    re.IGNORECASE,
)
_TRAILER = re.compile(
    r"^\s*(?:\*\*|__|#+\s*)?\s*(?:i hope|let me know|feel free|note\s*:|this (?:revised |refined |"
    r"new |more detailed )?(?:question|version|task|prompt)|(?:solution|answer|hint|explanation|"
    r"example solution)\s*(?:\*\*|__)?\s*:)",
    re.IGNORECASE,
)


def strip_think(text: str) -> str:
    """Drop reasoning blocks (``<think>...</think>``); an unclosed block drops the rest."""
    text = _THINK.sub("", text)
    cut = text.lower().find("<think>")
    return text[:cut] if cut >= 0 else text


def _strip_wrappers(text: str) -> str:
    """Remove bold markers and matching outer quotes, then surrounding whitespace."""
    text = _BOLD.sub("", text).strip()
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    if text.count('"') == 1 and text[:1] == '"':
        text = text[1:].strip()
    return text


def _first_string(value: Any) -> str | None:
    """A list element as text: strings and numbers directly, a dict's first string value."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, dict):
        for inner in value.values():
            if isinstance(inner, str):
                return inner
    return None


def _json_items(text: str) -> list[str] | None:
    """Items of the first JSON array found in the text (or an object's first list value)."""
    for open_ch, close_ch in (("[", "]"), ("{", "}")):
        start, end = text.find(open_ch), text.rfind(close_ch)
        if start < 0 or end <= start:
            continue
        try:
            data = json.loads(text[start : end + 1])
        except (ValueError, RecursionError):
            continue
        if isinstance(data, dict):
            data = next((v for v in data.values() if isinstance(v, list)), None)
        if isinstance(data, list) and data:
            items = [_first_string(v) for v in data]
            return [s for s in items if s is not None]
    return None


def _line_items(text: str) -> list[str]:
    """Items from a list written as lines; unmarked prose is dropped when markers exist."""
    lines = [line for line in text.splitlines() if line.strip()]
    matches = [_MARKER.match(line) for line in lines]
    if any(matches):
        return [line[m.end() :] for line, m in zip(lines, matches, strict=True) if m]
    return [line for line in lines if not line.rstrip().endswith(":") and not _CHATTER_START.match(line)]


def parse_list(text: str, max_items: int, max_chars: int = 200, min_chars: int = 2) -> list[str]:
    """Parse a generated list (topics, subtopics, questions, tasks) into clean unique items.

    Accepts numbered lists ("1. x", "1) x", "(1) x"), bullets ("- x", "* x", "• x"), JSON arrays
    (or an object holding one) and plain one-item-per-line text. Lead-in and closing prose,
    markdown bold, outer quotes and trailing commas are removed; items shorter than
    ``min_chars`` or longer than ``max_chars`` (usually prose, not items) are dropped, and
    duplicates are dropped case/punctuation-insensitively, keeping the first.

    Args:
        text: raw generator output.
        max_items: return at most this many items.
        max_chars: longest item kept, in characters.
        min_chars: shortest item kept, in characters.

    Returns:
        Up to ``max_items`` cleaned, unique items in order; ``[]`` if nothing usable.
    """
    if not isinstance(text, str) or max_items <= 0:
        return []
    text = strip_think(text)
    raw = _json_items(text)
    if raw is None:
        raw = _line_items(text)
    items: list[str] = []
    seen: set[str] = set()
    for item in raw:
        item = _strip_wrappers(item).rstrip(",;").strip()
        norm = normalize_text(item)
        if not norm or norm in seen or not min_chars <= len(item) <= max_chars:
            continue
        seen.add(norm)
        items.append(item)
        if len(items) >= max_items:
            break
    return items


def _first_list_item(paragraph: str) -> str:
    """A paragraph that is a list (several items where one was asked for) keeps its first item."""
    lines = paragraph.splitlines()
    first = _MARKER.match(lines[0])
    if not first:
        return paragraph
    body = [lines[0][first.end() :]]
    for line in lines[1:]:
        if _MARKER.match(line):
            break
        body.append(line)
    return "\n".join(body).strip()


def _is_lead_in_paragraph(paragraph: str) -> bool:
    """A paragraph that only announces what follows ("Sure! Here is the question:")."""
    single_line = "\n" not in paragraph.strip()
    announces = paragraph.rstrip().endswith(":") or bool(_CHATTER_START.match(paragraph))
    return single_line and announces


def parse_single(text: str, min_chars: int = 10, max_chars: int = 2000, max_paragraphs: int = 1) -> str | None:
    """Parse one generated prompt (question, task, problem) out of raw generator text.

    Drops reasoning blocks, lead-in chatter ("Sure! Here's a more detailed question:"),
    labels ("Question:", "**Revised task:**"), outer quotes and markdown bold, then keeps the
    first meaningful paragraph (or up to ``max_paragraphs`` of them, stopping at closing chatter
    or a "Solution:"/"Answer:" section).

    Args:
        text: raw generator output.
        min_chars: shorter results are rejected.
        max_chars: longer results are rejected.
        max_paragraphs: paragraphs kept (1 for questions; more for math/code problems).

    Returns:
        The cleaned prompt, or ``None`` when nothing usable (empty, refusal, out of bounds).
    """
    if not isinstance(text, str):
        return None
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", strip_think(text)) if p.strip()]
    kept: list[str] = []
    for index, paragraph in enumerate(paragraphs):
        if kept and _TRAILER.match(paragraph):
            break
        if not kept and index + 1 < len(paragraphs) and _is_lead_in_paragraph(paragraph):
            continue
        paragraph = _LABEL.sub("", _LEAD_IN.sub("", paragraph), count=1).strip()
        if max_paragraphs == 1:
            paragraph = _first_list_item(paragraph)
        paragraph = _strip_wrappers(paragraph)
        if not paragraph or not any(ch.isalnum() for ch in paragraph):
            continue
        kept.append(paragraph)
        if len(kept) >= max_paragraphs:
            break
    result = _strip_wrappers("\n\n".join(kept))
    if not min_chars <= len(result) <= max_chars or is_refusal(result):
        return None
    return result
