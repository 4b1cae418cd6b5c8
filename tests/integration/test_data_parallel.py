"""Data-parallel invariance on real workers: one DPO/RPO batch split over 2 gloo processes under DeepSpeed gives
the loss and the all-reduced gradients that a single worker computes on the whole batch.

Each worker is its own process with its own DeepSpeed engine (ZeRO-0, where every rank holds full gradients
after ``engine.backward``); the step is the training loop's own ``preference_step``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

ROWS = [
    {
        "prompt": [{"role": "user", "content": f"name a colour like {w}"}],
        "chosen": [{"role": "assistant", "content": f"{w}, and also {w} again"}],
        "rejected": [{"role": "assistant", "content": "no" * (i + 1)}],
        "reward_chosen": 2.0 + i,
        "reward_rejected": 0.5 * i,
    }
    for i, w in enumerate(["red", "green", "blue", "cyan"])
]

WORKER = textwrap.dedent(
    """
    import importlib, json, sys
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer
    from flywheel.engines.ray_train import DeepSpeedRuntime
    from flywheel.train.config import StageConfig
    from flywheel.train.data import collate_pairs, pair_examples
    from flywheel.train.loop import preference_step

    model_dir, rows_file, kind, rank, world, out = sys.argv[1:7]
    rank, world = int(rank), int(world)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    importlib.import_module("deepspeed.comm.torch").build_shm_op = lambda: None
    import deepspeed
    deepspeed.init_distributed(dist_backend="gloo")

    rows = [json.loads(x) for x in open(rows_file)]
    tok = AutoTokenizer.from_pretrained(model_dir)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    pairs = pair_examples(tok, rows, 128, "left_prompt")
    ref = -20.0 - torch.arange(2 * len(pairs), dtype=torch.float32).reshape(len(pairs), 2) / 7
    per_rank = len(pairs) // world
    stage = StageConfig(lr=1e-3, batch_size=per_rank, max_grad_norm=0.0, beta=0.1, eta=1.0, sft_weight=0.05)
    rt = DeepSpeedRuntime(0, False, rank, world, torch.device("cpu"))
    engine = rt.engine(rt.load_model(model_dir), stage, total_steps=1)
    batch = collate_pairs(pairs[rank * per_rank : (rank + 1) * per_rank], pad)
    result = preference_step(engine, batch, ref[batch["index"]], stage, kind)
    engine.backward(result.loss)
    loss = rt.reduce_mean({"loss": result.loss.item()})["loss"]
    if rank == 0:
        save_file({n: p.grad.detach().contiguous() for n, p in engine.module.named_parameters()}, out)
        json.dump({"loss": loss}, open(out + ".json", "w"))
    torch.distributed.destroy_process_group()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(tmp_path, model_dir: str, kind: str, world: int) -> tuple[float, dict]:
    from safetensors.torch import load_file

    script, rows = tmp_path / "worker.py", tmp_path / "pairs.jsonl"
    script.write_text(WORKER)
    rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = str(tmp_path / f"{kind}-world{world}.safetensors")
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), model_dir, str(rows), kind, str(r), str(world), out],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": str(world)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(world)
    ]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(x[-3000:] for x in logs)
    return json.load(open(out + ".json"))["loss"], load_file(out)


@pytest.mark.parametrize("kind", ["dpo", "rpo"])
def test_two_workers_give_the_single_worker_loss_and_gradients(tmp_path, tiny_policy_dir, kind):
    import torch

    loss_1, grads_1 = _run(tmp_path, tiny_policy_dir, kind, world=1)
    loss_2, grads_2 = _run(tmp_path, tiny_policy_dir, kind, world=2)
    assert loss_2 == pytest.approx(loss_1, rel=1e-5)
    assert grads_1.keys() == grads_2.keys()
    assert any(g.abs().max() > 0 for g in grads_1.values())  # a step that moves nothing would prove nothing
    for name, g in grads_1.items():
        assert torch.allclose(grads_2[name], g, rtol=1e-4, atol=1e-6), name
