"""One training job end to end, independent of where it runs: data -> reference log-probs -> train -> export.

A :class:`Runtime` supplies what differs between an in-process run and a Ray Train worker with DeepSpeed:
rank and world size, how a model is loaded and wrapped into an engine, and three collectives. The
in-process :class:`LocalRuntime` (tests, benchmarks) needs none of Ray or DeepSpeed.

Resume: a job whose ``out_dir`` already holds an export with the same fingerprint is skipped (its stored
metrics are returned); otherwise a checkpoint in ``{out_dir}.ckpt`` with the same fingerprint is loaded and
training continues from its step, replaying the same data order.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import torch

from flywheel.errors import FlywheelError
from flywheel.store import fingerprint
from flywheel.train import data as tdata
from flywheel.train import export, reference
from flywheel.train.config import StageConfig, validate_stage
from flywheel.train.engine import ModelEngine, TorchEngine, build_optimizer, build_scheduler
from flywheel.train.loop import plan, train_stage
from flywheel.train.lora import apply_lora, merged

if TYPE_CHECKING:
    from _typeshed import DataclassInstance
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        PreTrainedModel,
        PreTrainedTokenizerBase,
    )


@dataclass
class TrainJob:
    """One stage to train. ``init_model``/``ref_model`` may name an earlier job's ``out_dir`` in the same run.

    Attributes:
        name: unique label ("sft_code", "dpo", "rpo_1", ...).
        kind: "sft" | "dpo" | "rpo".
        init_model: local HF directory to start from.
        ref_model: local HF directory of the frozen reference (DPO/RPO).
        data: local JSONL files: SFT rows ``{"messages"}`` or preference rows.
        out_dir: where the final HF export lands (atomically).
        stage: hyperparameters.
        ref_logps: cache file of reference log-probs; default ``{data[0]}.ref_logps.safetensors``.
        replay_data: SFT only: rows of which a ``code_replay`` share is mixed into ``data``.
        lora: adapter settings (:class:`flywheel.train.config.LoraConfig`) or None for full fine-tuning.
    """

    name: str
    kind: str
    init_model: str
    ref_model: str | None
    data: list[str]
    out_dir: str
    stage: StageConfig
    ref_logps: str | None = None
    replay_data: list[str] = field(default_factory=list)
    lora: Any = None  # a LoraConfig with enabled=True trains adapters only (policy jobs); None = full weights


class Runtime(Protocol):
    rank: int
    world: int
    device: torch.device

    def load_model(self, path: str, task: str = "causal_lm") -> torch.nn.Module: ...
    def engine(self, model: torch.nn.Module, stage: StageConfig, total_steps: int) -> ModelEngine: ...
    def export_state_dict(self, engine: ModelEngine) -> dict[str, torch.Tensor] | None: ...
    def release(self, engine: ModelEngine) -> None: ...
    def gather(self, obj: Any) -> list[Any]: ...
    def barrier(self) -> None: ...
    def reduce_mean(self, metrics: dict[str, float]) -> dict[str, float]: ...


def auto_model_class(task: str) -> type[AutoModelForCausalLM] | type[AutoModelForSequenceClassification]:
    """transformers auto class of a job's model: ``causal_lm`` (policy) or ``reward`` (5-output regression head)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    if task not in ("causal_lm", "reward"):
        raise FlywheelError(f"load_model: task must be causal_lm or reward, got {task!r}")
    return AutoModelForSequenceClassification if task == "reward" else AutoModelForCausalLM


class LocalRuntime:
    """Single process: a plain model and :class:`TorchEngine`."""

    rank, world = 0, 1
    device = torch.device("cpu")

    def load_model(self, path: str, task: str = "causal_lm") -> torch.nn.Module:
        return auto_model_class(task).from_pretrained(path, dtype=torch.float32)

    def engine(self, model: torch.nn.Module, stage: StageConfig, total_steps: int) -> TorchEngine:
        opt = build_optimizer(model, stage.lr, stage.weight_decay)
        return TorchEngine(model, opt, build_scheduler(opt, total_steps, stage), stage.grad_accum, stage.max_grad_norm)

    def export_state_dict(self, engine: ModelEngine) -> dict[str, torch.Tensor] | None:
        return None

    def release(self, engine: ModelEngine) -> None:
        return None

    def gather(self, obj: Any) -> list[Any]:
        return [obj]

    def barrier(self) -> None:
        return None

    def reduce_mean(self, metrics: dict[str, float]) -> dict[str, float]:
        return metrics


def file_digest(path: str) -> str | None:
    """sha256 of the bytes of a local file, or None when there is no such file."""
    if not os.path.isfile(path):
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def job_fingerprint(job: TrainJob, code_replay: float) -> str:
    """Identity of a job's inputs: kind, stage, model weights, data contents and the replay share.

    The precision is not in it: ``train.autocast`` is part of each training stage's fingerprint, and what
    ``auto`` resolved to on the workers is in the export's metrics (``autocast_bf16``).
    """
    models = [reference.model_fingerprint(p) for p in (job.init_model, job.ref_model) if p]
    return fingerprint(
        job.kind,
        asdict(job.stage),
        models,
        [file_digest(p) for p in job.data],
        [file_digest(p) for p in job.replay_data],
        code_replay if job.replay_data else None,
        *([_lora_dict(job.lora)] if _lora_on(job) else []),
    )


def _lora_on(job: TrainJob) -> bool:
    return job.lora is not None and bool(getattr(job.lora, "enabled", False))


def _lora_dict(lora: Any) -> dict[str, Any]:
    d = asdict(cast("DataclassInstance", lora)) if is_dataclass(lora) else dict(lora)
    return {k: list(v) if k == "target_modules" else v for k, v in d.items()}


def load_examples(
    job: TrainJob, tokenizer: PreTrainedTokenizerBase, code_replay: float
) -> tuple[list[tdata.Encoded] | list[tdata.PairExample], int]:
    """Tokenized examples of the job (and rows skipped for having nothing to learn after truncation)."""
    rows = tdata.load_rows(job.data)
    if job.kind == "sft":
        if job.replay_data:
            rows = tdata.mix_sft(rows, tdata.load_rows(job.replay_data), code_replay, job.stage.seed)
        return tdata.sft_examples(tokenizer, rows, job.stage.max_len, job.stage.truncation)
    return tdata.pair_examples(tokenizer, rows, job.stage.max_len, job.stage.truncation), 0


def reference_logps(
    job: TrainJob, examples: list[tdata.PairExample], batch_size: int, pad_id: int, rt: Runtime, autocast: bool = False
) -> torch.Tensor:
    """Stored reference log-probs ``[N, 2]``; computed once (sharded over ranks) when the cache misses."""
    path = job.ref_logps or f"{job.data[0]}.ref_logps.safetensors"
    ref_model = cast(str, job.ref_model)  # run_job refuses DPO/RPO jobs without one
    fp = fingerprint(
        reference.model_fingerprint(ref_model), reference.pairs_fingerprint(examples), *(["bf16"] if autocast else [])
    )
    # rank 0's file decides and its tensor is shared, so ranks on other nodes need no copy of the cache
    cached: torch.Tensor | None = rt.gather(reference.load_ref_logps(path, fp) if rt.rank == 0 else None)[0]
    if cached is not None:
        return cached
    from transformers import AutoModelForCausalLM

    t0 = time.perf_counter()
    if rt.rank == 0:  # print: a Ray worker's stdout reaches the driver
        print(f"{job.name}: reference log-probs of {len(examples)} pairs over {rt.world} worker(s)", flush=True)
    model = AutoModelForCausalLM.from_pretrained(ref_model, dtype=torch.float32).to(rt.device)  # type: ignore[arg-type]
    mine = list(range(rt.rank, len(examples), rt.world))
    vals = reference.compute_ref_logps(model, [examples[i] for i in mine], batch_size, pad_id, autocast)
    del model
    merged = reference.merge_shards(rt.gather((mine, vals)), len(examples))
    if rt.rank == 0:
        reference.save_ref_logps(path, merged, fp)
        print(f"{job.name}: reference log-probs done in {time.perf_counter() - t0:.0f} s", flush=True)
    rt.barrier()
    return merged


def _checkpoint_tag(ckpt_dir: str, fp: str, rt: Runtime) -> str | None:
    """The newest complete checkpoint of this very job in ``ckpt_dir``, as seen by every rank; else ``None``.

    ``job.json`` names the tag and is rewritten (atomically, by rank 0) only after every rank has saved it, so
    a checkpoint torn by a kill mid-save is never loaded (DeepSpeed's own ``latest`` may point at it). A
    directory of another job, or with no complete checkpoint, is deleted.
    """
    tag: str | None = None
    try:
        with open(os.path.join(ckpt_dir, "job.json")) as f:
            rec = json.load(f)
        named = rec.get("tag") if rec.get("fingerprint") == fp else None
        if isinstance(named, str) and os.path.isdir(os.path.join(ckpt_dir, named)):
            tag = named
    except (OSError, json.JSONDecodeError, AttributeError):
        tag = None
    if all(t == tag for t in rt.gather(tag)) and tag is not None:
        return tag
    rt.barrier()
    if rt.rank == 0 and os.path.isdir(ckpt_dir):
        shutil.rmtree(ckpt_dir)
    rt.barrier()
    return None


def run_job(
    job: TrainJob,
    rt: Runtime,
    code_replay: float = 0.0,
    ref_batch_size: int = 8,
    on_step: Callable[[dict[str, float]], None] | None = None,
    autocast: bool = False,
) -> dict[str, Any]:
    """Train one job on runtime ``rt``; every rank calls it. Returns the job's metrics (rank 0's view).

    ``on_step`` receives each optimizer step's metrics, reduced over ranks (every rank calls it);
    ``autocast`` runs the forwards (reference pass included) under bf16 autocast.
    """
    if job.kind not in ("sft", "dpo", "rpo"):  # reward jobs: flywheel.reward.job.run_reward_job
        raise FlywheelError(f"train job {job.name}: kind must be sft, dpo or rpo, got {job.kind!r}")
    if job.kind != "sft" and not job.ref_model:
        raise FlywheelError(f"train job {job.name}: {job.kind} needs ref_model")
    if not job.data:
        raise FlywheelError(f"train job {job.name}: no data files")
    validate_stage(job.stage, f"train job {job.name}")
    fp = job_fingerprint(job, code_replay)
    done = rt.gather(export.read_meta(job.out_dir) if rt.rank == 0 else None)[0]
    if done and done.get("fingerprint") == fp:
        return {**done["metrics"], "skipped": True}

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(job.init_model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    try:
        examples, skipped = load_examples(job, tokenizer, code_replay)
    except FlywheelError as err:  # name the job and its files: row numbers alone do not locate the culprit
        raise FlywheelError(f"train job {job.name} ({', '.join(job.data)}): {err}") from None
    if not examples:
        raise FlywheelError(f"train job {job.name}: no trainable examples in {job.data}")
    ref = (
        reference_logps(job, cast("list[tdata.PairExample]", examples), ref_batch_size, pad_id, rt, autocast)
        if job.kind != "sft"
        else None
    )

    t_load = time.perf_counter()
    model = rt.load_model(job.init_model)
    load_seconds = time.perf_counter() - t_load
    if _lora_on(job):
        model = apply_lora(model, job.lora)
    _, total_steps = plan([tdata.example_length(e) for e in examples], job.stage, rt.world)
    engine = rt.engine(model, job.stage, total_steps)
    start, checkpoint = resume_point(engine, job, fp, rt)
    if rt.rank == 0:
        print(
            f"{job.name}: {len(examples)} examples, {total_steps} optimizer steps"
            + (f", resuming after step {start}" if start else ""),
            flush=True,
        )

    metrics = train_stage(
        engine,
        job.kind,
        examples,
        job.stage,
        pad_id,
        ref_logps=ref,
        rank=rt.rank,
        world=rt.world,
        start_step=start,
        checkpoint=checkpoint,
        reduce_mean=rt.reduce_mean,
        on_step=on_step,
        autocast=autocast,
    )
    metrics.update(name=job.name, skipped_rows=skipped, autocast_bf16=int(autocast), load_seconds=load_seconds)
    publish_export(engine, model, tokenizer, job, fp, metrics, rt)
    return metrics


def resume_point(engine: ModelEngine, job: TrainJob, fp: str, rt: Runtime) -> tuple[int, Callable[[int], None]]:
    """(optimizer steps already done, checkpoint function) for a job with fingerprint ``fp``.

    A checkpoint in ``{out_dir}.ckpt`` is continued only when its ``job.json`` carries the same fingerprint;
    the returned function saves step ``k`` there (all ranks), then rank 0 records the fingerprint and the
    tag (the checkpoint is complete only from then on) and prunes older tags.
    """
    ckpt_dir = export.checkpoint_dir(job.out_dir)
    start = 0
    tag = _checkpoint_tag(ckpt_dir, fp, rt)
    if tag is not None:
        _, client = engine.load_checkpoint(ckpt_dir, tag=tag)
        start = int((client or {}).get("step", 0))

    def checkpoint(step: int) -> None:
        tag = export.step_tag(step)
        engine.save_checkpoint(ckpt_dir, tag=tag, client_state={"step": step})
        rt.barrier()
        if rt.rank == 0:
            export.write_json_atomic(
                os.path.join(ckpt_dir, "job.json"), {"fingerprint": fp, "name": job.name, "tag": tag}
            )
            export.prune_checkpoints(ckpt_dir, keep=tag)
        rt.barrier()

    return start, checkpoint


def publish_export(
    engine: ModelEngine,
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    job: TrainJob,
    fp: str,
    metrics: dict[str, Any],
    rt: Runtime,
) -> None:
    """Gather the weights (ZeRO-3 included), export the HF directory on rank 0, drop the checkpoints."""
    state_dict = rt.export_state_dict(engine)
    if rt.rank == 0:
        module = merged(getattr(engine, "module", model))  # LoRA adapters folded in; a plain model as is
        for p in module.parameters():  # exported weights carry no training flags (frozen layers included)
            p.requires_grad_(True)
        export.export_hf(
            cast("PreTrainedModel", module),
            tokenizer,
            job.out_dir,
            {"fingerprint": fp, "job": job.name, "metrics": metrics},
            state_dict=state_dict,
        )
        shutil.rmtree(export.checkpoint_dir(job.out_dir), ignore_errors=True)
    rt.barrier()
    rt.release(engine)
