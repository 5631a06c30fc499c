"""Shared helpers for the env tests: cached envs whose functions are jitted once per session.

Compiling is the slow part of these tests, so every (env id, shape options) pair is built
once and its jitted functions are reused by every test module. Params are traced arguments
of those functions, so overrides such as ``penalty`` or ``max_steps`` (from
``sociajax.make``) need no recompile. Tests keep to a few grid shapes for the same reason.
"""

from __future__ import annotations

import os

# Tests check behaviour, not speed, and compiling dominates them: the whole session (and the
# subprocesses it starts, unless they set their own flags) takes XLA's cheapest CPU compile.
# Set before the first computation, when XLA reads its flags.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")

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
HORIZON = 128  # steps of every rollout (one compiled scan per env)
# The batches of resets every module shares: env id -> (count, seed). Goal Cycle 3 comes
# from ``VecEnv.reset`` (a jitted vmap of ``env.reset``); the others from the auto-resets of a
# rollout with max_steps=1 (every step ends an episode), which saves compiling another reset.
RESETS = {"GoalCycle-3": (200, 42), "GoalCycle-4": (HORIZON, 7), "FourRooms": (HORIZON, 5)}

# Test-side jits skip XLA's slow backend optimisations: compiling dominates these tests, and
# the results do not depend on it (integer gathers, and float ops without fast-math).
COMPILER_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def fast_jit(fun: Callable, **kwargs: Any) -> Callable:
    """``jax.jit`` with :data:`COMPILER_OPTIONS`."""
    return jax.jit(fun, compiler_options=COMPILER_OPTIONS, **kwargs)


@dataclass
class Kit:
    """An env, its default params and its jitted functions (each compiled on first use)."""

    env: Any
    params: Any
    _cache: dict = field(default_factory=dict)

    def _jit(self, name: str, build: Callable[[], Callable]) -> Callable:
        if name not in self._cache:
            self._cache[name] = build()
        return self._cache[name]

    def _p(self, params):
        return self.params if params is None else params

    def step_state(self, state, actions, params=None):
        f = self._jit("step_state", lambda: fast_jit(self.env.step_state))
        return f(state, jnp.asarray(actions, jnp.int32), self._p(params))

    def get_obs(self, state, params=None):
        f = self._jit("get_obs", lambda: fast_jit(self.env.get_obs))
        return f(state, self._p(params))

    def resets(self, n: int, seed: int):
        """(obs, states) of ``n`` fresh episodes from PRNGKey(seed), as NumPy (cached)."""
        name = f"resets-{n}-{seed}"
        if name not in self._cache:
            self._cache[name] = self.compute_resets(n, seed)
        return self._cache[name]

    def compute_resets(self, n: int, seed: int):
        """``n == HORIZON``: the auto-resets of one rollout with max_steps=1 (reusing the
        compiled rollout); otherwise ``sociajax.VecEnv(env, n).reset``, jitted."""
        key = jax.random.PRNGKey(seed)
        if n == HORIZON:
            params = self.params.replace(max_steps=1)
            actions = np.full((HORIZON, self.env.n_agents), 6, np.int32)
            obs, states, _, done, _ = self.rollout(jax.random.split(key, n), start_state(self), actions, params)
            assert bool(np.all(done))
        else:
            reset = self._jit(f"vec-reset-{n}", lambda: fast_jit(sociajax.VecEnv(self.env, n).reset))
            obs, states = reset(key, self.params)
        return np.asarray(obs), jax.device_get(states)

    def rollout(self, keys, state, actions, params=None):
        """``env.step`` (with its auto-reset) scanned over keys [T] and actions [T, A]:
        stacked (obs, state, reward, done, info) after each step."""

        def build():
            env = self.env

            def roll(keys, state, actions, params):
                def body(s, xs):
                    k, a = xs
                    obs, s, reward, done, info = env.step(k, s, a, params)
                    return s, (obs, s, reward, done, info)

                return jax.lax.scan(body, state, (keys, actions))[1]

            return fast_jit(roll)

        return self._jit("rollout", build)(keys, state, jnp.asarray(actions, jnp.int32), self._p(params))

    def from_layout(self, layout, pos, dirs, params=None):
        return self.env.reset_from_layout(KEY, self._p(params), layout, pos, dirs)

    def run(self, state, action_rows, params=None):
        """Apply step_state for each row of actions: [(state, reward, done)] per step."""
        out = []
        for actions in action_rows:
            state, reward, done = self.step_state(state, actions, params)
            out.append((state, np.asarray(reward), bool(done)))
        return out


def start_state(kit: Kit):
    """A hand-built state of the env's default shape (a goal row, agents below it)."""
    env = kit.env
    size = env.height
    rows = [["#" if x in (0, size - 1) or y in (0, size - 1) else "." for x in range(size)] for y in range(size)]
    for g in range(env.n_goals):
        rows[1][1 + g] = str(g) if isinstance(env, sociajax.GoalCycle) else "G"
    pos = [[1 + a, 3] for a in range(env.n_agents)]
    return kit.from_layout(["".join(r) for r in rows], pos, [0] * env.n_agents)[1]


@functools.lru_cache(maxsize=None)
def _kit(env_id: str, static: tuple) -> Kit:
    env, params = sociajax.make(env_id, **dict(static))
    return Kit(env, params)


def get_kit(env_id: str, **static: Any) -> Kit:
    return _kit(env_id, tuple(sorted(static.items())))


@pytest.fixture(scope="session")
def kit() -> Callable[..., Kit]:
    """``kit("GoalCycle-3", n_agents=1)``: a cached env with jitted functions."""
    return get_kit


# ---------------------------------------------------------------------- NumPy helpers
def tile(view: np.ndarray, row: int, col: int, t: int = 3) -> np.ndarray:
    """Pixels [t, t, 3] of view cell (row, col)."""
    return np.asarray(view)[row * t : row * t + t, col * t : col * t + t]


def is_flat(pixels: np.ndarray, rgb) -> bool:
    """Every pixel equals ``rgb``."""
    return bool((np.asarray(pixels).reshape(-1, 3) == np.asarray(rgb)).all())


def sprite_red(direction_in_view: int, t: int = 3) -> np.ndarray:
    """Red channel of a prestige-0 (pure red) agent drawn pointing ``direction_in_view``
    in the image (0 right, 1 down, 2 left, 3 up)."""
    return (tiles.agent_alpha(t)[direction_in_view, 3].astype(np.int64) * 255) >> 8


def bfs_reachable(free: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """bool [H, W]: cells 4-connected to start=(x, y) through ``free`` cells."""
    height, width = free.shape
    seen = np.zeros(free.shape, bool)
    x0, y0 = int(start[0]), int(start[1])
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


def agent_cells(agent_pos: np.ndarray, agent_dir: np.ndarray, view: int = 7, own_row: int = 5) -> np.ndarray:
    """bool [..., A observer, view, view]: view cells where some agent stands (observer included).

    agent_pos int [..., A, 2], agent_dir int [..., A]; written from the view geometry
    (row = own_row - cells ahead, column = 3 + cells to the right), not from the library.
    """
    pos = np.asarray(agent_pos)
    dirs = np.asarray(agent_dir)
    vec = np.array([DIR_VEC[d] for d in range(4)])
    fwd = vec[dirs]  # [..., A, 2]
    right = vec[(dirs + 1) % 4]
    rel = pos[..., None, :, :] - pos[..., :, None, :]  # [..., observer, other, 2]
    row = own_row - (rel * fwd[..., :, None, :]).sum(-1)
    col = view // 2 + (rel * right[..., :, None, :]).sum(-1)
    inside = (row >= 0) & (row < view) & (col >= 0) & (col < view)
    mask = np.zeros(pos.shape[:-1] + (view, view), bool)
    idx = np.nonzero(inside)
    mask[idx[:-1] + (row[idx], col[idx])] = True
    return mask


def check_views(
    obs: np.ndarray, agent_pos: np.ndarray, agent_dir: np.ndarray, grid_shape: tuple[int, int] | None = None
) -> None:
    """Views [..., A, 21, 21, 3]: uint8; the three cells right behind the observer are seen
    (the original's line of sight, the default) where they are inside the map; every tile
    without an agent is one flat colour of the atlas (floor, wall, goal, shadow).

    ``grid_shape`` (H, W) is needed only where agents may stand on the map's edge (maps
    without an outer wall ring); otherwise every cell around an agent is inside the map.
    """
    obs = np.asarray(obs)
    assert obs.dtype == np.uint8 and obs.shape[-3:] == (21, 21, 3)
    cells = obs.reshape(obs.shape[:-3] + (7, 3, 7, 3, 3)).swapaxes(-4, -3)  # [..., 7, 7, 3, 3, 3]
    behind_is_shadow = (cells[..., 6, 2:5, :, :, :] == np.asarray(SHADOW_RGB, np.uint8)).all(axis=(-3, -2, -1))
    inside = np.ones(behind_is_shadow.shape, bool)
    if grid_shape is not None:
        vec = np.array([DIR_VEC[d] for d in range(4)])
        pos, dirs = np.asarray(agent_pos), np.asarray(agent_dir)
        fwd, right = vec[dirs], vec[(dirs + 1) % 4]  # [..., A, 2]
        for k, side in enumerate((-1, 0, 1)):
            x, y = np.moveaxis(pos - fwd + side * right, -1, 0)
            inside[..., k] = (x >= 0) & (x < grid_shape[1]) & (y >= 0) & (y < grid_shape[0])
    assert (behind_is_shadow == ~inside).all()  # seen inside the map, shadow outside it
    first = cells[..., :1, :1, :]
    flat = (cells == first).all(axis=(-3, -2, -1))
    colour = first[..., 0, 0, :].astype(np.int64)
    in_palette = np.zeros(flat.shape, bool)
    for rgb in PALETTE:
        in_palette |= (colour == np.asarray(rgb)).all(-1)
    ok = (flat & in_palette) | agent_cells(agent_pos, agent_dir)
    assert ok.all(), np.argwhere(~ok)[:5]
