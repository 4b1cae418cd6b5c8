"""Ray Train + DeepSpeed adapter: run a list of training jobs inside one ``TorchTrainer.fit``.

A Ray Train + DeepSpeed start costs about a minute on a small machine, so a round's stages (code SFT ->
general SFT -> DPO -> RPO iterations) run back to back in the same worker group. Each worker runs the
ordinary job code of :mod:`flywheel.train.job` with a :class:`DeepSpeedRuntime`: DeepSpeed wraps the process
group Ray Train created, ZeRO 0-3 and bf16 come from :class:`TrainConfig`, and a ZeRO-3 export gathers the
16-bit weights on every rank before rank 0 writes the Hugging Face directory.

Resume: jobs already exported with the same inputs are skipped; a job killed mid-way restarts from its
last DeepSpeed checkpoint in ``{out_dir}.ckpt`` (see ``StageConfig.checkpoint_every``).
"""

from __future__ import annotations

import functools
import gc
import importlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, is_dataclass, replace
from typing import Any

import torch

from flywheel import costs
from flywheel.console import progress_line
from flywheel.engines.lost_workers import lost_worker_reason
from flywheel.engines.pool import ensure_ray
from flywheel.errors import FlywheelError
from flywheel.hardware import allocator_env, allocator_in_use, use_autocast
from flywheel.reward.job import REWARD_KIND, reward_fingerprint, run_reward_job
from flywheel.train import export
from flywheel.train.config import StageConfig, TrainConfig, validate_train
from flywheel.train.engine import build_optimizer, build_scheduler
from flywheel.train.job import Runtime, TrainJob, auto_model_class, job_fingerprint, run_job

log = logging.getLogger("flywheel")

__all__ = ["TrainJob", "run_training", "deepspeed_config", "DeepSpeedRuntime", "init_deepspeed"]


def deepspeed_config(stage: StageConfig, zero_stage: int, bf16: bool, world: int) -> dict:
    """DeepSpeed config for one stage: micro-batch = ``stage.batch_size`` per worker, ZeRO and bf16 from config.

    The optimizer and scheduler are client objects (torch AdamW, a LambdaLR), so the config names neither;
    ``zero_allow_untested_optimizer`` admits torch's AdamW under ZeRO.
    """
    cfg = {
        "train_micro_batch_size_per_gpu": stage.batch_size,
        "gradient_accumulation_steps": stage.grad_accum,
        "train_batch_size": stage.batch_size * stage.grad_accum * world,
        "zero_optimization": {"stage": zero_stage, "stage3_gather_16bit_weights_on_model_save": True},
        "bf16": {"enabled": bf16},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 1 << 30,
        "wall_clock_breakdown": False,
    }
    if stage.max_grad_norm > 0:
        cfg["gradient_clipping"] = stage.max_grad_norm
    return cfg


class DeepSpeedRuntime:
    """The :class:`flywheel.train.job.Runtime` of a Ray Train worker: DeepSpeed engines, torch collectives."""

    def __init__(self, zero_stage: int, bf16: bool, rank: int, world: int, device: torch.device):
        self.zero_stage, self.bf16, self.rank, self.world = zero_stage, bf16, rank, world
        self.device = device
        self._hf_ds_config: Any = None

    def load_model(self, path: str, task: str = "causal_lm") -> torch.nn.Module:
        from transformers.integrations.deepspeed import HfDeepSpeedConfig

        if self.zero_stage == 3:
            # while this object lives, from_pretrained builds the model under deepspeed.zero.Init and loads
            # each rank's partition only, so no rank ever holds the full model
            stub = deepspeed_config(StageConfig(), 3, self.bf16, self.world)
            self._hf_ds_config = HfDeepSpeedConfig(stub)
        return auto_model_class(task).from_pretrained(path, dtype=torch.float32)

    def engine(self, model: torch.nn.Module, stage: StageConfig, total_steps: int):
        import deepspeed

        optimizer = build_optimizer(model, stage.lr, stage.weight_decay)
        engine, *_ = deepspeed.initialize(
            model=model,
            optimizer=optimizer,
            lr_scheduler=lambda opt: build_scheduler(opt, total_steps, stage),
            config=deepspeed_config(stage, self.zero_stage, self.bf16, self.world),
            dist_init_required=False,
        )
        return engine

    def export_state_dict(self, engine) -> dict | None:
        if self.zero_stage == 3:
            return engine._zero3_consolidated_16bit_state_dict()  # collective: every rank calls it
        return None

    def release(self, engine) -> None:
        engine.destroy()
        self._hf_ds_config = None  # later reference models must load unpartitioned
        gc.collect()

    def gather(self, obj) -> list:
        out: list = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        torch.distributed.barrier()

    def reduce_mean(self, metrics: dict[str, float]) -> dict[str, float]:
        keys = sorted(metrics)
        t = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return {k: v / self.world for k, v in zip(keys, t.tolist(), strict=True)}


class _StepGauges:
    """Per-step training metrics as Ray metrics (``ray_flywheel_train_*{stage}`` in Prometheus/Grafana) and a
    progress line every 10 steps on the driver's console."""

    def __init__(self) -> None:
        from ray.util.metrics import Gauge

        tags = ("stage",)
        self.gauges = {
            "loss": Gauge("flywheel_train_loss", "loss of the last optimizer step", tag_keys=tags),
            "tokens_per_s": Gauge("flywheel_train_tokens_per_s", "tokens/s over all workers", tag_keys=tags),
            "lr": Gauge("flywheel_train_lr", "learning rate of the last step", tag_keys=tags),
            "step": Gauge("flywheel_train_step", "optimizer steps done", tag_keys=tags),
        }

    def update(self, stage: str, row: dict) -> None:
        for key, gauge in self.gauges.items():
            if isinstance(row.get(key), (int, float)):
                gauge.set(float(row[key]), tags={"stage": stage})
        step, total = int(row.get("step", 0)), int(row.get("total", 0))
        if stage != "reward" and (step in (1, total) or step % 10 == 0):  # reward jobs print their own lines
            # print, not logging: a Ray worker's stdout reaches the driver, its loggers have no handler;
            # the driver's console turns these lines into its progress display (flywheel.console)
            loss = row.get("loss", float("nan"))
            print(progress_line(stage, step, total, float(row.get("tokens_per_s", 0.0)), float(loss)), flush=True)


# The only non-tensor classes DeepSpeed's checkpoints (ZeRO 0-3) hold: plain data, safe to rebuild.
DEEPSPEED_CHECKPOINT_CLASSES = (
    "deepspeed.runtime.fp16.loss_scaler.LossScaler",
    "deepspeed.runtime.zero.config.ZeroStageEnum",
    "deepspeed.utils.tensor_fragment.fragment_address",
)


def weights_only_loading() -> None:
    """Every ``torch.load`` in this process loads weights only -- DeepSpeed's resume passes
    ``weights_only=False``, which would run whatever code a run root's writer pickled into a checkpoint. The
    data classes DeepSpeed stores there are allowed by name; anything else in a checkpoint fails to load."""
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    allowed = []
    for name in DEEPSPEED_CHECKPOINT_CLASSES:
        module, _, attr = name.rpartition(".")
        allowed.append(getattr(importlib.import_module(module), attr))
    torch.serialization.add_safe_globals(allowed)


def init_deepspeed(backend: str) -> None:
    """DeepSpeed's communication on top of the process group already made (by Ray Train, or a caller), with
    checkpoints loaded weights-only (:func:`weights_only_loading`).

    The shared-memory collective op is a g++ build of ~100 s that gloo does not need, so it is skipped; the
    module path must be resolved with import_module ("deepspeed.comm.torch" as an attribute chain is torch).
    """
    importlib.import_module("deepspeed.comm.torch").build_shm_op = lambda: None  # type: ignore[attr-defined]
    import deepspeed

    weights_only_loading()
    deepspeed.init_distributed(dist_backend=backend)


def _worker(config: dict) -> dict[str, dict]:
    """Ray Train worker body: every job in order; rank 0 publishes each and returns all metrics."""
    import ray.train

    cfg: TrainConfig = config["cfg"]
    threads = max(1, int(cfg.cpus_per_worker))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    init_deepspeed(cfg.backend)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = torch.device(f"cuda:{ctx.get_local_rank()}") if cfg.use_gpu else torch.device("cpu")
    rt = DeepSpeedRuntime(cfg.zero_stage, cfg.bf16, rank, world, device)
    results: dict[str, dict] = {}
    gauges = _StepGauges() if rank == 0 else None
    for job in config["jobs"]:
        t0 = time.perf_counter()
        hook = functools.partial(gauges.update, job.name) if gauges else None
        metrics = _run(job, rt, cfg, hook)
        metrics["wall_seconds"] = time.perf_counter() - t0
        metrics["allocator_jemalloc"] = int(allocator_in_use() == "jemalloc")
        if rank == 0 and config["publish"] is not None:
            config["publish"](job, metrics)
        rt.barrier()
        results[job.name] = metrics
        ray.train.report({"job": job.name, "loss": float(metrics.get("loss", float("nan")))})
    return results


# The one place that knows a reward job trains differently from the policy jobs.
def _fingerprint(job: TrainJob, code_replay: float) -> str:
    return reward_fingerprint(job) if job.kind == REWARD_KIND else job_fingerprint(job, code_replay)  # type: ignore[arg-type]


def _run(job: TrainJob, rt: Runtime, cfg: TrainConfig, on_step: Callable[[dict], None] | None) -> dict:
    autocast = use_autocast(cfg.autocast, on_gpu=rt.device.type == "cuda", bf16_weights=cfg.bf16)  # this worker's CPU
    if job.kind == REWARD_KIND:
        return run_reward_job(job, rt, on_step, autocast)  # type: ignore[arg-type]
    return run_job(job, rt, cfg.code_replay, cfg.ref_batch_size, on_step=on_step, autocast=autocast)


def _as_train_config(cfg) -> TrainConfig:
    if isinstance(cfg, TrainConfig):
        return cfg
    from omegaconf import OmegaConf

    obj = OmegaConf.to_object(cfg) if OmegaConf.is_config(cfg) else cfg
    if not isinstance(obj, TrainConfig):
        raise FlywheelError(f"run_training: cfg must be a TrainConfig, got {type(obj).__name__}")
    return obj


def _flywheel_error(err: BaseException) -> FlywheelError | None:
    """The first FlywheelError behind a Ray Train failure (worker exceptions arrive wrapped)."""
    seen = [err, *getattr(err, "worker_failures", {}).values()]
    while seen:
        e = seen.pop()
        if isinstance(e, FlywheelError):
            return e
        seen.extend(x for x in (e.__cause__, getattr(e, "cause", None)) if isinstance(x, BaseException))
    return None


def run_training(
    jobs: list[TrainJob],
    cfg: TrainConfig,
    storage_path: str,
    publish: Callable[[TrainJob, dict], None] | None = None,
) -> dict[str, dict]:
    """Run all ``jobs`` in order inside one ``TorchTrainer.fit`` (one start-up for the whole list).

    Args:
        jobs: later jobs may start from / refer to earlier jobs' ``out_dir``.
        cfg: workers, ZeRO stage, bf16, code replay share (the per-stage configs travel in each job).
        storage_path: Ray Train's run storage (local dir or URI).
        publish: picklable; called on rank 0 as ``publish(job, metrics)`` after each job's export, and for
            a job skipped as already exported (so it must be idempotent). When every job is already exported
            no worker group starts and ``publish`` runs in the caller.

    Returns:
        job name -> metrics (with per-step ``history``).

    Raises:
        FlywheelError: bad jobs or config, a worker's FlywheelError, or workers lost more than
            ``cfg.max_failures`` times (one line each).

    A training worker process that dies (killed by the OOM killer, a lost node) or a worker group that cannot
    start restarts the fit, up to ``cfg.max_failures`` times: finished jobs are skipped, the running one
    resumes from its last checkpoint. An exception raised by the training code is not retried.
    """
    cfg = _as_train_config(cfg)
    validate_train(cfg)
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise FlywheelError(f"run_training: job names must be unique: {names}")
    jobs = [replace(j, stage=_as_stage(j.stage)) for j in jobs]
    finished = _finished(jobs, cfg.code_replay)
    if finished is not None:  # a rerun after everything was exported: no worker group, no minute of start-up
        for job in jobs:
            if publish is not None:
                publish(job, finished[job.name])
        return finished
    try:
        worker_env = allocator_env(cfg.allocator)
    except ValueError as err:
        raise FlywheelError(f"train.allocator: {err}") from None
    ensure_ray("local")  # no-op when the caller already started or joined Ray
    t0 = time.perf_counter()
    restarts = 0
    while True:
        try:
            result = _fit(jobs, cfg, storage_path, publish, worker_env)
            break
        except Exception as err:
            found = _flywheel_error(err)
            if found is not None:
                raise FlywheelError(str(found)) from None
            lost = lost_worker_reason(err)
            if lost is None:
                raise
            if restarts >= cfg.max_failures:
                raise FlywheelError(
                    f"training: {lost}; gave up after {restarts} restart(s) (train.max_failures = "
                    f"{cfg.max_failures}); re-run the same command to resume from the last checkpoint"
                ) from None
            restarts += 1
            log.warning(
                "training: %s; restart %d of %d, each job resumes from its last checkpoint",
                lost,
                restarts,
                cfg.max_failures,
            )
            _wait_for_cpus(cfg.num_workers * cfg.cpus_per_worker)
    metrics: dict[str, dict] = result.return_value or {}
    in_jobs = sum(float(m.get("wall_seconds", 0.0)) for m in metrics.values())
    costs.add("train_start", time.perf_counter() - t0 - in_jobs)
    costs.add("model_load", sum(float(m.get("load_seconds", 0.0)) for m in metrics.values()))
    return metrics


def _fit(
    jobs: list[TrainJob],
    cfg: TrainConfig,
    storage_path: str,
    publish: Callable[[TrainJob, dict], None] | None,
    worker_env: dict[str, str],
) -> Any:
    """One ``TorchTrainer.fit`` over ``jobs`` (Ray Train itself retries nothing: :func:`run_training` does)."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    names = "-".join(j.name for j in jobs)[:60]
    resources = {"CPU": cfg.cpus_per_worker}
    trainer = TorchTrainer(
        _worker,  # type: ignore[arg-type]  # returns the metrics (Ray Train v2 keeps return values)
        train_loop_config={"jobs": jobs, "cfg": cfg, "publish": publish},
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu, resources_per_worker=resources),
        torch_config=TorchConfig(backend=cfg.backend),
        # Ray Train v2's RunConfig (worker_runtime_env); the type stubs still describe v1's
        run_config=RunConfig(  # type: ignore[call-arg]
            storage_path=os.path.abspath(storage_path) if "://" not in storage_path else storage_path,
            name=f"train-{names}-{time.strftime('%Y%m%d-%H%M%S')}",
            failure_config=FailureConfig(max_failures=0),
            worker_runtime_env={"env_vars": worker_env} if worker_env else None,
        ),
    )
    # Ray Train's fit() installs its own Ctrl-C handler (abort the training run) and leaves it installed after
    # it returns, where it swallows every later Ctrl-C: the caller's handler is put back as soon as fit ends
    on_main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGINT) if on_main else None
    try:
        return trainer.fit()
    finally:
        if on_main and before is not None:
            signal.signal(signal.SIGINT, before)


def _wait_for_cpus(cpus: float, timeout: float = 120.0) -> None:
    """Wait (bounded) until Ray has ``cpus`` free again: a killed worker's CPUs return a little after it dies."""
    import ray

    deadline = time.monotonic() + timeout
    while ray.available_resources().get("CPU", 0.0) < cpus and time.monotonic() < deadline:
        time.sleep(1.0)


def _finished(jobs: list[TrainJob], code_replay: float) -> dict[str, dict] | None:
    """Metrics of every job when all are exported with their current fingerprints, else ``None``."""
    out = {}
    for job in jobs:
        meta = export.read_meta(job.out_dir)
        expected = _fingerprint(job, code_replay)
        if not meta or meta.get("fingerprint") != expected:
            return None
        out[job.name] = {**meta["metrics"], "skipped": True}
    return out


def _as_stage(stage) -> StageConfig:
    if isinstance(stage, StageConfig):
        return stage
    if is_dataclass(stage):
        return StageConfig(**asdict(stage))  # type: ignore[arg-type]
    from omegaconf import OmegaConf

    return OmegaConf.to_object(stage) if OmegaConf.is_config(stage) else StageConfig(**dict(stage))  # type: ignore[return-value]
