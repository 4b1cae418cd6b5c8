"""Fixtures shared by the integration tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module", autouse=True)
def _ray_address_restored():
    """``ensure_ray`` points ``RAY_ADDRESS`` at the private cluster it starts; put it back after each module so
    later modules in this process never look for a stopped cluster."""
    saved = os.environ.get("RAY_ADDRESS")
    yield
    if saved is None:
        os.environ.pop("RAY_ADDRESS", None)
    else:
        os.environ["RAY_ADDRESS"] = saved


@pytest.fixture(scope="module")
def ray_local():
    """A private local Ray with 2 CPUs for the module, started the way the CLI starts it (reused when one is
    already running)."""
    import ray

    from flywheel.engines.pool import ensure_ray

    started = not ray.is_initialized()
    if started:
        ensure_ray("local", 2)
    yield
    if started:
        ray.shutdown()
