"""Engine pools across stages: a reward pool finds room even when the chat pool fills the machine; SIGTERM
stops a driver waiting on its engines the way Ctrl-C does."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.timeout(300)
def test_reward_pool_starts_when_chat_pool_holds_every_core(tiny_policy_dir, tiny_reward_dir):
    import ray

    from flywheel.config import EngineConfig, RayConfig
    from flywheel.engines.cache import EngineCache

    if ray.is_initialized():
        ray.shutdown()
    engine = EngineConfig(num_actors=2, cpus_per_actor=1, dtype="float32", max_model_len=256, kv_cache_gb=0.25)
    cache = EngineCache(engine, RayConfig(address="local", num_cpus=2), seed=0)
    try:
        chat = cache.chat(tiny_policy_dir)  # two actors, one core each: the whole local cluster
        assert ray.available_resources().get("CPU", 0.0) < 1
        out = {}
        chat.map(
            "chat", [(0, ([[{"role": "user", "content": "hi"}]], {"max_tokens": 4}))], lambda i, r: out.update({i: r})
        )
        assert out[0]["texts"][0][0] is not None
        # the same model and seed: the pool held, not restarted
        assert cache.chat(tiny_policy_dir) is chat and cache.chat(tiny_policy_dir, seed=0) is chat
        reseeded = cache.chat(tiny_policy_dir, seed=1)  # a later round's sampling seed: engines of its own
        assert reseeded is not chat and cache.pools["chat"][0] == (tiny_policy_dir, 1)
        reward = cache.reward(tiny_reward_dir)  # would wait forever for a free core without making room
        scored = {}
        reward.map(
            "score",
            [(0, ([[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]],))],
            lambda i, r: scored.update({i: r}),
        )
        assert len(scored[0]["scores"][0]) == 5
        assert len(reward.actors) == 2  # as many scorers as chat engines: no core idles through the judge stage
        assert list(cache.pools) == ["reward"]  # the chat pool was released to make room
    finally:
        cache.release()
        ray.shutdown()  # RAY_ADDRESS is put back by the conftest's module fixture


@pytest.mark.timeout(120)
def test_sigterm_while_waiting_on_ray_stops_like_ctrl_c():
    import os
    import signal
    import threading
    import time

    import ray

    from flywheel.engines.pool import ensure_ray
    from flywheel.errors import Terminated

    if ray.is_initialized():
        ray.shutdown()
    before = signal.getsignal(signal.SIGTERM)
    try:
        ensure_ray("local", num_cpus=1)

        @ray.remote(num_cpus=1)
        def nap(s: float) -> float:
            time.sleep(s)
            return s

        ray.get(nap.remote(0))
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
        t0 = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):  # Ray re-raises it as a plain KeyboardInterrupt
            ray.wait([nap.remote(30)], num_returns=1)
        assert time.perf_counter() - t0 < 15 and Terminated.received
    finally:
        Terminated.received = False
        signal.signal(signal.SIGTERM, before)
        ray.shutdown()


def test_the_cli_says_terminated_and_exits_143(monkeypatch, capsys):
    from flywheel import cli
    from flywheel.errors import Terminated

    def stopped(args):
        raise Terminated()

    monkeypatch.setattr(cli, "cmd_iterate", stopped)
    assert cli.main(["iterate", "--rounds", "1", "--config", "configs/tiny.yaml"]) == 143
    assert "flywheel: terminated; finished stages are kept" in capsys.readouterr().err
