"""Policies: scripted experts and distractors (learners arrive with the trainer)."""

from sociajax.agents.scripted import (
    ExplorerCycler,
    GoalSeeker,
    Imperfect,
    OracleCycler,
    RandomPolicy,
    make_policy,
)

__all__ = ["ExplorerCycler", "GoalSeeker", "Imperfect", "OracleCycler", "RandomPolicy", "make_policy"]
