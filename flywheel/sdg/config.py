"""Structured config for synthetic data generation (``sdg`` section, OmegaConf-compatible).

Counts follow the shape of the Nemotron-4 340B report, section 3.2 (topics -> subtopics ->
questions, writing tasks per document type, keyword-driven math/code, instruction-following,
two-turn prompts and 3-turn role-played dialogues), scaled down by the profiles in configs/.
Empty lists mean "use the shipped defaults" (``with_defaults`` fills them in).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from flywheel.errors import FlywheelError
from flywheel.sdg.defaults import (
    DEFAULT_CODE_KEYWORDS,
    DEFAULT_DOC_TYPES,
    DEFAULT_MATH_KEYWORDS,
    DEFAULT_TOPICS,
)
from flywheel.sdg.dialogue import PERSONAS
from flywheel.sdg.instructions import REGISTRY
from flywheel.sdg.rows import PROMPT_KINDS


@dataclass
class SDGConfig:
    """Synthetic data generation settings.

    Attributes:
        pipelines: prompt pipelines to run, a subset of ``flywheel.sdg.rows.PROMPT_KINDS``.
        topics: macro topics; empty -> ``DEFAULT_TOPICS``.
        n_subtopics: subtopics generated per macro topic.
        questions_per_subtopic: open Q&A questions generated per subtopic.
        refine: run the "more detailed and specific" refinement turn on questions and tasks.
        writing_per_type: writing tasks generated per (document type, topic) pair.
        doc_types: writing document types; empty -> ``DEFAULT_DOC_TYPES``.
        math_keywords: math keywords; empty -> ``DEFAULT_MATH_KEYWORDS``.
        code_keywords: Python keywords; empty -> ``DEFAULT_CODE_KEYWORDS``.
        problems_per_keyword: math/code problems generated per keyword.
        closed_qa_documents: JSONL/text file of source documents for closed Q&A ("" -> skip).
        closed_qa_per_document: instructions generated per document.
        closed_qa_max_doc_chars: documents are clipped to this many characters.
        if_fraction: share of synthetic prompts turned into instruction-following prompts.
        instructions_per_prompt: verifiable instructions attached per IF prompt.
        if_kinds: allowed instruction kinds; empty -> all registered kinds.
        two_turn_count: two-turn prompts to build.
        dialogues: 3-turn role-play dialogues to build (0 -> none).
        dialogue_turns: user turns per dialogue.
        personas: persona names for the simulated user; empty -> all shipped personas.
        dedup_threshold: MinHash Jaccard threshold for near-duplicate removal.
        minhash_perms: MinHash permutations.
        min_prompt_chars: shortest prompt kept.
        max_prompt_chars: longest prompt kept.
        heldout_fraction: share of prompt ids routed to the held-out split.
        seed: seed for every random choice in prompt building.
    """

    pipelines: list[str] = field(default_factory=lambda: list(PROMPT_KINDS))
    topics: list[str] = field(default_factory=list)
    n_subtopics: int = 5
    questions_per_subtopic: int = 2
    refine: bool = True
    writing_per_type: int = 1
    doc_types: list[str] = field(default_factory=list)
    math_keywords: list[str] = field(default_factory=list)
    code_keywords: list[str] = field(default_factory=list)
    problems_per_keyword: int = 1
    closed_qa_documents: str = ""
    closed_qa_per_document: int = 1
    closed_qa_max_doc_chars: int = 4000
    if_fraction: float = 0.3
    instructions_per_prompt: int = 2
    if_kinds: list[str] = field(default_factory=list)
    two_turn_count: int = 100
    dialogues: int = 100
    dialogue_turns: int = 3
    personas: list[str] = field(default_factory=list)
    dedup_threshold: float = 0.8
    minhash_perms: int = 64
    min_prompt_chars: int = 10
    max_prompt_chars: int = 8000
    heldout_fraction: float = 0.0
    seed: int = 0


def validate(cfg: SDGConfig) -> None:
    """Raise ``FlywheelError`` naming the first bad ``sdg.*`` field."""
    unknown = [p for p in cfg.pipelines if p not in PROMPT_KINDS]
    if unknown:
        raise FlywheelError(f"sdg.pipelines: unknown {unknown}; choose from {list(PROMPT_KINDS)}")
    bad_kinds = [k for k in cfg.if_kinds if k not in REGISTRY]
    if bad_kinds:
        raise FlywheelError(f"sdg.if_kinds: unknown {bad_kinds}; choose from {sorted(REGISTRY)}")
    names = {p["name"] for p in PERSONAS}
    bad_personas = [p for p in cfg.personas if p not in names]
    if bad_personas:
        raise FlywheelError(f"sdg.personas: unknown {bad_personas}; choose from {sorted(names)}")
    at_least_one = (
        "n_subtopics",
        "questions_per_subtopic",
        "writing_per_type",
        "problems_per_keyword",
        "closed_qa_per_document",
        "instructions_per_prompt",
        "dialogue_turns",
        "minhash_perms",
        "closed_qa_max_doc_chars",
    )
    for name in at_least_one:
        if getattr(cfg, name) < 1:
            raise FlywheelError(f"sdg.{name} must be >= 1, got {getattr(cfg, name)}")
    for name in ("two_turn_count", "dialogues", "min_prompt_chars"):
        if getattr(cfg, name) < 0:
            raise FlywheelError(f"sdg.{name} must be >= 0, got {getattr(cfg, name)}")
    for name in ("if_fraction", "heldout_fraction"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise FlywheelError(f"sdg.{name} must be in [0, 1], got {getattr(cfg, name)}")
    if not 0.0 < cfg.dedup_threshold <= 1.0:
        raise FlywheelError(f"sdg.dedup_threshold must be in (0, 1], got {cfg.dedup_threshold}")
    if cfg.max_prompt_chars < cfg.min_prompt_chars:
        raise FlywheelError(
            f"sdg.max_prompt_chars ({cfg.max_prompt_chars}) < sdg.min_prompt_chars ({cfg.min_prompt_chars})"
        )


def with_defaults(cfg: SDGConfig) -> SDGConfig:
    """A copy with empty topic/doc-type/keyword lists replaced by the shipped defaults.

    Takes the dataclass (``OmegaConf.to_object`` of the ``sdg`` node).
    """
    return dataclasses.replace(
        cfg,
        topics=list(cfg.topics) or list(DEFAULT_TOPICS),
        doc_types=list(cfg.doc_types) or list(DEFAULT_DOC_TYPES),
        math_keywords=list(cfg.math_keywords) or list(DEFAULT_MATH_KEYWORDS),
        code_keywords=list(cfg.code_keywords) or list(DEFAULT_CODE_KEYWORDS),
    )
