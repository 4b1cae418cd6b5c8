"""Verifier-guided repair: make a failing response pass the checks it fails, without changing what it says.

When every sampled response to a prompt with ground truth fails verification, the prompt gives no verifier pair
(Nemotron-4 340B, NVIDIA 2024, sec. 3.2.3, needs a verified-right and a verified-wrong response). Many such
failures are formatting slips that a program can fix: a missing end phrase, a capital letter in an all-lowercase
answer, a math solution that reaches the right number but never states it as the final answer. Repairing the best
failing response yields a response that passes beside one that fails, on the very same content.

Only mechanical fixes are made, one per instruction kind in ``FIXABLE_KINDS`` (kinds from
:data:`flywheel.sdg.instructions.REGISTRY`):

* ``all_lowercase`` / ``all_uppercase``: change the case of the whole text;
* ``start_phrase`` / ``end_phrase``: put the required phrase on its own line at the start / end;
* ``json_format``: the text as the one string field of a JSON object (``{"response": ...}``);
* ``quotation``: the text inside one pair of double quotes;
* ``no_commas``: drop commas (thousands separators included, so numbers keep their value);
* ``postscript``: append a short neutral postscript line with the required marker;
* ``title``: prepend ``<<title>>`` made of the response's own first words;
* ``sections``: label the paragraphs ``Section 1`` .. ``Section n`` when there are exactly ``n`` of them, else
  regroup the sentences into ``n`` paragraphs first;
* ``paragraphs``: regroup the sentences, in order, into ``n`` paragraphs with the asked separator;
* ``bullets``: regroup the sentences, in order, into ``n`` bullet points (a text with bullets already is left);
* ``highlights``: wrap the first ``n`` sentences that hold no asterisk in ``*...*``;
* ``length_max_words``: keep the leading whole sentences that fit in ``n`` words;
* ``sentence_count`` ("less than n" only): keep the leading whole sentences, as few as the other fixes' lines
  leave room for (a text cannot be lengthened, so "at least n" is not fixed);
* ``keywords_forbidden``: drop a forbidden filler adverb ("very", "really", ...), swap a forbidden vague word
  for a plain one ("thing" -> "item"); words outside that table are not fixed;
* ``capital_words_frequency``: write the longest words in capitals until there are enough ("at least"), or
  the last all-capital words in title case until there are few enough ("less than");
* ``placeholders``: append a neutral sign-off line of template fields, ``Written by [name] on [date].``
* ``keywords_include``: append a line naming the asked words the text lacks, ``Keywords: future, method.`` (the
  words are listed, not worked into the answer's sentences: no claim is made up for them).

``two_responses`` is not a fix of one text: given a ``second`` response to the same prompt (another of the
generator's own samples), the two are joined as the instruction asks (one line of six asterisks between,
:func:`flywheel.judges.backtranslate.join_two`) before the other fixes, save the ones that regroup the whole text
(``sections``, ``paragraphs``, ``bullets``: they would move the separator line); without one it is not repaired.

Regrouping needs at least as many sentences as groups; the words and their order never change.

Math (``meta["answer"]``): when the response never states a final answer in a form the verifier reads
(``\\boxed{}``, ``#### X``, ``The answer is X``) but one of its numbers equals the known answer, the line
``The answer is X.`` is appended with that number. A response that states a wrong final answer, or whose numbers
do not include the right one, is never repaired: the answer is not made up.

Fixes that add text at the edges are applied inside the ones that wrap the text, and the case change comes after
every text fix and before the wrappers, so no fix undoes an earlier one. Whatever the fixes produce is checked
again with :func:`flywheel.judges.verifiers.verify`; only a text that passes every check is returned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.judges.backtranslate import join_two
from flywheel.judges.text_fixes import (
    capital_words_to,
    drop_commas,
    first_sentences,
    highlight,
    keyword_line,
    placeholder_line,
    regroup,
    swap_forbidden,
    title_of,
    truncate_words,
)
from flywheel.judges.verifiers import compare_answers, extract_answer, verify, verify_math
from flywheel.sdg.instructions import placeholder_count, verify_all

FIXABLE_KINDS: tuple[str, ...] = (
    "all_lowercase",
    "all_uppercase",
    "start_phrase",
    "end_phrase",
    "json_format",
    "quotation",
    "no_commas",
    "postscript",
    "title",
    "sections",
    "paragraphs",
    "bullets",
    "highlights",
    "length_max_words",
    "sentence_count",
    "keywords_forbidden",
    "capital_words_frequency",
    "placeholders",
    "keywords_include",
)
# Kinds whose fix regroups the whole text; one of them at a time.
_LAYOUT_KINDS = ("sections", "paragraphs", "bullets")

# Neutral: adds no claim to the response.
POSTSCRIPT_TEXT = "Thanks for reading."

# What the math verifiers read as a stated final answer.
_ANSWER_FORMAT = re.compile(r"\\(?:boxed|fbox)\s*\{|####|answer\s*(?:is\b|:|=)", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?%?")


def _instructions(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = meta.get("instructions") or []
    if not isinstance(raw, list) or not all(isinstance(ins, dict) and "kind" in ins for ins in raw):
        raise FlywheelError(f"repair: bad instruction records {raw!r:.80}")
    return raw


def _reference(answer: Any) -> str:
    """The known final answer, reduced from a full solution the way ``verify_math`` reduces it."""
    ref = str(answer).strip()
    if "####" in ref or "\\boxed" in ref:
        ref = extract_answer(ref) or ref
    return ref


def answer_line(response: str, answer: Any) -> tuple[str | None, str | None]:
    """The final-answer line to append to a math response that reaches the answer without stating it.

    Args:
        response: assistant text whose final answer does not verify.
        answer: the known answer (``meta["answer"]``).

    Returns:
        ``("The answer is X.", None)`` with X a number of the response equal to the answer (commas dropped), or
        ``(None, reason)``: ``math_answer_stated`` when the response states a final answer in a form the
        verifier reads (a wrong one: it is not overruled), ``math_answer_absent`` when no number of the
        response equals the answer.
    """
    if _ANSWER_FORMAT.search(response):
        return None, "math_answer_stated"
    ref = _reference(answer)
    for match in reversed(list(_NUMBER.finditer(response))):
        number = re.sub(r"[\s,]", "", match.group(0))
        if compare_answers(number, ref) is True:
            return f"The answer is {number}.", None
    return None, "math_answer_absent"


def _quoted(text: str) -> bool:
    return len(text) > 2 and text[0] == '"' and text[-1] == '"'


def _apply_fixes(
    response: str,
    params: Mapping[str, Mapping[str, Any]],
    failing: set[str],
    line: str | None,
    keep_sentences: int | None = None,
) -> tuple[str | None, str | None]:
    """Every fix for the instruction kinds in ``params``, innermost first; ``keep_sentences``: cut the text
    after that many sentences (None: keep them all)."""
    kinds = set(params)
    body = response.strip()
    quoted = "quotation" in kinds and _quoted(body)
    if quoted:
        body = body[1:-1]
    start = params["start_phrase"]["phrase"] if "start_phrase" in kinds else None
    end = params["end_phrase"]["phrase"] if "end_phrase" in kinds else None
    # A phrase already in place is taken off and put back last, so nothing added lands outside it.
    if start and body.startswith(start):
        body = body[len(start) :]
    if end and body.rstrip().endswith(end):
        body = body.rstrip()[: -len(end)]
    if "keywords_forbidden" in failing:
        swapped = swap_forbidden(body, params["keywords_forbidden"]["words"])
        if swapped is None:
            return None, "unfixable/keywords_forbidden"
        body = swapped
    if "length_max_words" in failing:
        cut = truncate_words(body, int(params["length_max_words"]["n"]))
        if cut is None:
            return None, "unfixable/length_max_words"
        body = cut
    if keep_sentences is not None:
        body = first_sentences(body, keep_sentences) or ""
        if not body:
            return None, "unfixable/sentence_count"
    title = title_of(body)
    layout = [k for k in _LAYOUT_KINDS if k in failing]
    if len(layout) > 1:
        return None, f"unfixable/{layout[1]}"
    if layout:
        regrouped = regroup(body, layout[0], params[layout[0]])
        if regrouped is None:
            return None, f"unfixable/{layout[0]}"
        body = regrouped
    if "highlights" in failing:
        marked = highlight(body, int(params["highlights"]["n"]))
        if marked is None:
            return None, "unfixable/highlights"
        body = marked
    if line is not None:
        body = f"{body.rstrip()}\n{line}"
    if "keywords_include" in failing:
        listed = keyword_line(body, list(params["keywords_include"]["keywords"]))
        if listed is None:
            return None, "unfixable/keywords_include"
        body = f"{body.rstrip()}\n{listed}"
    if "placeholders" in failing:
        fields = placeholder_line(int(params["placeholders"]["n"]) - placeholder_count(body))
        if fields is None:
            return None, "unfixable/placeholders"
        body = f"{body.rstrip()}\n{fields}"
    if "title" in failing:
        if title is None:
            return None, "unfixable/title"
        # Single newlines keep the paragraph and section counts as they were.
        body = f"<<{title}>>\n{body.lstrip()}"
    if "postscript" in failing:
        body = f"{body.rstrip()}\n\n{params['postscript']['marker']} {POSTSCRIPT_TEXT}"
    if "capital_words_frequency" in kinds:  # after every added line but the phrases, which must stay as given
        cw = params["capital_words_frequency"]
        capitalized = capital_words_to(body, str(cw["relation"]), int(cw["n"]))
        if capitalized is None:
            return None, "unfixable/capital_words_frequency"
        body = capitalized
    if start:
        body = start + (body if body[:1].isspace() else f"\n{body}")
    if end:
        body = body + (end if body[-1:].isspace() else f"\n{end}")
    if "no_commas" in kinds:
        body = drop_commas(body)
    # Case before the wrappers: upper-casing JSON would turn its \n escapes into invalid \N.
    if "all_lowercase" in kinds:
        body = body.lower()
    if "all_uppercase" in kinds:
        body = body.upper()
    if "quotation" in kinds:
        body = f'"{body.strip()}"'
    if "json_format" in failing:
        key = "RESPONSE" if "all_uppercase" in kinds else "response"
        body = json.dumps({key: body.strip()}, ensure_ascii=False)
    return body, None


def attempt_repair(
    response: str, meta: Mapping[str, Any] | None, second: str | None = None
) -> tuple[str | None, str | None]:
    """Repair a response that fails its verifiers, or say why it cannot be repaired.

    Args:
        response: assistant text.
        meta: the prompt row's ``meta`` (``answer``, ``instructions``, ``math_backend``), as
            :func:`flywheel.judges.verifiers.verify` reads it.
        second: another response to the same prompt, joined after ``response`` when ``two_responses`` fails
            (see the module docstring); None: ``two_responses`` is not repaired.

    Returns:
        ``(text, None)`` where ``verify(meta, text)`` is True (``response`` itself when it passes already), or
        ``(None, reason)`` with reason one of ``empty_response``, ``no_verifier``, ``bad_meta``,
        ``unfixable/<kind>`` (a failing instruction kind outside ``FIXABLE_KINDS``, or one whose fix does not
        apply), ``math_answer_stated``, ``math_answer_absent``, ``still_failing`` (the fixes did not make
        every check pass, e.g. two instructions that contradict each other).
    """
    if not isinstance(response, str) or not response.strip():
        return None, "empty_response"
    if not isinstance(meta, Mapping) or (meta.get("answer") is None and not meta.get("instructions")):
        return None, "no_verifier"
    try:
        if verify(meta, response) is True:
            return response, None
        instructions = _instructions(meta)
        failing = [str(ins["kind"]) for ins in instructions if not verify_all(response, [ins])[0]]
        if "two_responses" in failing and second is not None:
            joined = join_two(response, second)
            if joined is None:
                return None, "unfixable/two_responses"
            if verify(meta, joined) is True:
                return joined, None
            response = joined
            failing = [str(ins["kind"]) for ins in instructions if not verify_all(response, [ins])[0]]
            for kind in failing:  # a regrouping of the joined text would move the separator line
                if kind in _LAYOUT_KINDS:
                    return None, f"unfixable/{kind}"
        line = None
        answer = meta.get("answer")
        if answer is not None and verify_math(response, answer, backend=meta.get("math_backend", "auto")) is not True:
            line, reason = answer_line(response, answer)
            if reason is not None:
                return None, reason
    except FlywheelError:
        return None, "bad_meta"
    for kind in failing:
        if kind not in FIXABLE_KINDS:
            return None, f"unfixable/{kind}"
    params = {str(ins["kind"]): dict(ins.get("params") or {}) for ins in instructions}
    try:
        budgets = _sentence_budgets(params.get("sentence_count"), "sentence_count" in failing)
        for keep in budgets:
            repaired, reason = _apply_fixes(response, params, set(failing), line, keep)
            if repaired is None:
                return None, reason
            if verify(meta, repaired) is True:
                return repaired, None
    except (KeyError, TypeError, ValueError, FlywheelError):
        return None, "bad_meta"
    return None, "still_failing" if budgets else "unfixable/sentence_count"


def _sentence_budgets(sc: Mapping[str, Any] | None, failing: bool) -> list[int | None]:
    """How many sentences to keep, tried in turn: all of them first unless the count already fails, then
    ``n - 1`` down to 1 for "less than n" (the other fixes' lines count too); none to try for a failing
    "at least n"."""
    if sc is None:
        return [None]
    relation, n = sc["relation"], int(sc["n"])
    if relation != "less than":
        return [] if failing else [None]
    return ([] if failing else [None]) + list(range(n - 1, 0, -1))


def unsolved(meta: Mapping[str, Any] | None, responses: Sequence[str]) -> bool:
    """Does ``meta`` carry a verifier that none of ``responses`` passes, nor can be repaired to pass?

    Such a prompt yields no verified answer and no verifier pair from these samples; more samples may.
    ``two_responses`` counts as repairable when another, different response is there to join.
    """
    if not isinstance(meta, Mapping) or (meta.get("answer") is None and not meta.get("instructions")):
        return False
    return all(attempt_repair(r, meta, other_response(r, responses))[0] is None for r in responses)


def other_response(response: str, responses: Sequence[str]) -> str | None:
    """The first of ``responses`` whose text differs from ``response``'s (a ``second`` for ``attempt_repair``)."""
    text = response.strip() if isinstance(response, str) else ""
    return next((r for r in responses if isinstance(r, str) and r.strip() and r.strip() != text), None)


def repair(response: str, meta: Mapping[str, Any] | None) -> str | None:
    """A version of ``response`` that passes ``verify(meta, .)``, or None (see ``attempt_repair``)."""
    return attempt_repair(response, meta)[0]
