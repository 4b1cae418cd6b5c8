"""Fixtures shared by the integration tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def ray_local():
    """A private local Ray with 2 CPUs for the module, started the way the CLI starts it (reused when one is
    already running); ``RAY_ADDRESS`` is put back afterwards so later modules never look for this cluster."""
    import ray

    from flywheel.engines.pool import ensure_ray

    started = not ray.is_initialized()
    saved = os.environ.get("RAY_ADDRESS")
    if started:
        ensure_ray("local", 2)
    yield
    if started:
        ray.shutdown()
        if saved is None:
            os.environ.pop("RAY_ADDRESS", None)
        else:
            os.environ["RAY_ADDRESS"] = saved
