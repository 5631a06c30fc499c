"""``make(env_id, **overrides)``: build an environment and its default params by name."""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any, Callable

from sociajax.envs.core import EnvParams, MultiAgentGridEnv, check_params
from sociajax.envs.goal_cycle import GoalCycle
from sociajax.envs.reach import FourRooms, Maze

_GOAL_CYCLE = re.compile(r"^GoalCycle-(\d+)$")

_FIXED: dict[str, Callable[..., MultiAgentGridEnv]] = {
    "FourRooms": FourRooms,
    "Maze": Maze,
}


def registered_envs() -> list[str]:
    """Ids ``make`` accepts (``GoalCycle-N`` works for any N from 1 to 10)."""
    return ["GoalCycle-3", "GoalCycle-4", *sorted(_FIXED)]


def _constructor(env_id: str) -> tuple[Callable[..., MultiAgentGridEnv], dict[str, Any]]:
    match = _GOAL_CYCLE.match(env_id) if isinstance(env_id, str) else None
    if match:
        return GoalCycle, {"n_goals": int(match.group(1))}
    if isinstance(env_id, str) and env_id in _FIXED:
        return _FIXED[env_id], {}
    raise ValueError(f"unknown env id {env_id!r}; known: {registered_envs()} (GoalCycle-N for any N)")


def make(env_id: str, **overrides: Any) -> tuple[MultiAgentGridEnv, EnvParams]:
    """Return ``(env, params)`` for ``env_id``.

    Keyword overrides go to the environment's constructor when they set a shape (``n_agents``,
    ``size``, ``n_walls``, ...) and to its params otherwise (``penalty``, ``max_steps``,
    ``prestige_decay``, ...). An unknown keyword raises a ValueError naming it.
    """
    cls, kwargs = _constructor(env_id)
    static = set(inspect.signature(cls.__init__).parameters) | set(
        inspect.signature(MultiAgentGridEnv.__init__).parameters
    )
    static -= {"self", "kwargs"}
    if cls is not GoalCycle:
        static -= {"height", "width"}  # Four Rooms and Maze are square: use size
    dynamic = {f.name for f in dataclasses.fields(cls.params_cls)}
    param_values: dict[str, Any] = {}
    for name, value in overrides.items():
        if name in dynamic:
            param_values[name] = value
        elif name in static:
            kwargs[name] = value
        else:
            raise ValueError(
                f"unknown option {name}={value!r} for {env_id}; shape options: {sorted(static)}, "
                f"params: {sorted(dynamic)}"
            )
    if "n_goals" in overrides and _GOAL_CYCLE.match(env_id):
        raise ValueError(f"n_goals={overrides['n_goals']!r} conflicts with {env_id!r}; use GoalCycle-N")
    env = cls(**kwargs)
    params = cls.params_cls(**param_values)
    check_params(params)
    return env, params
