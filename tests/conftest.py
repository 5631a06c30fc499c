"""Shared helpers for the env tests: cached envs with functions jitted once per session.

Compiling is the slow part of these tests, so every (env id, shape options) pair is built
once and its jitted functions are reused. Params are traced arguments of those functions, so
overrides such as ``penalty`` or ``max_steps`` (from ``sociajax.make``) need no recompile.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sociajax
from sociajax.envs import tiles

KEY = jax.random.PRNGKey(0)
DIR_VEC = {0: (1, 0), 1: (0, 1), 2: (-1, 0), 3: (0, -1)}  # east, south, west, north
WALL_RGB = (74, 65, 42)
GOAL_RGB = (255, 255, 0)
SHADOW_RGB = (35, 25, 30)
FLOOR_RGB = (0, 0, 0)
PALETTE = (FLOOR_RGB, WALL_RGB, GOAL_RGB, SHADOW_RGB)


@dataclass
class Kit:
    """An env, its default params and its jitted functions (compiled on first use)."""

    env: Any
    params: Any
    _cache: dict = field(default_factory=dict)

    def _jit(self, name: str, build: Callable[[], Callable]) -> Callable:
        if name not in self._cache:
            self._cache[name] = build()
        return self._cache[name]

    def step_state(self, state, actions, params=None):
        f = self._jit("step_state", lambda: jax.jit(self.env.step_state))
        return f(state, jnp.asarray(actions, jnp.int32), self.params if params is None else params)

    def step(self, key, state, actions, params=None):
        f = self._jit("step", lambda: jax.jit(self.env.step))
        return f(key, state, jnp.asarray(actions, jnp.int32), self.params if params is None else params)

    def reset(self, key, params=None):
        f = self._jit("reset", lambda: jax.jit(self.env.reset))
        return f(key, self.params if params is None else params)

    def vreset(self, keys, params=None):
        f = self._jit("vreset", lambda: jax.jit(jax.vmap(self.env.reset, in_axes=(0, None))))
        return f(keys, self.params if params is None else params)

    def get_obs(self, state, params=None):
        f = self._jit("get_obs", lambda: jax.jit(self.env.get_obs))
        return f(state, self.params if params is None else params)

    def from_layout(self, layout, pos, dirs, params=None):
        return self.env.reset_from_layout(KEY, self.params if params is None else params, layout, pos, dirs)

    def run(self, state, action_rows, params=None):
        """Apply step_state for each row of actions; returns [(state, reward, done)] per step."""
        out = []
        for actions in action_rows:
            state, reward, done = self.step_state(state, actions, params)
            out.append((state, np.asarray(reward), bool(done)))
        return out


@functools.lru_cache(maxsize=None)
def _kit(env_id: str, static: tuple) -> Kit:
    env, params = sociajax.make(env_id, **dict(static))
    return Kit(env, params)


@pytest.fixture(scope="session")
def kit() -> Callable[..., Kit]:
    """``kit("GoalCycle-3", n_agents=1)``: a cached env with jitted functions."""

    def get(env_id: str, **static: Any) -> Kit:
        return _kit(env_id, tuple(sorted(static.items())))

    return get


# ---------------------------------------------------------------------- numpy helpers
def tile(view: np.ndarray, row: int, col: int, t: int = 3) -> np.ndarray:
    """Pixels [t, t, 3] of view cell (row, col)."""
    return np.asarray(view)[row * t : row * t + t, col * t : col * t + t]


def is_flat(pixels: np.ndarray, rgb) -> bool:
    return bool((np.asarray(pixels).reshape(-1, 3) == np.asarray(rgb)).all())


def sprite_red(direction_in_view: int, t: int = 3) -> np.ndarray:
    """Red channel of a prestige-0 (pure red) agent drawn pointing ``direction_in_view``
    (0 right, 1 down, 2 left, 3 up in the image)."""
    return (tiles.agent_alpha(t)[direction_in_view, 3].astype(np.int64) * 255) >> 8


def bfs_reachable(free: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """bool [H, W] cells 4-connected to start=(x, y) through ``free`` cells."""
    height, width = free.shape
    seen = np.zeros_like(free, bool)
    x0, y0 = start
    if not free[y0, x0]:
        return seen
    stack = [(x0, y0)]
    seen[y0, x0] = True
    while stack:
        x, y = stack.pop()
        for dx, dy in DIR_VEC.values():
            nx, ny = x + dx, y + dy
            if 0 <= nx < width and 0 <= ny < height and free[ny, nx] and not seen[ny, nx]:
                seen[ny, nx] = True
                stack.append((nx, ny))
    return seen


def index_tree(tree, i):
    return jax.tree.map(lambda a: a[i], tree)
