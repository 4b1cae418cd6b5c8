"""The one error type users see: a single line naming the culprit; and how SIGTERM stops a run."""

import signal
import threading
from typing import Any


class FlywheelError(Exception):
    """Bad input or environment. The CLI prints ``str(err)`` on one line and exits non-zero."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``kill``, a cancelled deployment): stops the run the way Ctrl-C does.

    ``received`` stays set once the signal came: a Ray call it interrupts re-raises it as a plain
    ``KeyboardInterrupt``.
    """

    received = False


def _terminate(signum: int, frame: Any) -> None:
    Terminated.received = True
    raise Terminated()


def stop_on_sigterm() -> None:
    """Make SIGTERM raise :class:`Terminated` in the main thread (elsewhere signals cannot be handled: no-op).

    Called where a library may have put its own handler in: after ``ray.init`` (which would abort with exit 134)
    and at the start of every stage (a Prefect flow run installs one that its retries then treat as a crash).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
