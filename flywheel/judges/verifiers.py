"""Ground-truth verifiers: math final answers and verifiable instruction constraints.

Nemotron-4 340B (NVIDIA, 2024, sec. 3.2.3) prefers ground truth over the reward model where
it exists: math answers are checked against the known solution, instruction-following responses
against the constraints the prompt carries. Every verifier answers True, False, or None ("cannot
decide"); only True and False may decide a preference pair.

Math comparison backends:

* ``math_verify`` (PyPI ``math-verify``: sympy + a LaTeX parser, no network) is used when it is
  importable. It parses LaTeX and plain expressions and compares them symbolically.
* The built-in backend (this module) is used when ``math_verify`` is not installed, and also when
  ``math_verify`` extracts nothing from the response (it misses e.g. ``The answer is \\$18``). It
  extracts the final answer (last ``\\boxed{}``, ``#### X``, ``The answer is X``, else the last number)
  and compares numbers exactly (thousands separators, trailing ``.0``, ``a/b`` vs decimals,
  percentages, ``$...$``); non-numeric answers compare as normalised strings.

``math_backend()`` names the backend in use, for lineage.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any, cast

from flywheel.errors import FlywheelError

try:
    import math_verify as _math_verify
except ImportError:
    _math_verify = None

BACKENDS = ("auto", "builtin", "math_verify")

# Seconds math_verify may spend per parse/compare. It times out with SIGALRM, which only the main
# thread may use, so other threads (e.g. Ray actor threads) run without a timeout.
MATH_VERIFY_TIMEOUT = 5

# Decimals like 0.333333 should match 1/3; 0.3333 should not.
_REL_TOL = Fraction(1, 10**6)

_NUM = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_NUM_FRAC_PCT = rf"{_NUM}(?:\s*/\s*{_NUM})?(?:\s*%)?"
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASHES = re.compile(r"####\s*([^\n]+)")
_ANSWER_IS = re.compile(r"answer\s*(?:is\b|:|=)\s*:?\s*([^\n]+)", re.IGNORECASE)
_NUMBER = re.compile(_NUM_FRAC_PCT)
# A number opening an answer phrase ("12 apples", "$18.00."), not the start of "12x" or "3^2".
_LEADING_NUMBER = re.compile(rf"^\\?\$?\s*({_NUM_FRAC_PCT})(?![\w/^])")
_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}")
_LATEX_NOISE = re.compile(r"\\[,;:! ]|\\left|\\right|\^\s*\{?\\circ\}?|\\\$")
_PLAIN_NUMBER = re.compile(_NUM)
_UNIT_SUFFIX = re.compile(r"^(.*?\d)\s+[a-z][a-z ]*$")
_ASSIGNMENT = re.compile(r"^[a-z]\w*\s*=\s*")
_SIMPLE_WORD = re.compile(r"^[a-z]+$")


def math_backend() -> str:
    """Name of the math backend ``verify_math`` uses with ``backend="auto"``."""
    return "math_verify" if _math_verify is not None else "builtin"


def _last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` with balanced braces, or None."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i].strip()
    return None


def _trim_phrase(phrase: str) -> str:
    """Answer phrase after "The answer is": a leading number if there is one, else up to the sentence end."""
    phrase = phrase.strip()
    math_span = re.match(r"^\$([^$]+)\$|^\\\((.+?)\\\)", phrase)
    if math_span:
        return (math_span.group(1) or math_span.group(2)).strip()
    number = _LEADING_NUMBER.match(phrase)
    if number:
        return number.group(1).strip()
    return re.split(r"[.;!?](?:\s|$)", phrase)[0].strip()


def extract_answer(response: str) -> str | None:
    """Final answer of a math response.

    Precedence: the last ``\\boxed{...}``, then the last ``#### X`` line, then the last
    ``answer is X`` / ``answer: X``, then the last number in the text.

    Args:
        response: assistant text.

    Returns:
        The raw answer text, or None when nothing answer-like is found.
    """
    if not isinstance(response, str) or not response.strip():
        return None
    response = response.replace("{,}", ",")  # LaTeX thousands separator: 1{,}000
    boxed = _last_boxed(response)
    if boxed:
        return boxed
    for pattern in (_HASHES, _ANSWER_IS):
        matches = pattern.findall(response)
        if matches:
            trimmed = _trim_phrase(matches[-1])
            if trimmed:
                return trimmed
    numbers = _NUMBER.findall(response)
    return numbers[-1].strip() if numbers else None


def _frac_to_slash(match: re.Match[str]) -> str:
    """``\\frac{a}{b}`` -> ``a/b``, parenthesising compound parts so ``\\frac{x+1}{2}`` stays ``(x+1)/2``."""
    parts = [p.strip() for p in match.groups()]
    return "/".join(p if re.fullmatch(r"-?[\w.]+", p) else f"({p})" for p in parts)


def normalize_answer(text: str) -> str:
    """Canonical text form: no math delimiters, LaTeX spacing, ``\\text{}``, currency or final period.

    ``\\frac{a}{b}`` becomes ``a/b``; whitespace collapses; letters are lower-cased.
    """
    s = text.strip()
    s = re.sub(r"^\\\(|\\\)$|^\\\[|\\\]$", "", s).strip()
    s = s.strip("$").strip()
    s = _TEXT.sub(r"\1", s)
    s = _FRAC.sub(_frac_to_slash, s)
    s = _LATEX_NOISE.sub("", s)
    s = s.replace("\\", "").replace("{", "").replace("}", "")
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").strip()
    return s.lower()


def _parse_plain(s: str) -> Fraction | None:
    """Integer or decimal, commas only as thousands separators."""
    s = s.replace(" ", "")
    if s.startswith((".", "-.")):
        s = s.replace(".", "0.", 1)
    if not _PLAIN_NUMBER.fullmatch(s):
        return None
    return Fraction(s.replace(",", ""))


def to_number(text: str) -> tuple[Fraction, bool] | None:
    """Exact value of a numeric answer.

    Args:
        text: raw or normalised answer, e.g. ``"1,000"``, ``"3.0"``, ``"\\frac{3}{4}"``, ``"25%"``,
            ``"$18"``, ``"5 cm"`` (a trailing unit word is dropped).

    Returns:
        ``(value, is_percent)`` or None when the text is not a number.
    """
    s = _ASSIGNMENT.sub("", normalize_answer(text).lstrip("$").strip())
    unit = _UNIT_SUFFIX.match(s)
    if unit:
        s = unit.group(1)
    percent = s.endswith("%")
    s = s.rstrip("%").strip()
    value: Fraction | None
    if "/" in s:
        parts = s.split("/")
        if len(parts) != 2:
            return None
        num, den = _parse_plain(parts[0]), _parse_plain(parts[1])
        if num is None or den is None or den == 0:
            return None
        value = num / den
    else:
        value = _parse_plain(s)
        if value is None:
            return None
    return value, percent


def _close(a: Fraction, b: Fraction) -> bool:
    return abs(a - b) <= _REL_TOL * cast("int | Fraction", max(1, abs(a), abs(b)))


def compare_answers(predicted: str, reference: str) -> bool | None:
    """Compare an extracted answer with the reference answer.

    Numbers compare by value; a percentage also matches its fraction (``25%`` == ``25`` == ``0.25``).
    Otherwise equal normalised strings match. Different answers are False only when both are simple
    (a number or a single word such as a choice letter); e.g. ``x+1`` vs ``1+x`` is None.

    Returns:
        True, False, or None when undecidable.
    """
    pred_num, ref_num = to_number(predicted), to_number(reference)
    if pred_num is not None and ref_num is not None:
        pred_values = {pred_num[0]} | ({pred_num[0] / 100} if pred_num[1] else set())
        ref_values = {ref_num[0]} | ({ref_num[0] / 100} if ref_num[1] else set())
        return any(_close(p, r) for p in pred_values for r in ref_values)
    pred_norm, ref_norm = normalize_answer(predicted), normalize_answer(reference)
    if pred_norm == ref_norm and pred_norm:
        return True

    def simple(value: tuple[Fraction, bool] | None, norm: str) -> bool:
        return value is not None or bool(_SIMPLE_WORD.match(norm))

    if simple(pred_num, pred_norm) and simple(ref_num, ref_norm):
        return False
    return None


def _builtin_verify(response: str, reference: str) -> bool | None:
    predicted = extract_answer(response)
    if predicted is None:
        return None
    return compare_answers(predicted, reference)


def _math_verify_compare(response: str, reference: str) -> bool | None:
    """``math_verify`` comparison; None when it extracts nothing from either side."""
    limit = MATH_VERIFY_TIMEOUT if threading.current_thread() is threading.main_thread() else None
    gold_text = reference if ("$" in reference or "\\boxed" in reference) else f"${reference}$"
    gold = _math_verify.parse(gold_text, parsing_timeout=limit)
    predicted = _math_verify.parse(response, parsing_timeout=limit)
    if not gold or not predicted:
        return None
    return bool(_math_verify.verify(gold, predicted, timeout_seconds=limit))


def verify_math(response: str, reference: str | int | float, backend: str = "auto") -> bool | None:
    """Is the response's final answer equal to the reference?

    Args:
        response: assistant text.
        reference: the known final answer. A full solution ending in ``#### X`` or containing
            ``\\boxed{X}`` is reduced to X first.
        backend: ``"auto"`` (``math_verify`` if installed, built-in as fallback), ``"builtin"``, or
            ``"math_verify"``.

    Returns:
        True, False, or None when no answer can be extracted or compared.

    Raises:
        FlywheelError: unknown backend, or ``"math_verify"`` requested but not installed.
    """
    if backend not in BACKENDS:
        raise FlywheelError(f"verify_math: unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "math_verify" and _math_verify is None:
        raise FlywheelError("verify_math: backend 'math_verify' requested but the math-verify package is not installed")
    if not isinstance(response, str):
        return None
    ref = str(reference).strip()
    if "####" in ref or "\\boxed" in ref:
        ref = extract_answer(ref) or ref
    if not ref:
        return None
    if backend != "builtin" and _math_verify is not None:
        result = _math_verify_compare(response, ref)
        if result is not None or backend == "math_verify":
            return result
    return _builtin_verify(response, ref)


def _all_three_valued(results: Iterable[bool | None]) -> bool | None:
    """Kleene AND: False if any False, None if any undecided, else True."""
    results = list(results)
    if any(r is False for r in results):
        return False
    if any(r is None for r in results):
        return None
    return True


def _instructions_result(raw: Any) -> bool | None:
    """Reduce what an instruction checker returns to one value.

    Accepts a bool (or None), ``(all_ok, per_instruction)`` as ``verify_all`` returns, or a
    collection / mapping of per-instruction results.
    """
    if raw is None or isinstance(raw, bool):
        return raw
    if isinstance(raw, tuple) and raw and (raw[0] is None or isinstance(raw[0], bool)):
        return raw[0]
    if isinstance(raw, Mapping):
        raw = raw.values()
    if isinstance(raw, Iterable) and not isinstance(raw, (str, bytes)):
        return _all_three_valued(None if r is None else bool(r) for r in raw)
    return bool(raw)


def verify(record_meta: Mapping[str, Any] | None, response: str) -> bool | None:
    """Ground-truth check of one response, chosen by what the prompt's ``meta`` carries.

    * ``meta["answer"]``: math final answer (``verify_math``, backend from ``meta["math_backend"]``,
      default ``"auto"``).
    * ``meta["instructions"]``: verifiable instruction constraints, checked by
      ``flywheel.sdg.instructions.verify_all(response, instructions)``.

    When both are present, both must hold (False if either fails, None if either is undecided).

    Args:
        record_meta: the prompt row's ``meta`` (None or empty: nothing to verify).
        response: assistant text of the final turn.

    Returns:
        True, False, or None when no verifier applies or none can decide.
    """
    if not isinstance(record_meta, Mapping):
        return None
    results: list[bool | None] = []
    if record_meta.get("answer") is not None:
        backend = record_meta.get("math_backend", "auto")
        results.append(verify_math(response, record_meta["answer"], backend=backend))
    instructions = record_meta.get("instructions")
    if instructions:
        # Imported here: the instruction checkers live with the prompt builders in flywheel.sdg.
        from flywheel.sdg.instructions import verify_all

        results.append(_instructions_result(verify_all(response, instructions)))
    if not results:
        return None
    return _all_three_valued(results)
