"""Every round draws its own data: a round whose generator was held must not repeat the round before."""

from flywheel.config import load_config, round_config, round_seed
from flywheel.rounds import Run
from flywheel.stages.roles import sampling_seed
from flywheel.store import Store


def test_round_one_keeps_the_configured_seeds_and_each_later_round_moves_them():
    assert [round_seed(7, r) for r in (0, 1, 2, 3)] == [7, 7, 8, 9]
    cfg = load_config("configs/demo.yaml", ["sdg.seed=5", "judges.seed=11"])
    assert round_config(cfg, 1) is cfg
    r3 = round_config(cfg, 3)
    assert (r3.sdg.seed, r3.judges.seed) == (7, 13)
    # nothing else moves: the run's seed builds models (a tiny initial model, a fresh reward head)
    assert r3.run.seed == cfg.run.seed and r3.train == cfg.train and r3.sdg.topics == cfg.sdg.topics
    assert (cfg.sdg.seed, cfg.judges.seed) == (5, 11)  # the run's config is left as it was


def test_each_round_context_carries_its_seeds_and_its_engines_sample_with_the_round(tmp_path):
    cfg = load_config("configs/tiny.yaml", [f"run.root={tmp_path}"])
    run = Run(cfg=cfg, store=Store(str(tmp_path)))
    one, two = run.context(1), run.context(2)
    assert one.cfg is cfg and two.cfg.sdg.seed == cfg.sdg.seed + 1 and two.cfg.judges.seed == cfg.judges.seed + 1
    assert (sampling_seed(one), sampling_seed(two)) == (cfg.run.seed, cfg.run.seed + 1)
    assert run.context(2) is two  # one context per round
