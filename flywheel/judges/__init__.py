"""Judging: reward aggregation, ground-truth verifiers, LLM-as-judge protocol, pair and SFT selection (pure)."""
