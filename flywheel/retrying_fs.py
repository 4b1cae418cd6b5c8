"""Retries for an object store that drops out: a connection refused, reset or timed out is tried again.

:class:`flywheel.store.Store` wraps a remote filesystem (s3fs, gcsfs, ...) in :class:`RetryingFS`: each call
of the operations the store uses is retried with exponential backoff when it fails with a transient network
error (by the exception's class, whichever library raised it), and a warning names the store, the error and
the wait. Every retried operation is idempotent where the store uses it (whole-object writes, reads,
listings, deletes of temp names). Other errors -- a missing key, access denied -- are never retried. After the
last attempt the error goes up as it is and the store turns it into its one-line message.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("flywheel")

ATTEMPTS = 5
FIRST_WAIT_S = 0.5  # then 1, 2, 4: about 7.5 s of waiting before the store gives up
RETRIED = frozenset(
    {"exists", "pipe", "mv", "cat_file", "ls", "find", "put", "get", "makedirs", "rm", "info", "isdir", "isfile"}
)
# Transient by class name, so botocore, aiohttp, urllib3 and the builtins need no imports here.
TRANSIENT = frozenset(
    {
        "ConnectionError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "ConnectionAbortedError",
        "BrokenPipeError",
        "TimeoutError",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ClientConnectorError",
        "ClientConnectionError",
        "ServerDisconnectedError",
        "ClientOSError",
    }
)


def transient(err: BaseException) -> bool:
    """True for a network error worth another try (the error, or one it was raised from)."""
    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if any(cls.__name__ in TRANSIENT for cls in type(e).__mro__):
            return True
        e = e.__cause__ or e.__context__
    return False


class RetryingFS:
    """A filesystem whose :data:`RETRIED` operations retry transient errors; everything else passes through."""

    def __init__(self, fs: Any, name: str, attempts: int | None = None, first_wait_s: float | None = None):
        self._fs, self._name = fs, name
        self._attempts = ATTEMPTS if attempts is None else attempts
        self._first_wait_s = FIRST_WAIT_S if first_wait_s is None else first_wait_s

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._fs, attr)
        if attr not in RETRIED or not callable(value):
            return value
        return self._retrying(attr, value)

    def _retrying(self, attr: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            wait = self._first_wait_s
            for attempt in range(1, self._attempts + 1):
                try:
                    return fn(*args, **kwargs)
                except Exception as err:
                    if attempt == self._attempts or not transient(err):
                        raise
                    log.warning(
                        "store %s: %s failed (%s), retrying in %.1f s (attempt %d of %d)",
                        self._name,
                        attr,
                        type(err).__name__,
                        wait,
                        attempt + 1,
                        self._attempts,
                    )
                    time.sleep(wait)
                    wait *= 2
            raise AssertionError("unreachable")

        return call
