"""The one engine call site of the synthetic-data stages: a step of chat requests streamed to parts.

``StepAsker(step, requests)`` groups requests by sampling name, cuts them into batches whose count is a multiple
of the pool's actors (so no actor idles through a step's tail), sends every batch through
:func:`flywheel.stages.common.map_parts` (each finished batch becomes a part on the store at once; parts left by
a killed attempt are reused) and returns ``{key: reply text}`` read back from the parts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from flywheel.stages.common import Context, map_parts, read_output
from flywheel.store import fingerprint


def even_batches(items: Sequence[Any], max_size: int, num_actors: int) -> list[list[Any]]:
    """Split ``items`` into near-equal batches of at most ``max_size``, their count a multiple of ``num_actors``
    (unless there are fewer items than actors).

    >>> [len(b) for b in even_batches(list(range(10)), 4, 2)]
    [3, 3, 2, 2]
    """
    n = len(items)
    if n == 0:
        return []
    count = -(-n // max(1, max_size))
    count = min(n, -(-count // max(1, num_actors)) * max(1, num_actors))
    base, extra = divmod(n, count)
    out, start = [], 0
    for i in range(count):
        size = base + (1 if i < extra else 0)
        out.append(list(items[start : start + size]))
        start += size
    return out


def sampling_hash(samplings: dict[str, dict]) -> str:
    """Short hash of the sampling parameters a stage used (lineage)."""
    return fingerprint(samplings)


class _OnDemand:
    """A pool started only when a step has batches left to run (a resumed stage may need none)."""

    def __init__(self, get_pool: Callable[[], Any]):
        self.get_pool, self.pool = get_pool, None

    def map(self, *args: Any, **kwargs: Any) -> None:
        if self.pool is None:
            self.pool = self.get_pool()
        self.pool.map(*args, **kwargs)  # type: ignore[attr-defined]


class StepAsker:
    """Callable ``(step, [(key, messages, sampling name)]) -> {key: text}`` over one engine pool.

    Args:
        ctx, stage, fp: where parts go: ``round-N/{stage}/{fp}/steps/{step}/part-*.jsonl``.
        get_pool: returns the chat pool (called once, when the first batch has to run).
        samplings: sampling name -> vLLM sampling dict.
        batch_size: most prompts per request to one actor.
        num_actors: actors in the pool.
    """

    def __init__(
        self,
        ctx: Context,
        stage: str,
        fp: str,
        get_pool: Callable[[], Any],
        samplings: dict[str, dict],
        batch_size: int,
        num_actors: int,
    ):
        self.ctx, self.stage, self.fp = ctx, stage, fp
        self.pool, self.samplings = _OnDemand(get_pool), samplings
        self.batch_size, self.num_actors = batch_size, num_actors
        self.tokens = 0
        self.seconds = 0.0
        self.requests = 0

    def __call__(self, step: str, requests: list[tuple[str, list[dict], str]]) -> dict[str, str]:
        if not requests:
            return {}
        groups: dict[str, list[tuple[str, list[dict]]]] = defaultdict(list)
        for key, messages, sampling in requests:
            groups[sampling].append((key, messages))
        batches = [
            (name, b) for name in sorted(groups) for b in even_batches(groups[name], self.batch_size, self.num_actors)
        ]
        out, metrics = map_parts(
            self.ctx,
            self.stage,
            f"{self.fp}/steps/{step}",
            self.pool,
            "chat",
            batches,
            make_args=lambda b: ([m for _, m in b[1]], self.samplings[b[0]], 1),
            make_rows=lambda b, res: [{"key": k, "text": t[0] if t else ""} for (k, _), t in zip(b[1], res["texts"])],
            desc=f"round {self.ctx.round} {self.stage}: {step}",
        )
        self.tokens += metrics["tokens"]
        self.seconds += metrics["wall_seconds"]
        self.requests += len(requests)
        return {r["key"]: r["text"] for r in read_output(self.ctx, {"stage": self.stage, "outputs": {"o": out}}, "o")}

    def metrics(self) -> dict:
        """Generated tokens (this attempt; reused parts count 0), engine wall seconds and tokens/s."""
        return {
            "gen_tokens": self.tokens,
            "gen_seconds": round(self.seconds, 2),
            "gen_requests": self.requests,
            "tokens_per_s": round(self.tokens / self.seconds, 2) if self.seconds > 0 else 0.0,
        }
