"""IFEval-style scoring of responses against the project's verifiable instructions.

IFEval (Zhou et al., 2023, arXiv:2311.07911, section 2.2) reports four accuracies:

* strict: an instruction is followed when its checker accepts the response as written;
* loose: it is followed when the checker accepts *any* of eight variants of the response: the
  response itself, with its first line removed, its last line removed, or both, each of those with
  and without markdown ``*`` characters. This forgives a preamble ("Sure, here it is:"), a closing
  remark, or bold/italic markup around keywords.

Each accuracy is taken at the prompt level (every instruction of the prompt followed) and at the
instruction level (share of all instructions followed). The checkers are those of
``flywheel.sdg.instructions``; instruction dicts are the ``meta["instructions"]`` of a suite row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.sdg.instructions import verify_all


def loose_variants(response: str) -> list[str]:
    """The response and its seven relaxed variants, in IFEval's order; blank ones are kept.

    Args:
        response: the assistant's reply.

    Returns:
        ``[response, without_first_line, without_last_line, without_both]`` followed by the same
        four with every ``*`` removed (8 strings).
    """
    if not isinstance(response, str):
        raise FlywheelError(f"ifeval: response must be a string, got {type(response).__name__}")

    def trims(text: str) -> list[str]:
        lines = text.split("\n")
        return [text, "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]

    return trims(response) + trims(response.replace("*", ""))


def _followed(text: str, instruction: Mapping[str, Any]) -> bool:
    # verify_all validates the record and maps bad params to FlywheelError; a blank text fails.
    return verify_all(text, [dict(instruction)])[0]


def score_response(response: str, instructions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Strict and loose results of one response, per instruction.

    Args:
        response: the assistant's reply to the prompt.
        instructions: the prompt's instruction dicts (``{"kind", "params", "text"}``).

    Returns:
        ``{"kinds": [k], "strict": [k], "loose": [k], "prompt_strict": bool, "prompt_loose": bool}``
        with one entry per instruction in the given order; loose is never below strict.

    Raises:
        FlywheelError: no instructions, a malformed instruction, or a non-string response.
    """
    if isinstance(instructions, (str, bytes, Mapping)) or not isinstance(instructions, Sequence) or not instructions:
        raise FlywheelError("ifeval: a prompt needs a non-empty list of instructions")
    variants = loose_variants(response)
    kinds, strict, loose = [], [], []
    for ins in instructions:
        if not isinstance(ins, Mapping) or "kind" not in ins:
            raise FlywheelError(f"ifeval: bad instruction record {ins!r:.80}")
        kinds.append(ins["kind"])
        strict.append(_followed(response, ins))
        loose.append(strict[-1] or any(_followed(v, ins) for v in variants[1:]))
    return {"kinds": kinds, "strict": strict, "loose": loose, "prompt_strict": all(strict), "prompt_loose": all(loose)}


def aggregate(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The four IFEval accuracies over many ``score_response`` results.

    Args:
        results: one ``score_response`` dict per prompt.

    Returns:
        ``{"prompt_level_strict", "prompt_level_loose", "instruction_level_strict",
        "instruction_level_loose", "prompts", "instructions", "per_kind"}``; accuracies are in
        [0, 1] and ``per_kind[kind]`` holds ``{"n", "strict", "loose"}`` for that instruction kind.

    Raises:
        FlywheelError: no results, or a result without aligned ``kinds``/``strict``/``loose``.
    """
    prompts = prompt_strict = prompt_loose = 0
    per_kind: dict[str, dict[str, int]] = {}
    for res in results:
        try:
            kinds, strict, loose = list(res["kinds"]), list(res["strict"]), list(res["loose"])
        except (KeyError, TypeError) as err:
            raise FlywheelError(f"ifeval.aggregate: not a score_response result: {res!r:.80}") from err
        if not kinds or not len(kinds) == len(strict) == len(loose):
            raise FlywheelError("ifeval.aggregate: kinds, strict and loose must be aligned and non-empty")
        prompts += 1
        prompt_strict += all(strict)
        prompt_loose += all(loose)
        for kind, ok_strict, ok_loose in zip(kinds, strict, loose):
            tally = per_kind.setdefault(kind, {"n": 0, "strict": 0, "loose": 0})
            tally["n"] += 1
            tally["strict"] += bool(ok_strict)
            tally["loose"] += bool(ok_loose)
    if not prompts:
        raise FlywheelError("ifeval.aggregate: no results")
    n_ins = sum(t["n"] for t in per_kind.values())
    return {
        "prompt_level_strict": prompt_strict / prompts,
        "prompt_level_loose": prompt_loose / prompts,
        "instruction_level_strict": sum(t["strict"] for t in per_kind.values()) / n_ins,
        "instruction_level_loose": sum(t["loose"] for t in per_kind.values()) / n_ins,
        "prompts": prompts,
        "instructions": n_ins,
        "per_kind": {
            k: {"n": t["n"], "strict": t["strict"] / t["n"], "loose": t["loose"] / t["n"]}
            for k, t in sorted(per_kind.items())
        },
    }
