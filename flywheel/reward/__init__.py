"""Reward model: HelpSteer2-schema data, regression training, scoring and pairwise evaluation.

Nemotron-4 340B (NVIDIA, 2024, sec. 3.1): a backbone with a linear head predicting the five HelpSteer2
attributes (helpfulness, correctness, coherence, complexity, verbosity), trained by regression; the scalar
reward is their weighted sum (``judges.weights``, default 0.3, 0.74, 0.46, 0.47, -0.33).

    flywheel reward train --config configs/local.yaml            # shipped set, SmolLM2-135M backbone
    flywheel reward eval --config configs/local.yaml --baseline  # held-out pairs, trained vs untrained head
    # then judge rounds with it:  flywheel iterate ... models.reward=runs/local/reward/model

Data. The shipped set (``flywheel/data/helpsteer_train.jsonl``, ``helpsteer_heldout.jsonl``) is built by
:mod:`flywheel.reward.helpsteer_set` (``python -m flywheel.reward.helpsteer_set`` rewrites it). To use the
real HelpSteer2 (CC-BY-4.0), fetch it where a network is available, e.g. ``huggingface-cli download
nvidia/HelpSteer2 --repo-type dataset --local-dir hs2``, and name it as it is published::

    flywheel reward train --data hs2/ --config configs/local.yaml        # the directory: its train split
    flywheel reward eval --data hs2/ --config configs/local.yaml         # ... and its validation split
    flywheel reward train --data hs2/train.jsonl.gz --config configs/local.yaml
    flywheel reward eval --data s3://bucket/hs2/validation.parquet --config configs/local.yaml

A source is a JSONL, gzipped JSONL or Parquet file (local, any fsspec URI, or ``builtin:NAME``) or a
directory with ``train.*`` / ``validation.*`` files (:mod:`.sources`); training reads a local normalized
JSONL copy of it, made once per source content under ``{run.cache_dir}/reward-data``. Its rows (``prompt``,
``response`` and the five 0-4 scores; multi-turn prompts with ``<extra_id_1>User`` /
``<extra_id_1>Assistant`` lines) are read as they are; attributes a row lacks are masked out of the loss, and
a malformed row is reported by file, row and field. Preference files (``prompt``/``chosen``/``rejected``,
e.g. a round's ``preference.jsonl``) work for ``eval``.

Everything about the reward model lives in this package:

- data: :mod:`.helpsteer_set` (the shipped set, built by code from :mod:`.bank`), :mod:`.sources` (HelpSteer2's
  files as published -> checked rows, and their local JSONL copy), :mod:`.data` (HelpSteer2 rows ->
  chat-template ids + 5 targets and a mask), :mod:`.pairs` (held-out pairs and their categories);
- model and training: :mod:`.model` (backbone + 5-output head), :mod:`.losses` (masked regression loss,
  batched weighted reward), :mod:`.loop` (the regression loop), :mod:`.job` (one job on any
  :class:`flywheel.train.job.Runtime`: in-process or a Ray Train + DeepSpeed worker);
- evaluation: :mod:`.accuracy` (pairwise accuracy by category), :mod:`.hf_scorer` (transformers scorer);
- commands: :mod:`.drivers` (what ``flywheel reward train|eval`` do), :mod:`.commands` (their CLI),
  :mod:`.config` (``RewardConfig``).

Outside it on purpose: the record-level aggregation every judge uses (:mod:`flywheel.judges.attributes`),
the vLLM pooling scorer (:mod:`flywheel.engines.reward_scoring`, engines live in ``flywheel/engines``) and the
MLflow run of a reward command (:func:`flywheel.tracking.log_reward_run`).
"""
