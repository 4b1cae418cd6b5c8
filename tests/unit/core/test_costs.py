"""The round's overhead broken down: engine starts, training start-up, model loads, orchestration."""

from flywheel import costs


def test_breakdown_counts_what_came_after_the_snapshot_and_the_rest_is_orchestration():
    costs.add("engine_start", 4.0)  # before the round: not counted
    before = costs.snapshot()
    costs.add("engine_start", 10.0)
    costs.add("train_start", 5.0)
    costs.add("model_load", 3.0)
    costs.add("model_load", -1.0)  # a clock step backwards never subtracts
    out = costs.breakdown(wall=100.0, stage_seconds=80.0, before=before)
    assert out == {
        "fixed/engine_start_seconds": 10.0,
        "fixed/train_start_seconds": 5.0,
        "fixed/model_load_seconds": 3.0,
        # stages took 80 s (engine starts and model loads inside them), the fit's start-up 5 s outside any job
        "fixed/orchestration_seconds": 15.0,
        "overhead_share": 0.33,
    }


def test_a_round_of_pure_compute_has_no_overhead():
    before = costs.snapshot()
    assert costs.breakdown(wall=50.0, stage_seconds=50.0, before=before)["overhead_share"] == 0.0
    assert costs.breakdown(wall=0.0, stage_seconds=0.0, before=before)["overhead_share"] == 0.0
