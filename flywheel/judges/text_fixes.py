"""The text transforms of verifier-guided repair (:mod:`flywheel.judges.repair`): pure functions, one per fix.

Each takes the response text (and the instruction's params) and returns the fixed text, or None when its fix does
not apply; none of them adds a claim to the text. :mod:`flywheel.judges.repair` decides which to apply and in
which order, and checks the result.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flywheel.sdg.instructions import SENTENCE_BREAK, count_word, sentences, words

# Template fields of the placeholder line, in the order they are used.
PLACEHOLDER_FIELDS: tuple[tuple[str, str], ...] = (
    ("Written by", "name"),
    ("on", "date"),
    ("in", "place"),
    ("for", "recipient"),
    ("at", "address"),
)
# Forbidden words a fix can take out: filler adverbs are dropped (""), vague words swapped for a plain one.
FORBIDDEN_SWAPS: dict[str, str] = {
    "very": "",
    "really": "",
    "basically": "",
    "actually": "",
    "literally": "",
    "obviously": "",
    "thing": "item",
    "stuff": "material",
    "nice": "pleasant",
}
TITLE_WORDS = 8

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_COMMA_BEFORE_SPACE = re.compile(r"[,，](?=\s|$)")
_COMMA = re.compile(r"[,，]")
_BLANK_LINE = re.compile(r"\n\s*\n")
_SECTION_LABEL = re.compile(r"(?im)^\s*(?:#+\s*)?(?:\*\*)?section\s+\d+")
_WORD = re.compile(r"\w+(?:['’]\w+)*")
_BULLET_LINE = re.compile(r"(?m)^\s*[*-]\s+\S")


def drop_commas(text: str) -> str:
    text = _THOUSANDS.sub("", text)
    text = _COMMA_BEFORE_SPACE.sub("", text)
    return _COMMA.sub(" ", text)


def title_of(text: str) -> str | None:
    """The first words of the first line that has any, as a title; None when the text has no words."""
    for line in text.splitlines():
        found = _WORD.findall(line)
        if found:
            return " ".join(found[:TITLE_WORDS])
    return None


def label_sections(text: str, n: int) -> str | None:
    """Paragraphs labelled ``Section 1`` .. ``Section n``; None unless there are exactly ``n`` unlabelled ones."""
    if _SECTION_LABEL.search(text):
        return None
    paragraphs = [p.strip() for p in _BLANK_LINE.split(text.strip()) if p.strip()]
    if len(paragraphs) != n:
        return None
    return "\n\n".join(f"Section {i}\n{p}" for i, p in enumerate(paragraphs, start=1))


def sentence_groups(text: str, n: int) -> list[str] | None:
    """The text's sentences in order, dealt into ``n`` consecutive groups (None with fewer sentences)."""
    found = [" ".join(x.split()) for x in sentences(text)]
    if n < 1 or len(found) < n:
        return None
    size, extra = divmod(len(found), n)
    out, i = [], 0
    for g in range(n):
        take = size + (1 if g < extra else 0)
        out.append(" ".join(found[i : i + take]))
        i += take
    return out


def regroup(text: str, kind: str, params: Mapping[str, Any]) -> str | None:
    """The text regrouped for one layout instruction, or None when it cannot be."""
    n = int(params["n"])
    if kind == "sections":
        labelled = label_sections(text, n)
        if labelled is not None or _SECTION_LABEL.search(text):
            return labelled
        groups = sentence_groups(text, n)
        return None if groups is None else label_sections("\n\n".join(groups), n)
    groups = sentence_groups(text, n)
    if groups is None:
        return None
    if kind == "paragraphs":
        return ("\n***\n" if params.get("sep") == "***" else "\n\n").join(groups)
    if _BULLET_LINE.search(text):  # bullets: a list of another length is not rewritten
        return None
    return "\n".join(f"* {g}" for g in groups)


def highlight(text: str, n: int) -> str | None:
    """The first ``n`` asterisk-free sentences wrapped in ``*...*`` (in place), or None if there are fewer."""
    done = 0
    out = text
    for sentence in sentences(text):
        if done == n:
            break
        body = sentence.strip()
        if "*" in body or "\n" in body or body not in out:
            continue
        out = out.replace(body, f"*{body}*", 1)
        done += 1
    return out if done == n else None


def truncate_words(text: str, n: int) -> str | None:
    """The leading whole sentences of ``text`` with at most ``n`` words (None when even the first is longer)."""
    kept, count = [], 0
    for sentence in sentences(text):
        count += len(words(sentence))
        if count > n:
            break
        kept.append(sentence.strip())
    return " ".join(kept) if kept else None


def first_sentences(text: str, k: int) -> str | None:
    """``text`` cut after its ``k``-th sentence, layout kept (None when ``k`` < 1); the whole text if it has fewer."""
    if k < 1:
        return None
    text, count, start = text.strip(), 0, 0
    for brk in SENTENCE_BREAK.finditer(text):
        count += bool(_WORD.search(text[start : brk.start()]))
        if count == k:
            return text[: brk.start()]
        start = brk.end()
    return text


def _swapper(new: str) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` replacement: ``new`` in the case of the word it replaces."""

    def swap(m: re.Match[str]) -> str:
        old = m.group()
        return new.upper() if old.isupper() else new.capitalize() if old[0].isupper() else new

    return swap


def swap_forbidden(text: str, forbidden: Sequence[str]) -> str | None:
    """``text`` without the forbidden words (see ``FORBIDDEN_SWAPS``); None for a word outside the table."""
    for word in forbidden:
        swap = FORBIDDEN_SWAPS.get(str(word).lower())
        if swap is None:
            return None
        w = re.escape(str(word))
        if swap:
            text = re.sub(rf"(?<!\w){w}(?!\w)", _swapper(swap), text, flags=re.IGNORECASE)
            continue
        text = re.sub(rf"[ \t]+{w}(?=[.,;:!?])", "", text, flags=re.IGNORECASE)  # "... it really." -> "... it."
        text = re.sub(  # "Actually, it is very big" -> "It is big"
            rf"(?<!\w)({w})(?!\w),?[ \t]*(\w?)",
            lambda m: m.group(2).upper() if m.group(1)[0].isupper() else m.group(2),
            text,
            flags=re.IGNORECASE,
        )
    return text


def capital_words_to(text: str, relation: str, n: int) -> str | None:
    """``text`` with enough all-capital words for ``relation n`` (see the module docstring), or None."""
    caps = [m for m in _WORD.finditer(text) if len(m.group()) >= 2 and m.group().isupper()]
    if relation == "at least":
        spans = [m.span() for m in _WORD.finditer(text) if len(m.group()) >= 4 and m.group().isascii()]
        spans = [sp for sp in spans if text[sp[0] : sp[1]].isalpha() and not text[sp[0] : sp[1]].isupper()]
        need = n - len(caps)
        if need > len(spans):
            return None
        turn, change = sorted(sorted(spans, key=lambda sp: sp[0] - sp[1])[: max(need, 0)]), str.upper
    elif relation == "less than":
        turn, change = [m.span() for m in caps[max(n - 1, 0) :]], str.capitalize
    else:
        return None
    for a, b in reversed(turn):
        text = text[:a] + change(text[a:b]) + text[b:]
    return text


def placeholder_line(n: int) -> str | None:
    """A sign-off of ``n`` template fields, ``Written by [name] on [date].``; None past the known fields."""
    if not 1 <= n <= len(PLACEHOLDER_FIELDS):
        return None
    return " ".join(f"{lead} [{field}]" for lead, field in PLACEHOLDER_FIELDS[:n]) + "."


def keyword_line(text: str, keywords: Sequence[str]) -> str | None:
    """A line naming the asked words the text lacks, ``Keywords: future, method.``; None when none is missing."""
    missing = [k for k in keywords if count_word(text, k) == 0]
    return f"Keywords: {', '.join(missing)}." if missing else None
