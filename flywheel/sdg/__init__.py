"""Synthetic data generation, the pure part: prompt builders, parsers, verifiers and filters.

Nemotron-4 340B report, section 3.2. No engine code lives here: callers send the message lists
built by these modules to a generator and hand the raw replies back to the parsers.

Modules: ``templates`` (single-turn pipelines), ``parse`` (reply parsers), ``rows`` (prompt
records), ``instructions`` and ``if_prompts`` (verifiable instruction following),
``two_turn``, ``dialogue`` (persona role-play), ``quality`` (dedup and filters),
``defaults`` (seed lists) and ``config`` (``SDGConfig``).
"""

from flywheel.sdg.config import SDGConfig
from flywheel.sdg.instructions import verify_all
from flywheel.sdg.parse import parse_list, parse_single
from flywheel.sdg.rows import PROMPT_KINDS, make_prompt_row

__all__ = [
    "PROMPT_KINDS",
    "SDGConfig",
    "make_prompt_row",
    "parse_list",
    "parse_single",
    "verify_all",
]
