"""Held-out evaluation: suites disjoint from the SDG, their scoring, and the promotion gate (pure)."""
