"""Quality filters for synthetic prompts and responses: dedup, near-dedup, length, format, refusals.

The Nemotron-4 340B report (section 3.2) filters generated data before it is used; we apply the
usual cheap filters. Every ``*_filter`` function takes an iterable of items (strings or rows)
plus a ``key`` that extracts the text, and returns ``(kept, removed_count)`` so the caller can
log one count per filter. The dedup classes keep only hashes/signatures in memory, so a caller
can stream items through ``ExactDeduper.add`` / ``NearDeduper.add`` without holding them.

MinHash + LSH (Broder 1997; Leskovec et al., *Mining of Massive Datasets*, ch. 3) is written out
here in pure Python: word shingles, ``num_perm`` seeded universal hashes, banded buckets.
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

_MERSENNE = (1 << 61) - 1
_WS = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^\w\s]")

REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bI'?m sorry,? but\b",
    r"\bI am sorry,? but\b",
    r"\bI apologi[sz]e,? but\b",
    r"\bas an AI\b",
    r"\bas a language model\b",
    r"\bI(?: am|'m) (?:just )?an AI\b",
    r"\bI cannot\b",
    r"\bI can(?:'|no)t (?:help|assist|provide|comply|fulfill|do that)\b",
    r"\bI(?: am|'m) (?:not able|unable) to\b",
    r"\bI won'?t be able to\b",
    r"\bI do not have (?:personal|the ability)\b",
)
_REFUSAL_RE = re.compile("|".join(REFUSAL_PATTERNS), re.IGNORECASE)

# Leftovers that mean the generator echoed our template or its chat markup instead of content.
_ARTIFACT_RE = re.compile(
    r"\{(?:topic|subtopic|document|question|keyword|doc_type|level|n)\}"
    r"|<\|[a-z_]+\|>|\[/?INST\]|<</?SYS>>|</?s>|</?think>",
    re.IGNORECASE,
)


def row_text(item: Any) -> str:
    """Default text key: a string itself, else the contents of a row's ``messages`` joined.

    Args:
        item: a ``str`` or a dict with ``messages`` (list of ``{"role", "content"}``).

    Returns:
        The text to judge; ``""`` for anything else.
    """
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("messages"), list):
        parts = [m.get("content", "") for m in item["messages"] if isinstance(m, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def last_text(item: Any) -> str:
    """Text key for responses: the last message's content (or the string itself)."""
    if isinstance(item, dict) and isinstance(item.get("messages"), list) and item["messages"]:
        last = item["messages"][-1]
        content = last.get("content", "") if isinstance(last, dict) else ""
        return content if isinstance(content, str) else ""
    return row_text(item)


def normalize_text(text: str) -> str:
    """Case-, punctuation- and whitespace-insensitive form used for exact dedup."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _NON_WORD.sub(" ", text)
    return _WS.sub(" ", text).strip()


def text_hash(text: str) -> str:
    """sha1 hex of the normalized text."""
    return hashlib.sha1(normalize_text(text).encode("utf-8")).hexdigest()


def is_refusal(text: str) -> bool:
    """True when the text reads like a refusal or an AI disclaimer."""
    return bool(_REFUSAL_RE.search(text))


def is_well_formed(text: str, max_line_repeats: int = 3) -> bool:
    """Format check: non-empty, has letters, no template/chat-markup leftovers, not looping.

    Args:
        text: candidate prompt or response.
        max_line_repeats: a non-empty line repeated this often or more marks a degenerate loop.
    """
    stripped = text.strip()
    if not stripped or not any(ch.isalpha() for ch in stripped):
        return False
    if _ARTIFACT_RE.search(stripped):
        return False
    counts: dict[str, int] = {}
    for line in stripped.splitlines():
        line = line.strip()
        if len(line) > 3:
            counts[line] = counts.get(line, 0) + 1
            if counts[line] >= max_line_repeats:
                return False
    return True


def _keep_if(items: Iterable[T], keep: Callable[[T], bool]) -> tuple[list[T], int]:
    kept: list[T] = []
    removed = 0
    for item in items:
        if keep(item):
            kept.append(item)
        else:
            removed += 1
    return kept, removed


def length_filter(
    items: Iterable[T], min_chars: int, max_chars: int, key: Callable[[T], str] = row_text
) -> tuple[list[T], int]:
    """Keep items whose stripped text length lies in ``[min_chars, max_chars]``."""
    return _keep_if(items, lambda it: min_chars <= len(key(it).strip()) <= max_chars)


def format_filter(items: Iterable[T], key: Callable[[T], str] = row_text) -> tuple[list[T], int]:
    """Keep items whose text passes ``is_well_formed``."""
    return _keep_if(items, lambda it: is_well_formed(key(it)))


def refusal_filter(items: Iterable[T], key: Callable[[T], str] = last_text) -> tuple[list[T], int]:
    """Drop items whose text (by default the last message) is a refusal."""
    return _keep_if(items, lambda it: not is_refusal(key(it)))


class ExactDeduper:
    """Remembers normalized-text hashes; ``add`` says whether a text is new."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def add(self, text: str) -> bool:
        """Record ``text``; True if it was not seen before (after normalization)."""
        digest = text_hash(text)
        if digest in self._seen:
            return False
        self._seen.add(digest)
        return True


def exact_dedup(items: Iterable[T], key: Callable[[T], str] = row_text) -> tuple[list[T], int]:
    """Keep the first item of each normalized text."""
    deduper = ExactDeduper()
    return _keep_if(items, lambda it: deduper.add(key(it)))


def shingles(text: str, size: int = 3) -> set[str]:
    """Word ``size``-grams of the normalized text (the whole text if it is shorter)."""
    words = normalize_text(text).split()
    if not words:
        return set()
    if len(words) <= size:
        return {" ".join(words)}
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def lsh_params(num_perm: int, threshold: float) -> tuple[int, int]:
    """Pick (bands, rows), bands * rows <= num_perm, whose S-curve midpoint is nearest threshold.

    Two items share a bucket with probability ``1 - (1 - s^rows)^bands`` for Jaccard ``s``; its
    steepest point sits near ``(1 / bands) ** (1 / rows)``.
    """
    best = (num_perm, 1)
    best_gap = float("inf")
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        gap = abs((1.0 / bands) ** (1.0 / rows) - threshold)
        if gap < best_gap:
            best, best_gap = (bands, rows), gap
    return best


class NearDeduper:
    """MinHash + LSH near-duplicate detector over word shingles.

    Args:
        threshold: estimated Jaccard similarity at or above which a text counts as a duplicate.
        num_perm: number of hash permutations (signature length).
        shingle_size: words per shingle.
        seed: seed for the permutation coefficients (same seed -> same decisions).
    """

    def __init__(self, threshold: float = 0.8, num_perm: int = 64, shingle_size: int = 3, seed: int = 0) -> None:
        rng = random.Random(seed)
        self.threshold = threshold
        self.shingle_size = shingle_size
        self._coeffs = [(rng.randrange(1, _MERSENNE), rng.randrange(0, _MERSENNE)) for _ in range(num_perm)]
        self.bands, self.rows = lsh_params(num_perm, threshold)
        self._buckets: list[dict[tuple[int, ...], list[int]]] = [{} for _ in range(self.bands)]
        self._signatures: list[tuple[int, ...]] = []

    def signature(self, text: str) -> tuple[int, ...]:
        """MinHash signature, shape ``[num_perm]``: per permutation the minimum shingle hash."""
        bases = [
            int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "big")
            for s in shingles(text, self.shingle_size)
        ]
        if not bases:
            return tuple(_MERSENNE for _ in self._coeffs)
        return tuple(min((a * x + b) % _MERSENNE for x in bases) for a, b in self._coeffs)

    @staticmethod
    def similarity(sig_a: tuple[int, ...], sig_b: tuple[int, ...]) -> float:
        """Estimated Jaccard similarity: the share of equal signature slots."""
        return sum(1 for x, y in zip(sig_a, sig_b, strict=True) if x == y) / max(len(sig_a), 1)

    def add(self, text: str) -> bool:
        """True (and remember the text) unless it is a near duplicate of one already added."""
        sig = self.signature(text)
        band_keys = [tuple(sig[i * self.rows : (i + 1) * self.rows]) for i in range(self.bands)]
        for band, band_key in enumerate(band_keys):
            for other in self._buckets[band].get(band_key, ()):
                if self.similarity(sig, self._signatures[other]) >= self.threshold:
                    return False
        index = len(self._signatures)
        self._signatures.append(sig)
        for band, band_key in enumerate(band_keys):
            self._buckets[band].setdefault(band_key, []).append(index)
        return True


def near_dedup(
    items: Iterable[T],
    threshold: float = 0.8,
    num_perm: int = 64,
    shingle_size: int = 3,
    seed: int = 0,
    key: Callable[[T], str] = row_text,
) -> tuple[list[T], int]:
    """Keep the first item of each group of near duplicates (see ``NearDeduper``)."""
    deduper = NearDeduper(threshold, num_perm, shingle_size, seed)
    return _keep_if(items, lambda it: deduper.add(key(it)))
