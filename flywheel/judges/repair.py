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
* ``length_max_words``: keep the leading whole sentences that fit in ``n`` words.

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
from flywheel.judges.verifiers import compare_answers, extract_answer, verify, verify_math
from flywheel.sdg.instructions import sentences, verify_all, words

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
)
# Kinds whose fix regroups the whole text; one of them at a time.
_LAYOUT_KINDS = ("sections", "paragraphs", "bullets")

# Neutral: adds no claim to the response.
POSTSCRIPT_TEXT = "Thanks for reading."
TITLE_WORDS = 8

# What the math verifiers read as a stated final answer.
_ANSWER_FORMAT = re.compile(r"\\(?:boxed|fbox)\s*\{|####|answer\s*(?:is\b|:|=)", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?%?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_COMMA_BEFORE_SPACE = re.compile(r"[,，](?=\s|$)")
_COMMA = re.compile(r"[,，]")
_BLANK_LINE = re.compile(r"\n\s*\n")
_SECTION_LABEL = re.compile(r"(?im)^\s*(?:#+\s*)?(?:\*\*)?section\s+\d+")
_WORD = re.compile(r"\w+(?:['’]\w+)*")
_BULLET_LINE = re.compile(r"(?m)^\s*[*-]\s+\S")


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


def _drop_commas(text: str) -> str:
    text = _THOUSANDS.sub("", text)
    text = _COMMA_BEFORE_SPACE.sub("", text)
    return _COMMA.sub(" ", text)


def _title(text: str) -> str | None:
    """The first words of the first line that has any, as a title; None when the text has no words."""
    for line in text.splitlines():
        found = _WORD.findall(line)
        if found:
            return " ".join(found[:TITLE_WORDS])
    return None


def _label_sections(text: str, n: int) -> str | None:
    """Paragraphs labelled ``Section 1`` .. ``Section n``; None unless there are exactly ``n`` unlabelled ones."""
    if _SECTION_LABEL.search(text):
        return None
    paragraphs = [p.strip() for p in _BLANK_LINE.split(text.strip()) if p.strip()]
    if len(paragraphs) != n:
        return None
    return "\n\n".join(f"Section {i}\n{p}" for i, p in enumerate(paragraphs, start=1))


def _groups(text: str, n: int) -> list[str] | None:
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


def _layout(text: str, kind: str, params: Mapping[str, Any]) -> str | None:
    """The text regrouped for one layout instruction, or None when it cannot be."""
    n = int(params["n"])
    if kind == "sections":
        labelled = _label_sections(text, n)
        if labelled is not None or _SECTION_LABEL.search(text):
            return labelled
        groups = _groups(text, n)
        return None if groups is None else _label_sections("\n\n".join(groups), n)
    groups = _groups(text, n)
    if groups is None:
        return None
    if kind == "paragraphs":
        return ("\n***\n" if params.get("sep") == "***" else "\n\n").join(groups)
    if _BULLET_LINE.search(text):  # bullets: a list of another length is not rewritten
        return None
    return "\n".join(f"* {g}" for g in groups)


def _highlight(text: str, n: int) -> str | None:
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


def _truncate_words(text: str, n: int) -> str | None:
    """The leading whole sentences of ``text`` with at most ``n`` words (None when even the first is longer)."""
    kept, count = [], 0
    for sentence in sentences(text):
        count += len(words(sentence))
        if count > n:
            break
        kept.append(sentence.strip())
    return " ".join(kept) if kept else None


def _quoted(text: str) -> bool:
    return len(text) > 2 and text[0] == '"' and text[-1] == '"'


def _apply_fixes(
    response: str, params: Mapping[str, Mapping[str, Any]], failing: set[str], line: str | None
) -> tuple[str | None, str | None]:
    """Every fix for the instruction kinds in ``params``, innermost first."""
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
    if "length_max_words" in failing:
        cut = _truncate_words(body, int(params["length_max_words"]["n"]))
        if cut is None:
            return None, "unfixable/length_max_words"
        body = cut
    title = _title(body)
    layout = [k for k in _LAYOUT_KINDS if k in failing]
    if len(layout) > 1:
        return None, f"unfixable/{layout[1]}"
    if layout:
        regrouped = _layout(body, layout[0], params[layout[0]])
        if regrouped is None:
            return None, f"unfixable/{layout[0]}"
        body = regrouped
    if "highlights" in failing:
        marked = _highlight(body, int(params["highlights"]["n"]))
        if marked is None:
            return None, "unfixable/highlights"
        body = marked
    if line is not None:
        body = f"{body.rstrip()}\n{line}"
    if "title" in failing:
        if title is None:
            return None, "unfixable/title"
        # Single newlines keep the paragraph and section counts as they were.
        body = f"<<{title}>>\n{body.lstrip()}"
    if "postscript" in failing:
        body = f"{body.rstrip()}\n\n{params['postscript']['marker']} {POSTSCRIPT_TEXT}"
    if start:
        body = start + (body if body[:1].isspace() else f"\n{body}")
    if end:
        body = body + (end if body[-1:].isspace() else f"\n{end}")
    if "no_commas" in kinds:
        body = _drop_commas(body)
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


def attempt_repair(response: str, meta: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """Repair a response that fails its verifiers, or say why it cannot be repaired.

    Args:
        response: assistant text.
        meta: the prompt row's ``meta`` (``answer``, ``instructions``, ``math_backend``), as
            :func:`flywheel.judges.verifiers.verify` reads it.

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
        repaired, reason = _apply_fixes(response, params, set(failing), line)
    except (KeyError, TypeError, ValueError):
        return None, "bad_meta"
    if repaired is None:
        return None, reason
    try:
        ok = verify(meta, repaired)
    except FlywheelError:
        return None, "bad_meta"
    return (repaired, None) if ok is True else (None, "still_failing")


def unsolved(meta: Mapping[str, Any] | None, responses: Sequence[str]) -> bool:
    """Does ``meta`` carry a verifier that none of ``responses`` passes, nor can be repaired to pass?

    Such a prompt yields no verified answer and no verifier pair from these samples; more samples may.
    """
    if not isinstance(meta, Mapping) or (meta.get("answer") is None and not meta.get("instructions")):
        return False
    return all(attempt_repair(r, meta)[0] is None for r in responses)


def repair(response: str, meta: Mapping[str, Any] | None) -> str | None:
    """A version of ``response`` that passes ``verify(meta, .)``, or None (see ``attempt_repair``)."""
    return attempt_repair(response, meta)[0]
