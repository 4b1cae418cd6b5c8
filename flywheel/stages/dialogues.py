"""Stage ``dialogues``: 3-turn role-played dialogues from the round's generator.

Nemotron-4 340B report, section 3.2.2: the instruct model alternates between the assistant and the user. Each
dialogue opens with a single-turn synthetic prompt from this round's ``prompts`` stage; the generator answers it
greedily (``generation.answer_sampling``), then plays the user with a persona (``flywheel.sdg.dialogue``:
roles flipped, persona in the system turn, ``generation.prompt_sampling``) and its user turn is post-processed
(role labels and polite filler removed). ``sdg.dialogue_turns`` user turns make a dialogue; one whose simulated
user turn is unusable is dropped and counted. Each step of every dialogue advances together in one batched,
part-streamed engine call, so a killed stage resumes from its finished parts.

Output rows: ``{"id", "messages" (user, assistant, ... ending with assistant), "kind": "dialogue", "prompt_id",
"meta": {"persona", "base_kind"}, "generator", "lineage"}``; the judge scores them like responses so the
datasets stage can keep the well-rated ones for SFT.
"""

from __future__ import annotations

from collections import Counter

from flywheel.sdg.pipelines import pick_openers, role_play
from flywheel.sdg.rows import prompt_id
from flywheel.stages.asker import StepAsker, sampling_hash
from flywheel.stages.common import Context, lineage, read_output, run_once, section, write_parts
from flywheel.stages.roles import chat_pool, generator


def run(ctx: Context) -> dict:
    gen = generator(ctx)
    pm = ctx.manifest("prompts")
    g, sdg, eng = ctx.cfg.generation, ctx.cfg.sdg, ctx.cfg.engine
    samplings = {"prompt": section(g.prompt_sampling), "answer": section(g.answer_sampling)}

    def body(fp: str):
        openers, personas = pick_openers(
            list(read_output(ctx, pm, "prompts")), sdg.dialogues, list(sdg.personas), sdg.seed
        )
        ask = StepAsker(
            ctx,
            "dialogues",
            fp,
            lambda: chat_pool(ctx, gen["uri"], "generator"),
            samplings,
            eng.batch_size,
            eng.num_actors,
        )
        skipped: Counter = Counter()
        done = role_play(ask, openers, personas, sdg.dialogue_turns, skipped)
        lin = lineage(
            ctx,
            "dialogues",
            fp,
            generator=gen["id"],
            judge=None,
            pipeline="dialogue",
            template="user_turn_prompt",
            sampling_hash=sampling_hash(samplings),
        )
        rows = (
            {
                "id": prompt_id(msgs),
                "messages": msgs,
                "kind": "dialogue",
                "prompt_id": o["id"],
                "meta": {"persona": p["name"], "base_kind": o.get("kind")},
                "generator": gen["id"],
                "lineage": {**lin, "persona": p["name"]},
            }
            for o, p, msgs in done
        )
        out = write_parts(ctx, "dialogues", f"{fp}/dialogues", rows)
        metrics = {
            "dialogues": out["count"],
            "openers": len(openers),
            **{f"skipped/{k}": v for k, v in sorted(skipped.items())},
            **ask.metrics(),
        }
        return {"dialogues": out}, metrics

    return run_once(
        ctx,
        "dialogues",
        [pm["fingerprint"], gen, samplings, sdg.dialogues, sdg.dialogue_turns, list(sdg.personas), sdg.seed],
        body,
        inputs={"prompts": pm["fingerprint"]},
    )
