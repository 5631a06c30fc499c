"""Conditions x seeds as one program: the data every run of a program reads.

What a condition may set is declared with each config field (:mod:`sociajax.fields`), and
conditions are parsed and validated with the config (:mod:`sociajax.training.config`:
``DATA_FIELDS``, ``set_fields``, ``condition_configs``, ``static_config``; re-exported here).
Data fields are numbers and choices the compiled program reads from arrays (learning rates,
loss coefficients, auxiliary target, PPO or behaviour cloning, whom an imitation learner
clones, presence and penalty schedules, a scripted expert's ``epsilon``, the checkpoint an
agent starts from); everything else sets shapes or code paths, and a condition that tries to
change it is refused, naming the field.

``TrainConfig.conditions`` lists conditions as ``"NAME: FIELD=VALUE FIELD=VALUE"`` (the name
is optional), and :func:`grid_conditions` builds the product of ``FIELD=V1,V2`` grids. The
trainer then runs every condition and every seed as one batch of *runs*: run ``r`` is
condition ``r // num_seeds`` with seed ``seed + r % num_seeds`` (the same seeds in every
condition, so conditions are compared seed for seed), one compile, one run folder. This
module turns each run's condition into :class:`RunData`.
"""

from __future__ import annotations

import math
from typing import Optional

import jax
import numpy as np
from flax import struct

from sociajax.agents.ppo import LearnerData
from sociajax.training.config import (  # noqa: F401  (parsing lives with the config; re-exported)
    DATA_FIELDS,
    TrainConfig,
    condition_configs,
    grid_conditions,
    imitated_agent,
    is_data_field,
    parse_condition,
    set_field,
    set_fields,
    static_config,
)
from sociajax.training.schedule import Schedule, parse_schedule

# ---------------------------------------------------------------------- data
@struct.dataclass
class RunData:
    """The data of one run (stacked [R] over the runs of a program).

    learners: :class:`LearnerData` [L] (stack order of the population's learners).
    data_agents: int32 [L] whose views and actions train each learner (itself for PPO, the
    cloned agent for behaviour cloning). penalty: :class:`Schedule` [K] (NaN values where the
    world has no penalty). presence: :class:`Schedule` [A, K]. epsilon: f32 [A], each
    scripted agent's chance of a random move (0 for the others).
    """

    learners: LearnerData
    data_agents: jax.Array
    penalty: Schedule
    presence: Schedule
    epsilon: jax.Array


def num_stages(config: TrainConfig) -> int:
    """Stages of the longest schedule over all conditions (a static shape)."""
    longest = 1
    for _, condition in condition_configs(config):
        if condition.env.penalty is not None:
            longest = max(longest, len(parse_schedule("env.penalty", condition.env.penalty)))
        for i, agent in enumerate(condition.agents):
            longest = max(longest, len(parse_schedule(f"agents.{i}.presence", agent.presence)))
    return longest


def run_data_of(config: TrainConfig, default_penalty: Optional[float], stages: int) -> RunData:
    """One condition's :class:`RunData` (NumPy), from its full config."""
    learners = [i for i, a in enumerate(config.agents) if a.role == "learner"]
    rows = []
    for i in learners:
        agent = config.agents[i]
        rows.append(
            LearnerData.of(
                config.ppo,
                lr=agent.lr,
                aux_coef=config.ppo.aux_coef if agent.aux else 0.0,
                aux_target=agent.aux_target,
                objective=agent.objective,
            )
        )
    data_agents = [imitated_agent(config, i) if config.agents[i].objective == "bc" else i for i in learners]
    if config.env.penalty is not None:
        penalty = parse_schedule("env.penalty", config.env.penalty)
    else:
        penalty = ((0, math.nan if default_penalty is None else default_penalty),)
    presence = [parse_schedule(f"agents.{i}.presence", a.presence) for i, a in enumerate(config.agents)]
    stack = lambda trees: jax.tree.map(lambda *x: np.stack(x), *trees)  # noqa: E731
    return RunData(
        learners=stack(rows),
        data_agents=np.asarray(data_agents, np.int32),
        penalty=Schedule.of(penalty, stages),
        presence=stack([Schedule.of(p, stages) for p in presence]),
        epsilon=np.asarray([a.epsilon for a in config.agents], np.float32),
    )


def runs_data(config: TrainConfig, default_penalty: Optional[float]) -> RunData:
    """:class:`RunData` [C * S] of every run: conditions in order, seeds within each."""
    stages = num_stages(config)
    per_condition = [run_data_of(c, default_penalty, stages) for _, c in condition_configs(config)]
    return jax.tree.map(lambda *x: np.repeat(np.stack(x), config.num_seeds, axis=0), *per_condition)


def condition_names(config: TrainConfig) -> list[str]:
    return [name for name, _ in condition_configs(config)]

