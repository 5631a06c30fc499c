"""What sets the compiled program, what is data, and conditions x seeds as one program.

A :class:`~sociajax.training.config.TrainConfig` mixes two kinds of field:

* **data** (:data:`DATA_FIELDS`): numbers and choices that the compiled program reads from
  arrays — learning rates, loss coefficients, which auxiliary target, PPO or behaviour
  cloning, whom an imitation learner clones, presence and penalty schedules, a scripted
  expert's imperfection (``epsilon``), the checkpoint an agent starts from. They may differ between the conditions of one program.
* **static**: everything else — the world and its sizes, the number and roles of agents,
  scripted policies, the PPO schedule's integers, network speed settings. They set shapes or
  code paths, so changing one compiles another program; a condition that tries is refused,
  naming the field.

``TrainConfig.conditions`` lists conditions as ``"NAME: FIELD=VALUE FIELD=VALUE"`` (the name
is optional), and :func:`grid_conditions` builds the product of ``FIELD=V1,V2`` grids. The
trainer then runs every condition and every seed as one batch of *runs*: run ``r`` is
condition ``r // num_seeds`` with seed ``seed + r % num_seeds`` (the same seeds in every
condition, so conditions are compared seed for seed), one compile, one run folder.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import typing
from typing import Any, Optional, Sequence

import jax
import numpy as np
from flax import struct

from sociajax.agents.ppo import LearnerData, PPOConfig
from sociajax.training.config import AgentConfig, EnvConfig, TrainConfig, imitated_agent
from sociajax.training.schedule import Schedule, parse_schedule

# The data fields: a grid or a condition may set these and nothing else ("N" is an agent).
DATA_FIELDS: dict[str, str] = {
    "env.penalty": "reward for a wrong goal: a number or a schedule over episodes",
    "agents.N.lr": "learning rate (0: the learner never changes)",
    "agents.N.aux": "auxiliary loss on or off (off: the paper's vanilla PPO)",
    "agents.N.aux_target": "next (PRED) or current (REC) view",
    "agents.N.objective": "ppo, or bc (behaviour cloning of agents.N.imitate)",
    "agents.N.imitate": "the agent an imitation learner clones",
    "agents.N.presence": "probability of taking part in an episode: a number or a schedule",
    "agents.N.epsilon": "a scripted agent's chance per step of a random move instead (an imperfect expert)",
    "agents.N.load_from": "run folder of the agent's initial params",
    "agents.N.load_agent": "agent index in that run",
    "agents.N.load_seed": "seed index in that run (None: seed-matched)",
    "agents.N.load_update": "checkpoint of that run (None: the last)",
    **{
        f"ppo.{name}": "PPO coefficient"
        for name in (
            "gamma", "gae_lambda", "clip_eps", "value_coef", "entropy_coef", "aux_coef", "target_kl", "hard_kl",
            "max_grad_norm",
        )
    },
}


def is_data_field(path: str) -> bool:
    """Whether ``path`` (e.g. ``agents.0.lr``) is a data field."""
    pattern = ".".join("N" if part.isdigit() else part for part in path.split("."))
    return pattern in DATA_FIELDS


# ---------------------------------------------------------------------- parsing
def _field_type(kind: type, name: str) -> Any:
    hints = typing.get_type_hints(kind)
    if name not in hints:
        raise KeyError(name)
    return hints[name]


def _parse_value(path: str, kind: Any, text: str) -> Any:
    """``text`` as a value of type ``kind`` (int, float, bool, str, Literal, Optional)."""
    origin = typing.get_origin(kind)
    if origin is typing.Union:
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if text.lower() == "none":
            return None
        return _parse_value(path, options[0], text)
    if origin is typing.Literal:
        choices = typing.get_args(kind)
        if text not in choices:
            raise ValueError(f"{path} must be one of {choices}, got {text!r}")
        return text
    if kind is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"{path} must be true or false, got {text!r}")
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise ValueError(f"{path} must be a {kind.__name__}, got {text!r}") from None
    return text


def set_field(config: TrainConfig, path: str, text: str) -> TrainConfig:
    """``config`` with the field at ``path`` (``env.penalty``, ``agents.0.lr``, ``ppo.gamma``;
    dashes read as underscores) set from ``text``; raises ValueError naming the path if it is
    unknown or not a data field."""
    return set_fields(config, ((path, text),))


def set_fields(config: TrainConfig, assignments: Sequence[tuple[str, str]]) -> TrainConfig:
    """``config`` with every ``(path, text)`` of ``assignments`` set (see :func:`set_field`),
    validated once, at the end: checks that tie fields together (``objective=bc`` needs an
    agent to imitate) see the whole condition, whatever order its fields come in."""
    env, ppo, agents = config.env, config.ppo, list(config.agents)
    for path, text in assignments:
        path = path.strip().replace("-", "_")
        parts = path.split(".")
        if not is_data_field(path):
            known = ", ".join(DATA_FIELDS)
            raise ValueError(
                f"{path} is not a data field: it sets the compiled program (shapes or code paths), "
                f"or does not exist, so it cannot differ between conditions of one program; data fields: {known}"
            )
        if parts[0] == "env":
            value = _parse_value(path, _field_type(EnvConfig, parts[1]), text)
            env = dataclasses.replace(env, **{parts[1]: value})
        elif parts[0] == "ppo":
            value = _parse_value(path, _field_type(PPOConfig, parts[1]), text)
            ppo = dataclasses.replace(ppo, **{parts[1]: value})
        else:
            index, name = int(parts[1]), parts[2]
            if not 0 <= index < len(agents):
                raise ValueError(f"{path}: agent index {index} out of range (the config has {len(agents)} agents)")
            value = _parse_value(path, _field_type(AgentConfig, name), text)
            agents[index] = dataclasses.replace(agents[index], **{name: value})
    return dataclasses.replace(config, env=env, ppo=ppo, agents=tuple(agents))


def parse_condition(spec: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``"NAME: FIELD=VALUE FIELD=VALUE"`` -> (name, ((field, value), ...)); without a name,
    the assignments themselves name the condition."""
    name, sep, body = spec.partition(":")
    if not sep or "=" in name:
        name, body = "", spec
    assignments = []
    for item in body.split():
        field, eq, value = item.partition("=")
        if not eq or not field or not value:
            raise ValueError(f"condition {spec!r}: {item!r} is not FIELD=VALUE")
        assignments.append((field, value))
    name = name.strip() or " ".join(f"{f}={v}" for f, v in assignments) or "base"
    return name, tuple(assignments)


def grid_conditions(grids: Sequence[str]) -> tuple[str, ...]:
    """Conditions of the product of grids ``"FIELD=V1,V2"`` (``|`` separates values that
    themselves hold commas, such as schedules: ``"env.penalty=-0.5,-1.0@81920|-1.5"``)."""
    axes = []
    for grid in grids:
        field, eq, values = grid.partition("=")
        if not eq or not field.strip() or not values:
            raise ValueError(f"--grid {grid!r} is not FIELD=V1,V2,...")
        options = values.split("|") if "|" in values else values.split(",")
        if any(not o.strip() for o in options):
            raise ValueError(f"--grid {grid!r} has an empty value")
        axes.append([(field.strip(), o.strip()) for o in options])
    return tuple(" ".join(f"{f}={v}" for f, v in combo) for combo in itertools.product(*axes))


def condition_configs(config: TrainConfig) -> list[tuple[str, TrainConfig]]:
    """(name, full config) per condition; ``[("base", config)]`` without conditions. Each
    condition's config is validated; names must be unique."""
    if not config.conditions:
        return [("base", config)]
    base = dataclasses.replace(config, conditions=())
    out: list[tuple[str, TrainConfig]] = []
    for spec in config.conditions:
        name, assignments = parse_condition(spec)
        try:
            condition = set_fields(base, assignments)
        except ValueError as err:
            raise ValueError(f"conditions: {name!r}: {err}") from None
        out.append((name, condition))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"conditions: names must be unique, got {names}")
    return out


def static_config(config: TrainConfig) -> TrainConfig:
    """``config`` with every data field at its default and no conditions: what the compiled
    program depends on. Configs with equal static configs share one program."""
    agents = tuple(
        dataclasses.replace(
            agent,
            **{f.name: f.default for f in dataclasses.fields(AgentConfig) if is_data_field(f"agents.0.{f.name}")},
        )
        for agent in config.agents
    )
    ppo_defaults = {f.name: f.default for f in dataclasses.fields(PPOConfig) if is_data_field(f"ppo.{f.name}")}
    return dataclasses.replace(
        config,
        env=dataclasses.replace(config.env, penalty=None),
        agents=agents,
        ppo=dataclasses.replace(config.ppo, **ppo_defaults),
        conditions=(),
    )


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

