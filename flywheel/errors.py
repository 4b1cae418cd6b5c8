"""The one error type users see: a single line naming the culprit."""


class FlywheelError(Exception):
    """Bad input or environment. The CLI prints ``str(err)`` on one line and exits non-zero."""
