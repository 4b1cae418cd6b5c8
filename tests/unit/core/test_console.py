"""The quiet console: flywheel's lines and training progress on the terminal, everything else in the log file."""

import io
import os
import subprocess
import sys
import textwrap

from flywheel.console import Progress, log_dir, parse_progress, progress_line

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_a_progress_line_survives_rays_prefix_and_other_lines_are_not_progress():
    line = progress_line("sft", 3, 10, 123.4, 0.5)
    assert parse_progress("\x1b[36m(RayTrainWorker pid=1)\x1b[0m " + line) == {
        "job": "sft",
        "step": 3,
        "total": 10,
        "tps": 123.4,
        "loss": 0.5,
        "run": line.split('"run": "')[1][:12],  # this process's id
    }
    assert parse_progress("sft step 3 loss 0.5") is None
    assert parse_progress("flywheel-progress {not json") is None
    assert parse_progress('flywheel-progress {"job": "x"}') is None


def test_progress_prints_each_step_once_and_a_line_per_quarter_off_a_terminal():
    out = io.StringIO()
    p = Progress(out, live=False)
    for step in [1, 1, 10, 10, 20, 30, 40, 40]:
        p.update({"job": "dpo", "step": step, "total": 40, "tps": 100.0, "loss": 0.6}, now=float(step))
    lines = out.getvalue().splitlines()
    # the first step past each quarter (10 = 1/4, 20 = 1/2, 30 = 3/4, 40 = done); repeats dropped
    assert [ln.split(" · ")[0].strip() for ln in lines] == [f"dpo step {s}/40" for s in (10, 20, 30, 40)]
    assert "ETA 0:10" in lines[2]  # 29 steps took 29 s since step 1: 10 steps left


def test_the_same_job_in_a_later_fit_is_shown_again():
    """Round 2's sft reaches the steps round 1's sft reached; its workers are other processes (another run id)."""
    out = io.StringIO()
    p = Progress(out, live=False)
    for run in ("round1-worker", "round2-worker"):
        for step in (10, 10, 20):
            p.update({"job": "sft", "step": step, "total": 20, "tps": 1.0, "run": run}, now=float(step))
    assert [ln.split(" · ")[0].strip() for ln in out.getvalue().splitlines()] == [
        "sft step 10/20",
        "sft step 20/20",
    ] * 2


def test_progress_on_a_terminal_rewrites_one_line_and_ends_it_with_the_job():
    out = io.StringIO()
    p = Progress(out, live=True)
    for step in (1, 2, 3):
        p.update({"job": "sft", "step": step, "total": 3, "tps": 10.0}, now=float(step))
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1


def test_log_dir_is_under_a_local_root_and_in_the_cache_for_a_remote_one(tmp_path):
    assert log_dir(str(tmp_path), "~/.cache/flywheel", "demo") == os.path.join(str(tmp_path), "logs")
    remote = log_dir("s3://bucket/runs/demo", str(tmp_path), "demo")
    assert remote == os.path.join(str(tmp_path), "logs", "demo")


def test_quiet_sends_library_worker_and_native_output_to_the_log_and_keeps_the_terminal_readable(tmp_path):
    script = textwrap.dedent(
        f"""
        import logging, os, sys
        from flywheel import console
        console.setup_logging(False)
        path = console.quiet({str(tmp_path)!r})
        logging.getLogger("flywheel").info("round 1: sft done")
        logging.getLogger("ray").warning("a library warning")
        print("(RayTrainWorker pid=7) sft: 12 examples, 3 optimizer steps")
        line = console.progress_line("sft", 3, 3, 50.0, 0.25)
        print("(RayTrainWorker pid=7) " + line)
        print("(RayTrainWorker pid=7) " + line)  # Ray may deliver a line twice
        os.write(2, b"a native message\\n")
        logging.getLogger("flywheel").error("flywheel: error: something named")
        console.restore()
        print("after restore", path)
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ}
    )
    assert res.returncode == 0, res.stderr
    terminal = (res.stderr + res.stdout).splitlines()
    path = res.stdout.split("after restore ", 1)[1].strip()
    assert terminal[0] == f"flywheel: full log in {path} (-v prints it here)"
    shown = "\n".join(terminal)
    assert "round 1: sft done" in shown and "something named" in shown
    assert "INFO:flywheel" not in shown  # the message, not the log record's default format
    assert shown.count("sft step 3/3") == 1
    for hidden in ("a library warning", "12 examples", "a native message"):
        assert hidden not in shown
    log = open(path).read()
    for kept in ("a library warning", "12 examples", "a native message", "round 1: sft done"):
        assert kept in log
    assert os.path.dirname(path) == str(tmp_path)
