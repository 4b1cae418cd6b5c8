"""What a person watching a run sees, and the log file that keeps everything else.

Quiet (the default of ``flywheel iterate``): the terminal shows flywheel's own lines -- a stage starting, a
stage done with its summary, the round's result -- and the progress of training jobs (job, step/total,
tokens/s, ETA): one live line on a terminal; off a terminal (a file, CI), a line per quarter of each job and
one unwrapped line per message. Everything else goes to
a log file, named in the first line: library warnings, every Ray actor's and training worker's output, native
messages written straight to the process's stdout/stderr. ``-v`` keeps everything on the terminal instead.

Training workers report progress with :func:`progress_line`, printed on their stdout (which Ray forwards to
the driver); the driver picks those lines out of its own stdout, once each (Ray may deliver a worker's line
more than once).
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
import uuid
from datetime import datetime
from typing import Any, TextIO

PROGRESS = "flywheel-progress "
_NOISY = ("httpx", "alembic", "mlflow", "urllib3", "filelock", "asyncio")


# One id per process: a job of the same name in a later fit (the next round, a rerun) runs in new worker
# processes, so its steps are not taken for repeats of the earlier fit's.
_PROCESS = uuid.uuid4().hex[:12]


def progress_line(job: str, step: int, total: int, tokens_per_s: float, loss: float) -> str:
    """The line a training worker prints after an optimizer step (read back by :func:`parse_progress`)."""
    rec = {"job": job, "step": step, "total": total, "tps": tokens_per_s, "loss": loss, "run": _PROCESS}
    return PROGRESS + json.dumps(rec)


def parse_progress(line: str) -> dict[str, Any] | None:
    """The progress record in a line of output, or None (Ray prefixes worker lines with their actor name)."""
    at = line.find(PROGRESS)
    if at < 0:
        return None
    try:
        rec = json.loads(line[at + len(PROGRESS) :])
    except ValueError:
        return None
    return rec if isinstance(rec, dict) and {"job", "step", "total"} <= set(rec) else None


def _eta(seconds: float) -> str:
    m, s = divmod(int(max(0.0, seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


class Progress:
    """Training progress from worker lines: a live line on a terminal, else one line per quarter of a job."""

    def __init__(self, out: TextIO, live: bool):
        self.out, self.live = out, live
        self.seen: set[tuple[str, str, int]] = set()
        self.started: dict[tuple[str, str], tuple[float, int]] = {}
        self.quarter: dict[tuple[str, str], int] = {}
        self.width = 0

    def text(self, rec: dict[str, Any], now: float) -> str:
        job, step, total = str(rec["job"]), int(rec["step"]), max(1, int(rec["total"]))
        t0, s0 = self.started.setdefault(
            (str(rec.get("run", "")), job), (now, step)
        )  # the pace is measured from the first step seen
        done = step - s0
        eta = (now - t0) / done * (total - step) if done > 0 and now > t0 else None
        parts = [f"{job} step {step}/{total}", f"{float(rec.get('tps', 0.0)):.0f} tok/s"]
        if isinstance(rec.get("loss"), (int, float)):
            parts.append(f"loss {rec['loss']:.4f}")
        if eta is not None:
            parts.append(f"ETA {_eta(eta)}")
        return "  " + " · ".join(parts)

    def update(self, rec: dict[str, Any], now: float | None = None) -> None:
        fit, step = (str(rec.get("run", "")), str(rec["job"])), int(rec["step"])
        if (*fit, step) in self.seen:  # Ray may deliver a worker's line more than once
            return
        self.seen.add((*fit, step))
        text = self.text(rec, time.monotonic() if now is None else now)
        if self.live:
            self.out.write("\r" + text.ljust(self.width))
            self.width = len(text)
            if step >= int(rec["total"]):
                self.out.write("\n")
                self.width = 0
        else:
            q = 4 * step // max(1, int(rec["total"]))
            if q > self.quarter.get(fit, 0):
                self.quarter[fit] = q
                self.out.write(text + "\n")
        self.out.flush()

    def clear(self) -> None:
        """End a live line before another line is printed."""
        if self.live and self.width:
            self.out.write("\r" + " " * self.width + "\r")
            self.out.flush()
            self.width = 0


class _Tap(io.TextIOBase):
    """A stdout/stderr replacement: every line to the log file; worker progress lines also to ``progress``."""

    def __init__(self, log: TextIO, progress: Progress):
        self.log, self.progress, self.partial = log, progress, ""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.log.write(s)
        lines = (self.partial + s).split("\n")
        self.partial = lines.pop()
        for line in lines:
            rec = parse_progress(line)
            if rec is not None:
                self.progress.update(rec)
        return len(s)

    def flush(self) -> None:
        self.log.flush()

    def isatty(self) -> bool:
        return False


class _Console:
    def __init__(self) -> None:
        self.saved: tuple[int, int] | None = None
        self.streams: tuple[TextIO, TextIO] | None = None
        self.log_path: str | None = None
        self.files: list[TextIO] = []


_STATE = _Console()


def setup_logging(verbose: bool) -> None:
    """Log flywheel's lines to the terminal (rich); ``verbose`` adds DEBUG and every library's INFO."""
    from rich.console import Console
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.INFO if not verbose else logging.DEBUG,
        format="%(message)s",
        handlers=[RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False)],
        force=True,
    )
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log_dir(root: str, cache_dir: str, name: str) -> str:
    """Where a run's log files go: ``{root}/logs`` for a local root, the cache dir for a remote one."""
    if "://" in root and not root.startswith("file://"):
        return os.path.join(os.path.expanduser(cache_dir), "logs", name)
    return os.path.join(root.removeprefix("file://"), "logs")


def quiet(directory: str) -> str:
    """Send everything but flywheel's own lines and training progress to a new log file; returns its path.

    File descriptors 1 and 2 point at the log file from here on (native libraries and child processes
    write there too); the terminal keeps a private copy of the original stderr. :func:`restore` undoes it.
    """
    from rich.console import Console
    from rich.logging import RichHandler

    if _STATE.saved is not None:
        return str(_STATE.log_path)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"flywheel-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log")
    log = open(path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115 (kept open until restore)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    terminal = open(os.dup(saved[1]), "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    terminal.write(f"flywheel: full log in {path} (-v prints it here)\n")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    progress = Progress(terminal, live=terminal.isatty())
    _STATE.saved, _STATE.streams, _STATE.log_path = saved, (sys.stdout, sys.stderr), path
    _STATE.files = [log, terminal]
    sys.stdout = sys.stderr = _Tap(log, progress)

    class _Clearing(RichHandler):
        def emit(self, record: logging.LogRecord) -> None:
            progress.clear()
            super().emit(record)

    screen: logging.Handler
    if terminal.isatty():
        screen = _Clearing(console=Console(file=terminal), show_path=False, rich_tracebacks=False)
        screen.setFormatter(logging.Formatter("%(message)s"))  # RichHandler shows the time and level itself
    else:  # a file or a pipe (CI, nohup): one line per message, never wrapped to a width
        screen = logging.StreamHandler(terminal)
        screen.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    screen.addFilter(lambda r: r.name.split(".")[0] == "flywheel")  # a failure ends in flywheel's own error line
    to_file = logging.StreamHandler(log)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[screen, to_file], force=True)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path


def restore() -> None:
    """Undo :func:`quiet`: stdout/stderr (and fds 1 and 2) back on the terminal, logging as before."""
    if _STATE.saved is None or _STATE.streams is None:
        return
    tap = sys.stdout
    tap.flush()
    os.dup2(_STATE.saved[0], 1)
    os.dup2(_STATE.saved[1], 2)
    for fd in _STATE.saved:
        os.close(fd)
    sys.stdout, sys.stderr = _STATE.streams
    _STATE.saved = _STATE.streams = None
    setup_logging(False)
    for f in _STATE.files:
        f.close()
    _STATE.files = []
