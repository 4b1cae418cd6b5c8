"""The in-process training loop: schedules, accumulation, SFT/DPO/RPO learning, resume, reference cache."""

from __future__ import annotations

import json
import math

import pytest
import torch

from flywheel.train import data as tdata
from flywheel.train import engine, export, loop, reference
from flywheel.train.config import StageConfig
from flywheel.train.job import LocalRuntime, TrainJob, run_job

SFT_ROWS = [
    {
        "messages": [
            {"role": "user", "content": f"count to {n}"},
            {"role": "assistant", "content": " ".join(map(str, range(n)))},
        ]
    }
    for n in range(2, 8)
]
PREF_ROWS = [
    {
        "prompt": [{"role": "user", "content": f"say {w}"}],
        "chosen": [{"role": "assistant", "content": f"{w} {w}"}],
        "rejected": [{"role": "assistant", "content": "no"}],
        "reward_chosen": 3.0 + i,
        "reward_rejected": 1.0,
    }
    for i, w in enumerate(["red", "green", "blue", "cyan"])
]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def tok(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def _model(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


def test_lr_schedules_by_hand():
    f = engine.lr_lambda(total_steps=10, warmup_steps=2, schedule="cosine")
    # warmup: (step + 1) / 2 ; then 0.5 (1 + cos(pi * (step - 2) / 8))
    assert [f(0), f(1), f(2)] == pytest.approx([0.5, 1.0, 1.0])
    assert f(6) == pytest.approx(0.5)  # cos(pi / 2) = 0
    assert f(10) == pytest.approx(0.0)
    g = engine.lr_lambda(10, 0, "linear")
    assert [g(0), g(5), g(10)] == pytest.approx([1.0, 0.5, 0.0])
    assert engine.lr_lambda(10, 0, "constant")(7) == 1.0


def test_plan_counts_steps():
    st = StageConfig(batch_size=2, grad_accum=2, epochs=1.0)
    # 10 examples -> 5 batches -> 3 per rank on 2 ranks -> ceil(3 / 2) = 2 optimizer steps
    assert loop.plan([1] * 10, st, world=2) == (3, 2)
    assert loop.plan([1] * 10, StageConfig(batch_size=2, epochs=2.0), world=1) == (5, 10)
    assert loop.plan([1] * 10, StageConfig(batch_size=2, max_steps=7), world=1) == (5, 7)


def test_grad_accum_matches_the_big_batch(tok, tiny_policy_dir):
    ex, _ = tdata.sft_examples(tok, SFT_ROWS[:2], 64, "left_prompt")
    st = StageConfig(lr=1e-2, lr_schedule="constant")
    engines = []
    for ga, batches in ((1, [ex]), (2, [ex[:1], ex[1:]])):
        model = _model(tiny_policy_dir)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)  # linear in the gradient: Adam's sign-like step hides sums
        eng = engine.TorchEngine(model, opt, None, grad_accum=ga, max_grad_norm=0.0)
        for b in batches:
            res = loop.sft_step(eng, tdata.collate_sft(b, tok.pad_token_id), st)
            eng.backward(res.loss)
            eng.step()
        engines.append(eng)
    for p, q in zip(engines[0].module.parameters(), engines[1].module.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)


def _engine(path, stage, total):
    return LocalRuntime().engine(_model(path), stage, total)


def test_label_logits_skip_the_prompt_and_change_nothing(tok, tiny_policy_dir):
    from flywheel.train import losses

    pairs = tdata.pair_examples(tok, PREF_ROWS, 128, "left_prompt")
    batch = tdata.collate_pairs(pairs, tok.pad_token_id)
    model = _model(tiny_policy_dir)
    with torch.no_grad():
        full = losses.sequence_logps(model(input_ids=batch["input_ids"]).logits, batch["labels"])
        logits, labels = loop.label_logits(model, batch)
    # the shared system + user prompt is ~25 tokens: only the tail from the earliest answer on is computed
    assert logits.shape[1] < batch["input_ids"].shape[1] - 20
    assert torch.allclose(losses.sequence_logps(logits, labels), full, atol=1e-4)


def test_sft_stage_learns(tok, tiny_policy_dir):
    ex, _ = tdata.sft_examples(tok, SFT_ROWS, 128, "left_prompt")
    st = StageConfig(lr=3e-3, batch_size=3, max_steps=12, lr_schedule="constant")
    m = loop.train_stage(_engine(tiny_policy_dir, st, 12), "sft", ex, st, tok.pad_token_id)
    losses = [r["loss"] for r in m["history"]]
    assert len(losses) == 12 and m["steps"] == 12
    assert losses[-1] < 0.7 * losses[0]
    assert m["tokens_per_s"] > 0


@pytest.mark.parametrize("kind", ["dpo", "rpo"])
def test_preference_stage_learns_from_stored_reference(tok, tiny_policy_dir, kind):
    pairs = tdata.pair_examples(tok, PREF_ROWS, 128, "left_prompt")
    ref = reference.compute_ref_logps(_model(tiny_policy_dir), pairs, 3, tok.pad_token_id)
    st = StageConfig(lr=2e-3, batch_size=2, max_steps=10, beta=0.1, eta=0.5, sft_weight=1e-3, lr_schedule="constant")
    m = loop.train_stage(_engine(tiny_policy_dir, st, 10), kind, pairs, st, tok.pad_token_id, ref_logps=ref)
    first, last = m["history"][0], m["history"][-1]
    # policy == reference at step 1: margin 0, DPO loss -log sigma(0) = log 2
    assert first["reward_margin"] == pytest.approx(0.0, abs=1e-4)
    if kind == "dpo":
        assert first["pref_loss"] == pytest.approx(math.log(2), abs=1e-4)
        assert last["reward_accuracy"] == 1.0 and last["reward_margin"] > 0.1
    else:
        # targets eta * (r_c - r_l) are 1.0 .. 2.5; the implicit gap starts at 0 and is pulled towards them
        assert first["target_gap_abs"] == pytest.approx(first["target_gap"], abs=1e-4)
        assert last["target_gap_abs"] < 0.5 * first["target_gap_abs"]
    assert last["pref_loss"] < first["pref_loss"]


def test_reference_cache_round_trip(tmp_path):
    path = str(tmp_path / "ref.safetensors")
    vals = torch.tensor([[-1.0, -2.0], [-3.0, -4.0]])
    reference.save_ref_logps(path, vals, "abc")
    assert torch.equal(reference.load_ref_logps(path, "abc"), vals)
    assert reference.load_ref_logps(path, "other") is None
    assert reference.load_ref_logps(str(tmp_path / "missing"), "abc") is None
    parts = [([0, 2], torch.tensor([[1.0, 1.0], [3.0, 3.0]])), ([1], torch.tensor([[2.0, 2.0]]))]
    merged = reference.merge_shards(parts, 3)
    assert merged[:, 0].tolist() == [1.0, 2.0, 3.0]


def _params(path):
    return [p.detach().clone() for p in _model(path).parameters()]


def test_run_job_resumes_from_its_checkpoint_and_skips_when_done(tmp_path, tiny_policy_dir, monkeypatch):
    sft = _write(tmp_path / "sft.jsonl", SFT_ROWS)
    st = StageConfig(lr=3e-3, batch_size=2, max_steps=4, checkpoint_every=2, lr_schedule="cosine", warmup_ratio=0.25)
    rt = LocalRuntime()
    whole = run_job(TrainJob("a", "sft", tiny_policy_dir, None, [sft], str(tmp_path / "a"), st), rt)
    assert whole["resumed_from_step"] == 0 and len(whole["history"]) == 4

    # "crash" between training and export: the step-2 checkpoint stays behind
    job = TrainJob("b", "sft", tiny_policy_dir, None, [sft], str(tmp_path / "b"), st)

    def crash(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "export_hf", crash)
    with pytest.raises(KeyboardInterrupt):
        run_job(job, rt)
    monkeypatch.undo()
    assert (tmp_path / "b.ckpt" / "latest").read_text() == "step-00000002"
    assert json.loads((tmp_path / "b.ckpt" / "job.json").read_text())["tag"] == "step-00000002"
    # a later save torn by a kill: the engine's ``latest`` names it, job.json (written last) does not
    (tmp_path / "b.ckpt" / "step-00000003").mkdir()
    (tmp_path / "b.ckpt" / "step-00000003" / "state.pt.tmp").write_bytes(b"torn")
    (tmp_path / "b.ckpt" / "latest").write_text("step-00000003")
    resumed = run_job(job, rt)
    assert resumed["resumed_from_step"] == 2 and [r["step"] for r in resumed["history"]] == [3, 4]
    assert resumed["history"][-1]["loss"] == pytest.approx(whole["history"][-1]["loss"], rel=1e-5)
    for p, q in zip(_params(str(tmp_path / "a")), _params(str(tmp_path / "b")), strict=True):
        assert torch.allclose(p, q, atol=1e-6)
    assert not (tmp_path / "b.ckpt").exists()
    again = run_job(job, rt)
    assert again["skipped"] is True and again["steps"] == 4


def test_run_job_dpo_computes_reference_once_and_exports(tmp_path, tiny_policy_dir, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    pref = _write(tmp_path / "pref.jsonl", PREF_ROWS)
    st = StageConfig(lr=1e-3, batch_size=2, max_steps=2, beta=0.1, sft_weight=1e-3)
    job = TrainJob("dpo", "dpo", tiny_policy_dir, tiny_policy_dir, [pref], str(tmp_path / "dpo"), st)
    m = run_job(job, LocalRuntime())
    assert (tmp_path / "pref.jsonl.ref_logps.safetensors").is_file()
    assert m["history"][0]["pref_loss"] == pytest.approx(math.log(2), abs=1e-4)

    def boom(*a, **k):
        raise AssertionError("reference log-probs recomputed")

    monkeypatch.setattr(reference, "compute_ref_logps", boom)
    job2 = TrainJob("dpo2", "dpo", tiny_policy_dir, tiny_policy_dir, [pref], str(tmp_path / "dpo2"), st)
    assert run_job(job2, LocalRuntime())["steps"] == 2
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "dpo"))
    assert model.config.num_hidden_layers == 2
    assert AutoTokenizer.from_pretrained(str(tmp_path / "dpo")).chat_template


def test_bf16_autocast_trains_from_a_reference_computed_alike(tmp_path, tiny_policy_dir):
    """Under autocast the reference pass runs like the training forward: DPO starts at log 2 and learns."""
    pref = _write(tmp_path / "pref.jsonl", PREF_ROWS)
    st = StageConfig(lr=1e-2, batch_size=2, max_steps=4, beta=0.1, sft_weight=0.0, lr_schedule="constant")
    job = TrainJob("dpo", "dpo", tiny_policy_dir, tiny_policy_dir, [pref], str(tmp_path / "dpo"), st)
    m = run_job(job, LocalRuntime(), autocast=True)
    first, last = m["history"][0], m["history"][-1]
    assert first["pref_loss"] == pytest.approx(math.log(2), abs=2e-2)
    assert last["pref_loss"] < first["pref_loss"] and m["autocast_bf16"] == 1
    fp32 = run_job(
        TrainJob("f", "dpo", tiny_policy_dir, tiny_policy_dir, [pref], str(tmp_path / "f"), st), LocalRuntime()
    )
    assert fp32["autocast_bf16"] == 0 and fp32["history"][0]["pref_loss"] == pytest.approx(math.log(2), abs=1e-4)
