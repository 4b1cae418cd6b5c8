"""MLflow's registry follows the store after any crash: one version per candidate, @generator on the store's
generator, never moved backwards by a rerun of an older round (real MLflow, sqlite)."""

from __future__ import annotations

from flywheel.config import TrackingConfig
from flywheel.stages.promote import sync_registry
from flywheel.store import Store
from flywheel.tracking import Tracker

INITIAL = {"id": "initial", "uri": "/models/initial"}


def _decide(store: Store, r: int, promoted: bool, generator: dict) -> dict:
    cand = {"id": f"cand-{r}", "uri": f"/runs/x/round-{r:03d}/candidate"}
    new = {**cand, "round_promoted": r} if promoted else generator
    decision = {"promoted": promoted, "reason": "test", "suites": {}}
    store.commit(
        r,
        "promote",
        f"fp{r}",
        {"generator": new, "candidate": cand, "decision": decision},
        metrics={"promoted": int(promoted), "if_delta": 0.1},
    )
    return new


def _aliases(tracker: Tracker) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for alias in ("candidate", "generator"):
        try:
            mv = tracker.client.get_model_version_by_alias(tracker.tc.registered_model, alias)
            out[alias] = mv.tags["flywheel.round"]
        except Exception:
            out[alias] = None
    return out


def _versions(tracker: Tracker) -> list[str]:
    found = tracker.client.search_model_versions(f"name='{tracker.tc.registered_model}'")
    return sorted(mv.tags["flywheel.round"] for mv in found)


def test_registry_follows_the_store_after_crashes_and_reruns(tmp_path):
    store = Store(str(tmp_path / "run"))
    tracker = Tracker(TrackingConfig(), store, str(tmp_path / "cache"), "t")

    gen = _decide(store, 1, True, INITIAL)  # killed after the manifest, before MLflow heard of it
    assert _versions(tracker) == []
    sync_registry(store, tracker)  # the rerun (promote skipped) repairs it
    sync_registry(store, tracker)  # and again: nothing registered twice
    assert _versions(tracker) == ["1"] and _aliases(tracker) == {"candidate": "1", "generator": "1"}

    _decide(store, 2, False, gen)
    sync_registry(store, tracker)
    assert _versions(tracker) == ["1", "2"] and _aliases(tracker) == {"candidate": "2", "generator": "1"}

    _decide(store, 3, True, gen)
    sync_registry(store, tracker)
    assert _aliases(tracker) == {"candidate": "3", "generator": "3"}
    store.commit(1, "promote", "fp1", store.manifest(1, "promote")["outputs"])  # round 1 redone later
    sync_registry(store, tracker)
    assert _versions(tracker) == ["1", "2", "3"]
    assert _aliases(tracker) == {"candidate": "3", "generator": "3"}  # never backwards


def test_no_promotion_yet_leaves_no_generator_alias(tmp_path):
    store = Store(str(tmp_path / "run"))
    tracker = Tracker(TrackingConfig(), store, str(tmp_path / "cache"), "t")
    _decide(store, 1, False, INITIAL)
    sync_registry(store, tracker)
    assert _aliases(tracker) == {"candidate": "1", "generator": None}
