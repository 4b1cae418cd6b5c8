"""A reward-model training job: HelpSteer2-schema JSONL -> regression fit -> Hugging Face export.

It runs on the same :class:`flywheel.train.job.Runtime` as the policy jobs (in-process, or a Ray Train
worker with DeepSpeed), with the same resume rules: an export with the same fingerprint is skipped, a
checkpoint in ``{out_dir}.ckpt`` with the same fingerprint is continued. The export is a
``*ForSequenceClassification`` directory with a 5-output regression head, which vLLM's pooling runner and
transformers both load.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from flywheel.console import progress_line
from flywheel.errors import FlywheelError
from flywheel.reward.data import reward_examples
from flywheel.reward.loop import freeze_lower_layers, train_reward
from flywheel.store import fingerprint
from flywheel.train import data as tdata
from flywheel.train import export
from flywheel.train.config import validate_stage
from flywheel.train.job import Runtime, TrainJob, file_digest, publish_export, resume_point
from flywheel.train.loop import plan
from flywheel.train.reference import model_fingerprint

REWARD_KIND = "reward"


@dataclass
class RewardJob(TrainJob):
    """A :class:`TrainJob` of kind ``"reward"``; ``init_model`` is a sequence-classification directory.

    Attributes:
        trainable_layers: top decoder layers to train (plus final norm and head); -1 trains all.
    """

    trainable_layers: int = -1


def reward_fingerprint(job: RewardJob) -> str:
    """Identity of a reward job's inputs: stage, initial weights, data contents, trainable layers."""
    return fingerprint(
        REWARD_KIND,
        asdict(job.stage),
        model_fingerprint(job.init_model),
        [file_digest(p) for p in job.data],
        job.trainable_layers,
    )


def _load(rt: Runtime, path: str) -> torch.nn.Module:
    """The sequence-classification model through the runtime (so ZeRO-3 partitions it at load)."""
    if "task" in inspect.signature(rt.load_model).parameters:
        return rt.load_model(path, task="reward")
    # a runtime whose load_model knows causal LMs only
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)


def run_reward_job(
    job: RewardJob, rt: Runtime, on_step: Callable[[dict], None] | None = None, autocast: bool = False
) -> dict:
    """Train one reward job on runtime ``rt``; every rank calls it. Returns rank 0's metrics.

    ``autocast`` runs the forwards under bf16 autocast (``train.autocast``, resolved on the worker).
    """
    if not job.data:
        raise FlywheelError(f"reward job {job.name}: no data files")
    validate_stage(job.stage, f"reward job {job.name}")
    fp = reward_fingerprint(job)
    done = export.read_meta(job.out_dir)
    if all(rt.gather(bool(done) and done.get("fingerprint") == fp)):  # type: ignore[union-attr]
        return {**done["metrics"], "skipped": True}  # type: ignore[index]

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(job.init_model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    examples, skipped = reward_examples(tokenizer, tdata.load_rows(job.data), job.stage.max_len, pad_id)
    if not examples:
        raise FlywheelError(f"reward job {job.name}: no labelled rows in {job.data}")
    model = _load(rt, job.init_model)
    if getattr(model.config, "num_labels", None) != 5:
        raise FlywheelError(f"reward job {job.name}: {job.init_model} is not a 5-output reward model")
    trainable = freeze_lower_layers(model, job.trainable_layers)
    _, total_steps = plan([len(e.input_ids) for e in examples], job.stage, rt.world)
    engine = rt.engine(model, job.stage, total_steps)
    start, checkpoint = resume_point(engine, job, fp, rt)

    def progress(row: dict) -> None:
        if on_step is not None:
            on_step(row)
        if rt.rank == 0 and (row["step"] in (1, total_steps) or row["step"] % 10 == 0):
            # print, not logging: a Ray worker's stdout reaches the driver, its loggers have no handler;
            # the driver's console turns these lines into its progress display (flywheel.console)
            print(progress_line(job.name, row["step"], total_steps, row["tokens_per_s"], row["loss"]), flush=True)

    metrics = train_reward(
        engine,
        examples,
        job.stage,
        pad_id,
        rank=rt.rank,
        world=rt.world,
        start_step=start,
        checkpoint=checkpoint,
        reduce_mean=rt.reduce_mean,
        on_step=progress,
        autocast=autocast,
    )
    metrics.update(name=job.name, skipped_rows=skipped, trainable_params=trainable, autocast_bf16=int(autocast))
    publish_export(engine, model, tokenizer, job, fp, metrics, rt)
    return metrics
