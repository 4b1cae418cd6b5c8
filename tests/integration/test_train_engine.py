"""Ray Train + DeepSpeed on 2 CPU workers: SFT -> DPO -> RPO in one fit, and resume after a hard kill.

Each fit carries about a minute of fixed start-up on a small machine; these are the only tests that pay it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.integration

SFT_ROWS = [
    {
        "messages": [
            {"role": "user", "content": f"count to {n}"},
            {"role": "assistant", "content": " ".join(map(str, range(n)))},
        ]
    }
    for n in range(2, 10)
]
PREF_ROWS = [
    {
        "prompt": [{"role": "user", "content": f"say {w}"}],
        "chosen": [{"role": "assistant", "content": f"{w} {w}"}],
        "rejected": [{"role": "assistant", "content": "no"}],
        "reward_chosen": 3.0 + i,
        "reward_rejected": 1.0,
    }
    for i, w in enumerate(["red", "green", "blue", "cyan", "pink", "gray"])
]


def _write(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


class Published:
    """Picklable publish hook: appends one JSON line per call (runs on rank 0 inside the worker)."""

    def __init__(self, path: str):
        self.path = path

    def __call__(self, job, metrics) -> None:
        with open(self.path, "a") as f:
            row = {"job": job.name, "steps": metrics["steps"], "skipped": metrics.get("skipped", False)}
            f.write(json.dumps(row) + "\n")


def test_sft_dpo_rpo_in_one_fit_with_zero3(tmp_path, tiny_policy_dir, ray_local):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from flywheel.engines.ray_train import TrainJob, run_training
    from flywheel.train.config import StageConfig, TrainConfig

    sft, pref = _write(tmp_path / "sft.jsonl", SFT_ROWS), _write(tmp_path / "pref.jsonl", PREF_ROWS)
    out = lambda name: str(tmp_path / "out" / name)  # noqa: E731
    st_sft = StageConfig(lr=3e-3, batch_size=2, max_steps=4, lr_schedule="constant")
    st_pref = StageConfig(lr=1e-3, batch_size=2, max_steps=3, beta=0.1, sft_weight=1e-3, lr_schedule="constant")
    jobs = [
        TrainJob("sft", "sft", tiny_policy_dir, None, [sft], out("sft"), st_sft),
        TrainJob("dpo", "dpo", out("sft"), out("sft"), [pref], out("dpo"), st_pref, ref_logps=out("dpo.ref")),
        TrainJob("rpo_1", "rpo", out("dpo"), out("dpo"), [pref], out("rpo_1"), st_pref, ref_logps=out("rpo.ref")),
    ]
    cfg = TrainConfig(num_workers=2, zero_stage=3, allocator="jemalloc")
    log = str(tmp_path / "published.jsonl")
    t0 = time.perf_counter()
    ctrl_c = signal.getsignal(signal.SIGINT)
    res = run_training(jobs, cfg, str(tmp_path / "ray"), Published(log))
    print(f"fit of 3 jobs: {time.perf_counter() - t0:.1f} s")
    assert signal.getsignal(signal.SIGINT) is ctrl_c  # Ray Train's abort handler does not outlive the fit
    assert list(res) == ["sft", "dpo", "rpo_1"]
    assert [json.loads(x)["job"] for x in open(log)] == ["sft", "dpo", "rpo_1"]
    hist = res["sft"]["history"]
    assert [r["step"] for r in hist] == [1, 2, 3, 4] and hist[-1]["loss"] < hist[0]["loss"]
    # DPO starts at policy == reference: -log sigma(0) = log 2
    assert res["dpo"]["history"][0]["pref_loss"] == pytest.approx(0.693147, abs=1e-3)
    assert "target_gap_abs" in res["rpo_1"]
    # train.allocator jemalloc: the workers ran on Ray's bundled jemalloc (preloaded through the worker runtime env)
    assert all(res[name]["allocator_jemalloc"] == 1 for name in res)
    base = AutoModelForCausalLM.from_pretrained(tiny_policy_dir)
    for name in ("sft", "dpo", "rpo_1"):
        model = AutoModelForCausalLM.from_pretrained(out(name))
        assert AutoTokenizer.from_pretrained(out(name)).chat_template
        moved = sum((p - q).abs().sum().item() for p, q in zip(base.parameters(), model.parameters(), strict=True))
        assert moved > 0 and all(torch.isfinite(p).all() for p in model.parameters())
        assert not os.path.exists(out(name) + ".ckpt")

    # a second call finds every export in place: no worker group starts, every job is published again
    t0 = time.perf_counter()
    again = run_training(jobs, cfg, str(tmp_path / "ray"), Published(log))
    assert time.perf_counter() - t0 < 20
    assert all(m.get("skipped") for m in again.values()) and again["dpo"]["steps"] == 3
    assert [json.loads(x)["skipped"] for x in open(log)] == [False] * 3 + [True] * 3


def test_lora_under_deepspeed_zero2_exports_a_merged_checkpoint(tmp_path, tiny_policy_dir, ray_local):
    import torch
    from safetensors import safe_open

    from flywheel.engines.ray_train import TrainJob, run_training
    from flywheel.train.config import LoraConfig, StageConfig, TrainConfig

    sft = _write(tmp_path / "sft.jsonl", SFT_ROWS)
    lora = LoraConfig(enabled=True, r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    stage = StageConfig(lr=5e-2, batch_size=2, max_steps=3, lr_schedule="constant")
    job = TrainJob("sft", "sft", tiny_policy_dir, None, [sft], str(tmp_path / "lora"), stage, lora=lora)
    res = run_training([job], TrainConfig(num_workers=2, zero_stage=2, lora=lora), str(tmp_path / "ray"))
    assert res["sft"]["steps"] == 3

    def weights(path):
        with safe_open(os.path.join(path, "model.safetensors"), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)

    base, out = weights(tiny_policy_dir), weights(str(tmp_path / "lora"))
    assert set(out) == set(base)  # adapters merged: the base model's tensor names only
    changed = [k for k in base if not torch.equal(base[k].float(), out[k].float())]
    assert changed and all("q_proj" in k or "v_proj" in k for k in changed), changed


RUNNER = textwrap.dedent(
    """
    import json, sys
    from flywheel.engines.pool import ensure_ray
    from flywheel.engines.ray_train import TrainJob, run_training
    from flywheel.train.config import StageConfig, TrainConfig

    model, data, out, storage = sys.argv[1:5]
    stage = StageConfig(lr=1e-3, batch_size=1, max_steps=int(sys.argv[5]), checkpoint_every=5, lr_schedule="constant")
    ensure_ray("local", 2)
    job = TrainJob("sft", "sft", model, None, [data], out, stage)
    res = run_training([job], TrainConfig(num_workers=2, zero_stage=1), storage)
    print("RESULT " + json.dumps({k: v["resumed_from_step"] for k, v in res.items()}))
    """
)


def _kill_tree(pid: int) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    procs = [root, *root.children(recursive=True)]  # Ray head processes and workers this run started
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)


def test_killed_job_resumes_from_its_last_checkpoint(tmp_path, tiny_policy_dir):
    data = _write(tmp_path / "sft.jsonl", SFT_ROWS)
    out = str(tmp_path / "sft")
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    steps = "60"
    args = [sys.executable, str(script), tiny_policy_dir, data, out, str(tmp_path / "ray"), steps]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    log = open(tmp_path / "killed.log", "w")  # a file, not a pipe: an unread pipe would stall the run
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    record = os.path.join(out + ".ckpt", "job.json")  # names the newest checkpoint every rank has completed

    def completed_tag():
        try:
            return json.load(open(record)).get("tag")
        except (OSError, ValueError):
            return None

    try:
        deadline = time.time() + 400
        while completed_tag() is None and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert completed_tag(), "no checkpoint completed before the run ended"
    finally:
        _kill_tree(proc.pid)  # a hard kill of the driver, Ray and both workers mid-training
        log.close()
    killed_at = int(completed_tag().split("-")[1])
    assert 5 <= killed_at < int(steps) and not os.path.isdir(out)

    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    line = [x for x in rerun.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    resumed = json.loads(line[0][7:])["sft"]
    assert resumed >= killed_at and resumed % 5 == 0
    console = rerun.stdout + rerun.stderr  # the workers' progress lines reach the driver
    assert f"sft: 8 examples, 60 optimizer steps, resuming after step {resumed}" in console, console[-3000:]
    # the local Ray serves the state API, so Ray Train's placement-group cleaner does not warn every second
    assert "State API may be temporarily unavailable" not in console
    meta = json.load(open(os.path.join(out, "flywheel_train.json")))
    assert meta["metrics"]["history"][0]["step"] == resumed + 1 and meta["metrics"]["steps"] == int(steps)


def test_a_killed_worker_restarts_the_fit_from_its_last_checkpoint(tmp_path, tiny_policy_dir, ray_local):
    """The OOM killer's case: one training worker process dies mid-job while the driver lives on."""
    import threading

    import psutil

    from flywheel.engines.ray_train import TrainJob, run_training
    from flywheel.train.config import StageConfig, TrainConfig

    data = _write(tmp_path / "sft.jsonl", SFT_ROWS)
    out = str(tmp_path / "sft")
    stage = StageConfig(lr=1e-3, batch_size=1, max_steps=200, checkpoint_every=5, lr_schedule="constant")
    record = os.path.join(out + ".ckpt", "job.json")  # names the newest checkpoint every rank has completed
    killed: list[int] = []

    def kill_the_worker_after_a_checkpoint() -> None:
        deadline = time.time() + 400
        while not os.path.isfile(record) and time.time() < deadline:
            time.sleep(0.05)
        for p in psutil.process_iter(["cmdline"]):
            if "ray::RayTrainWorker" in " ".join(p.info["cmdline"] or []):
                p.kill()
                killed.append(p.pid)

    killer = threading.Thread(target=kill_the_worker_after_a_checkpoint, daemon=True)
    killer.start()
    cfg = TrainConfig(num_workers=1, cpus_per_worker=2, max_failures=1)
    res = run_training([TrainJob("sft", "sft", tiny_policy_dir, None, [data], out, stage)], cfg, str(tmp_path / "r"))
    killer.join(timeout=10)
    assert killed, "no training worker was found to kill"
    resumed = res["sft"]["resumed_from_step"]
    assert 5 <= resumed < 200 and resumed % 5 == 0, res["sft"]
    meta = json.load(open(os.path.join(out, "flywheel_train.json")))
    assert meta["metrics"]["history"][0]["step"] == resumed + 1 and meta["metrics"]["steps"] == 200
