"""Tiny training configs: 16-step episodes, 2-4 envs, 2 minibatches (compiles in seconds)."""

from __future__ import annotations

import dataclasses

from sociajax.agents.ppo import PPOConfig
from sociajax.training import AgentConfig, EnvConfig, TrainConfig

NOVICE = AgentConfig(role="learner", lr=1e-4)
ORACLE = AgentConfig(role="scripted", policy="oracle")


def tiny(run_dir: str = "runs/test", **changes) -> TrainConfig:
    """A social config small enough for tests; ``changes`` replace TrainConfig fields."""
    base = TrainConfig(
        env=EnvConfig("GoalCycle-3", max_steps=16),
        agents=(NOVICE, ORACLE, ORACLE),
        ppo=PPOConfig(num_envs=2, num_minibatches=2, minibatch_segments=2, recompute_every=1),
        total_env_steps=4 * 2 * 16,
        updates_per_chunk=1,
        checkpoint_every=1,
        run_dir=run_dir,
        progress=False,
        baseline_episodes=0,
    )
    return dataclasses.replace(base, **changes)
