"""Two tiny rounds through the real stack: Prefect + Ray + vLLM + DeepSpeed + MLflow, killed and resumed.

One run (shared by the tests below, it takes minutes): ``flywheel iterate --rounds 2`` is started and stopped
with Ctrl-C (SIGINT) once round 2 has begun, started again and SIGKILLed while round 2 trains, then started again
with the same command. The run trains its reward model first (the
run-level ``reward`` stage), and each round aligns a student of another architecture than the generator
(``models.student: tiny``: a 3-layer Llama; the generator is a 2-layer Nemotron-style model). Promotion is forced (``eval.always_promote=true``)
so round 2 must generate with round 1's candidate.
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cmd(run_root: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "flywheel.cli",
        "iterate",
        "--rounds",
        "2",
        "--config",
        os.path.join(ROOT, "configs", "tiny.yaml"),
        f"run.root={run_root}",
        "eval.always_promote=true",
        "models.reward=trained",  # the run-level reward stage trains the judge (tiny.yaml's reward section)
        *extra,
    ]


def _manifest(run_root: str, r: int, stage: str) -> dict | None:
    path = os.path.join(run_root, f"round-{r:03d}", stage, "_MANIFEST.json")
    return json.load(open(path)) if os.path.exists(path) else None


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    run_root = str(tmp_path_factory.mktemp("tiny") / "run")
    # Ctrl-C once round 1 has trained in this process (Ray Train's own SIGINT handler must not outlive its fit)
    said_log = os.path.join(os.path.dirname(run_root), "ctrl-c.log")
    ctrl_c = subprocess.Popen(
        _cmd(run_root),
        cwd=ROOT,
        stdout=open(said_log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background shell ignores it
    )
    deadline = time.time() + 1500
    while time.time() < deadline and ctrl_c.poll() is None and _manifest(run_root, 2, "prompts") is None:
        time.sleep(0.5)
    assert ctrl_c.poll() is None, f"run ended before round 2: {open(said_log).read()[-3000:]}"
    ctrl_c.send_signal(signal.SIGINT)
    ctrl_c.wait(timeout=120)
    said = open(said_log).read()
    assert ctrl_c.returncode == 130, said[-3000:]
    assert "flywheel: interrupted; finished stages are kept" in said and "Traceback" not in said, said[-3000:]
    assert _manifest(run_root, 1, "promote") is not None
    log = open(os.path.join(os.path.dirname(run_root), "first.log"), "w")
    proc = subprocess.Popen(_cmd(run_root), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    # kill as soon as round 2 is inside training: its SFT stage is published, DPO is not
    while time.time() < deadline and proc.poll() is None:
        if _manifest(run_root, 2, "sft") is not None and _manifest(run_root, 2, "dpo") is None:
            break
        time.sleep(0.5)
    assert proc.poll() is None, f"first run ended before round 2 training: {open(log.name).read()[-3000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {(r, s): _manifest(run_root, r, s) for r in (1, 2) for s in _stages()}
    before = {k: v for k, v in before.items() if v is not None}
    t0 = time.time()
    res = subprocess.run(_cmd(run_root), cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = {"root": run_root, "before": before, "second_seconds": time.time() - t0, "out": res.stdout + res.stderr}
    return {**out, "stderr": res.stderr, "first_log": said_log}  # the console of the run up to its Ctrl-C


def _stages() -> list[str]:
    return [
        "prompts",
        "dialogues",
        "responses",
        "judge",
        "datasets",
        "sft_code",
        "sft",
        "dpo",
        "rpo_1",
        "evaluate",
        "promote",
    ]


def test_resume_redoes_no_finished_stage(resumed_run):
    root = resumed_run["root"]
    before = resumed_run["before"]
    # round 1 finished and round 2 up to SFT survived the kill: their manifests were not rewritten
    assert (1, "promote") in before and (2, "sft") in before and (2, "dpo") not in before
    for (r, stage), man in before.items():
        assert _manifest(root, r, stage)["finished_at"] == man["finished_at"], (r, stage)
    for r in (1, 2):
        for stage in _stages():
            assert _manifest(root, r, stage) is not None, f"round {r} {stage} missing"


def test_reward_stage_trains_the_judge_once_and_every_round_uses_it(resumed_run):
    root = resumed_run["root"]
    man = _manifest(root, 0, "reward")
    assert man is not None and man["outputs"]["judge"] == {"spec": "trained", "trained": True}
    assert man["metrics"]["train_steps"] == 3 and 0.0 <= man["metrics"]["accuracy/all"] <= 1.0
    assert man["finished_at"] < resumed_run["before"][(1, "prompts")]["finished_at"]  # before round 1, not redone
    model = man["outputs"]["model"]["uri"]
    assert len(json.load(open(os.path.join(model, "config.json")))["id2label"]) == 5
    judge_id = f"reward:trained:{man['fingerprint']}"
    for r in (1, 2):
        rows = [
            json.loads(line) for f in sorted(glob.glob(f"{root}/round-00{r}/judge/*/part-*.jsonl")) for line in open(f)
        ]
        assert rows and {row["lineage"]["judge"] for row in rows} == {judge_id}


def test_each_round_aligns_the_student_not_the_generator(resumed_run):
    root = resumed_run["root"]

    def arch(uri: str) -> tuple[str, int]:
        cfg = json.load(open(os.path.join(uri, "config.json")))
        return cfg["model_type"], cfg["num_hidden_layers"]

    initial = _manifest(root, 1, "evaluate")["outputs"]["initial"]["model"]
    assert initial.startswith("initial:tiny-nemotron")
    for r in (1, 2):
        assert arch(_manifest(root, r, "rpo_1")["outputs"]["model"]["uri"]) == ("llama", 3)
    # round 1's promoted student generated round 2's data (the generator of round 2 is a Llama)
    gen2 = _manifest(root, 1, "promote")["outputs"]["generator"]
    assert arch(gen2["uri"]) == ("llama", 3)


def test_status_json_reports_both_rounds(resumed_run):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "flywheel.cli",
            "status",
            "--json",
            "--config",
            os.path.join(ROOT, "configs", "tiny.yaml"),
            f"run.root={resumed_run['root']}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr
    rounds = json.loads(res.stdout)["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    assert all(v == "done" for r in rounds for v in r["stages"].values())
    assert rounds[0]["promoted"] is True
    assert json.loads(res.stdout)["run"]["reward"] == "done"


def test_round2_generates_with_promoted_model(resumed_run):
    root = resumed_run["root"]
    promo = _manifest(root, 1, "promote")
    assert promo["outputs"]["decision"]["promoted"]
    cand = promo["outputs"]["candidate"]
    rows = [
        json.loads(line) for f in sorted(glob.glob(f"{root}/round-002/responses/*/part-*.jsonl")) for line in open(f)
    ]
    assert rows and {r["generator"] for r in rows} == {cand["id"]}
    assert {r["lineage"]["round"] for r in rows} == {2}


def test_promoted_checkpoint_loads_in_transformers_and_vllm(resumed_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from flywheel.engines.vllm_engine import ChatEngine, EngineSpec

    path = _manifest(resumed_run["root"], 2, "promote")["outputs"]["candidate"]["uri"]
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    ids = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, return_tensors="pt")
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    assert model.generate(ids, max_new_tokens=4, do_sample=False).shape[1] == ids.shape[1] + 4
    engine = ChatEngine(EngineSpec(model=path, dtype="float32", max_model_len=256))
    out = engine.chat([[{"role": "user", "content": "hi"}]], {"temperature": 0.0, "max_tokens": 4}, n=1)
    assert out["tokens"] >= 1 and len(out["texts"][0]) == 1


def test_datasets_load_with_hf_datasets(resumed_run):
    import datasets

    man = _manifest(resumed_run["root"], 1, "datasets")
    for name, cols in (
        ("sft_general", {"messages", "reward"}),
        ("preference", {"prompt", "chosen", "rejected", "reward_chosen", "reward_rejected", "judge"}),
    ):
        files = [p["uri"] for p in man["outputs"][name]["parts"]]
        ds = datasets.load_dataset("json", data_files=files, split="train")
        assert len(ds) == man["outputs"][name]["count"] > 0
        assert cols <= set(ds.column_names)


def test_mlflow_has_rounds_stages_and_generator_alias(resumed_run):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{resumed_run['root']}/mlflow.db")
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id], max_results=500)
    parents = {r.data.tags["flywheel.round"] for r in runs if _is_round_parent(r)}
    assert parents == {"1", "2"}
    assert any(
        r.data.tags.get("flywheel.run_level") == "true" and r.data.tags["flywheel.stage"] == "reward" for r in runs
    )
    stages = {r.data.tags.get("flywheel.stage") for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert {"prompts", "responses", "judge", "datasets", "dpo", "evaluate", "promote"} <= stages
    mv = client.get_model_version_by_alias("flywheel-generator", "generator")
    assert mv.source == _manifest(resumed_run["root"], 2, "promote")["outputs"]["generator"]["uri"]


def _is_round_parent(run) -> bool:
    """A round's parent run (the run-level reward stage has a run of its own, tagged flywheel.run_level)."""
    return "mlflow.parentRunId" not in run.data.tags and "flywheel.round" in run.data.tags


def test_the_console_shows_progress_not_library_noise_and_names_its_log(resumed_run):
    for text in (open(resumed_run["first_log"]).read(), resumed_run["stderr"]):
        lines = text.splitlines()
        assert lines[0].startswith("flywheel: full log in "), lines[:3]
        path = lines[0].removeprefix("flywheel: full log in ").removesuffix(" (-v prints it here)")
        assert path.startswith(os.path.join(resumed_run["root"], "logs")) and os.path.getsize(path) > 0
        assert len(lines) <= 2 * 60, len(lines)  # two rounds, at most 60 lines each
        for noise in ("WARNING", "RayTrainWorker", "ChatEngine", "Traceback"):
            assert noise not in text, [ln for ln in lines if noise in ln][:3]
        progress = [ln.strip() for ln in lines if " step " in ln and "tok/s" in ln]
        assert progress and len(progress) == len(set(progress))  # each worker line once
    logged = open(path).read()
    assert "RayTrainWorker" in logged  # the workers' own lines are in the log file ...
    worker_progress = [ln for ln in logged.splitlines() if "flywheel-progress" in ln]
    assert worker_progress and len(worker_progress) == len(set(worker_progress))  # ... each of them once


def test_evaluate_answers_with_every_model_before_the_judge_scores_them(resumed_run):
    # the chat and reward engines take turns on the same cores: round 1 evaluates the candidate and the initial
    # model, so it starts two chat pools and then one reward pool (not chat, reward, chat, reward)
    first = open(resumed_run["first_log"]).read().splitlines()[0]
    logged = open(first.removeprefix("flywheel: full log in ").removesuffix(" (-v prints it here)")).read()
    body = logged[logged.index("round 1: evaluate starting") :]
    body = body[: body.index("round 1: promote starting")]
    assert re.findall(r"starting \d+ (chat|reward) engine", body) == ["chat", "chat", "reward"], body[-3000:]
