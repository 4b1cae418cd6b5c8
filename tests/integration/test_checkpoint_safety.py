"""DeepSpeed checkpoints resume weights-only: ZeRO 0/2/3 checkpoints load, and a checkpoint whose pickle would
run code is refused without running it (real DeepSpeed on gloo, a tiny model, one process each)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent(
    """
    import os, sys, torch
    from flywheel.engines.ray_train import DeepSpeedRuntime, init_deepspeed
    from flywheel.models import TinyModelConfig, build_tiny_causal_lm, smollm2_tokenizer
    from flywheel.train.config import StageConfig

    zero, tmp, plant = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "plant"
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(29400 + zero), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    torch.distributed.init_process_group("gloo", rank=0, world_size=1)
    init_deepspeed("gloo")  # what every Ray Train worker runs first
    tok = smollm2_tokenizer(os.path.join(tmp, "cache"))
    model_dir = build_tiny_causal_lm(os.path.join(tmp, "m"), tok, TinyModelConfig(arch="llama"), seed=0)
    rt = DeepSpeedRuntime(zero, False, 0, 1, torch.device("cpu"))
    stage = StageConfig(lr=1e-4, batch_size=2, max_steps=4)
    engine = rt.engine(rt.load_model(model_dir), stage, 4)
    x = torch.randint(0, 100, (2, 8))
    engine.backward(engine(input_ids=x, labels=x).loss)
    engine.step()
    ckpt = os.path.join(tmp, "ckpt")
    engine.save_checkpoint(ckpt, tag="step-1", client_state={"step": 1})
    rt.release(engine)
    if plant:  # a run root's writer swaps in a pickle that runs a command when unpickled
        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {tmp}/ran",))
        states = [f for f in os.listdir(os.path.join(ckpt, "step-1")) if f.endswith("model_states.pt")]
        torch.save({"module": Evil()}, os.path.join(ckpt, "step-1", states[0]))
    engine = rt.engine(rt.load_model(model_dir), stage, 4)
    try:
        path, client = engine.load_checkpoint(ckpt, tag="step-1")
    except Exception as err:
        print("REFUSED", type(err).__name__)
    else:
        print("LOADED", client["step"])
    """
)


def _run(tmp_path, zero: int, plant: bool) -> str:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(zero), str(tmp_path), "plant" if plant else "clean"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.parametrize("zero", [0, 2, 3])
def test_deepspeed_checkpoints_resume_weights_only(tmp_path, zero):
    assert "LOADED 1" in _run(tmp_path, zero, plant=False)


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    assert "REFUSED" in _run(tmp_path, 2, plant=True)
    assert not (tmp_path / "ran").exists()
