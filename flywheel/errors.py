"""The one error type users see: a single line naming the culprit."""


class FlywheelError(Exception):
    """Bad input or environment. The CLI prints ``str(err)`` on one line and exits non-zero."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``kill``, a cancelled deployment): stops the run the way Ctrl-C does.

    ``received`` stays set once the signal came: a Ray call it interrupts re-raises it as a plain
    ``KeyboardInterrupt``.
    """

    received = False
