"""Piecewise-constant schedules over episodes trained, written as short strings.

``"1.0"`` is a constant; ``"-0.5,-1.0@81920,-1.5@163840"`` is -0.5 from the start, -1.0 from
episode 81,920 on and -1.5 from episode 163,840 on (episodes are counted per seed, before
each update: update ``u`` runs at the value in force at episode ``u * num_envs``). The same
grammar serves the penalty curriculum of the paper's experts and the presence schedule of
solo/social mixing, and inside the program a schedule is two small arrays, so its values are
data: runs with different schedules share one compiled program.
"""

from __future__ import annotations

import math
from typing import Union

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

ScheduleText = Union[str, float, int]
NEVER = np.iinfo(np.int32).max  # start of a padding stage


def schedule_text(value: ScheduleText) -> str:
    """The canonical string of a schedule given as a number or a string."""
    if isinstance(value, bool):
        raise ValueError(f"a schedule must be a number or a string like '1.0,0.25@500000', got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return repr(float(value))
    if not isinstance(value, str):
        raise ValueError(f"a schedule must be a number or a string like '1.0,0.25@500000', got {value!r}")
    return value.strip()


def parse_schedule(field: str, value: ScheduleText, low: float = -math.inf, high: float = math.inf) -> tuple[tuple[int, float], ...]:
    """``((start_episode, value), ...)`` with starts 0 < E1 < E2 ...; a ValueError names
    ``field`` and the text when it is malformed or a value is outside [low, high]."""
    text = schedule_text(value)
    hint = "a number, or stages 'V0,V1@E1,V2@E2' (value V from episode E on, E increasing)"
    stages: list[tuple[int, float]] = []
    for index, item in enumerate(text.split(",")):
        head, sep, tail = item.strip().partition("@")
        try:
            number = float(head)
            start = int(tail) if sep else 0
        except ValueError:
            raise ValueError(f"{field}={text!r} is not a schedule: {hint}") from None
        if sep and index == 0 and start != 0:
            raise ValueError(f"{field}={text!r}: the first stage starts at episode 0, got @{start}")
        if index > 0 and not sep:
            raise ValueError(f"{field}={text!r}: stage {index} needs its start episode (V@E)")
        if stages and start <= stages[-1][0]:
            raise ValueError(f"{field}={text!r}: stage starts must increase, got {start} after {stages[-1][0]}")
        if start >= NEVER:
            raise ValueError(f"{field}={text!r}: start episode {start} is too large")
        if not math.isfinite(number) or not low <= number <= high:
            raise ValueError(f"{field}={text!r}: values must be finite and in [{low}, {high}], got {number}")
        stages.append((start, number))
    return tuple(stages)


@struct.dataclass
class Schedule:
    """A schedule as data: ``starts`` int32 [..., K] (episode each stage begins; padding
    stages start at :data:`NEVER`), ``values`` float32 [..., K]."""

    starts: jax.Array
    values: jax.Array

    @classmethod
    def of(cls, stages: tuple[tuple[int, float], ...], num_stages: int) -> "Schedule":
        """NumPy arrays padded to ``num_stages`` stages (the padding never comes into force)."""
        starts = np.full(num_stages, NEVER, np.int32)
        values = np.full(num_stages, stages[-1][1], np.float32)
        for i, (start, value) in enumerate(stages):
            starts[i], values[i] = start, value
        return cls(starts=starts, values=values)

    def at(self, episodes: jax.Array) -> jax.Array:
        """The value in force after ``episodes`` episodes (traceable; [...])."""
        stage = jnp.sum(self.starts <= episodes, axis=-1) - 1
        return jnp.take_along_axis(self.values, jnp.maximum(stage, 0)[..., None], axis=-1)[..., 0]

