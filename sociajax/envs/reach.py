"""Reach-the-goal worlds (Four Rooms, Maze) used for zero-shot transfer.

An agent that enters the goal earns ``1 - 0.9 * t / T`` (t steps used, T the time limit),
is done, stays visible on the goal and ignores further actions; the episode ends when every
agent is done or at the time limit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sociajax.envs import tiles
from sociajax.envs.core import EnvParams, EnvState, MultiAgentGridEnv
from sociajax.envs.maze_gen import generate_maze


class ReachGoalEnv(MultiAgentGridEnv):
    """Shared rules of the transfer worlds."""

    goal_char = "G"

    def _goal_rewards(self, state, entered, goal_index, time, params):
        del goal_index
        scored = entered & ~state.agent_done
        reward = jnp.where(scored, 1.0 - 0.9 * time / params.max_steps, 0.0)
        return reward, state.last_goal, state.agent_done | scored

    def _episode_over(self, state: EnvState, params: EnvParams) -> jax.Array:
        return jnp.all(state.agent_done | ~state.present) | (state.time >= params.max_steps)


def _pick_distinct(key: jax.Array, allowed: jax.Array, count: int) -> jax.Array:
    """``count`` flat indices of distinct allowed cells, uniformly at random.

    If fewer than ``count`` cells are allowed, the extra picks repeat allowed cells (agents are
    ghosts and may share a cell) rather than landing on a forbidden one.
    """
    scores = jax.random.uniform(key, allowed.shape) + allowed.astype(jnp.float32) * 2.0
    top_scores, picks = jax.lax.top_k(scores, count)
    return jnp.where(top_scores >= 2.0, picks, picks[0])


class FourRooms(ReachGoalEnv):
    """17x17 Four Rooms: the goal on one of nine fixed cells, agents spawn in the top-left room."""

    name = "FourRooms"

    def __init__(self, n_agents: int = 2, size: int = 17, **kwargs) -> None:
        super().__init__(height=size, width=size, n_agents=n_agents, n_goals=1, **kwargs)
        if size < 9:
            raise ValueError(f"size must be >= 9, got size={size}")
        grid = np.zeros((size, size), np.uint8)
        grid[[0, -1], :] = grid[:, [0, -1]] = tiles.WALL
        mid = size // 2
        grid[mid, :] = grid[:, mid] = tiles.WALL
        for x, y in [(size // 4, mid), (mid, size // 4), ((3 * size - 1) // 4, mid), (mid, (3 * size - 1) // 4)]:
            grid[y, x] = tiles.FLOOR
        self._walls = grid
        # The original's goal candidates: diagonal neighbours of the room corners and centre
        # that lie strictly inside (1 < x, y < size - 1).
        anchors = [0, mid, size - 1]
        candidates = []
        for ax in anchors:
            for ay in anchors:
                for dx, dy in [(1, 1), (1, -1), (-1, 1), (-1, -1)]:
                    x, y = ax + dx, ay + dy
                    if 1 < x < size - 1 and 1 < y < size - 1 and (x, y) not in candidates:
                        candidates.append((x, y))
        self._goal_candidates = np.asarray(candidates, np.int32)
        box = size // 4 - 1
        spawn = np.zeros((size, size), bool)
        spawn[1 : 1 + box, 1 : 1 + box] = True
        self._spawn = spawn & (grid == tiles.FLOOR)
        if n_agents > int(self._spawn.sum()):
            raise ValueError(f"n_agents={n_agents} does not fit in the {int(self._spawn.sum())} spawn cells")

    def _generate(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, ...]:
        key_goal, key_spawn, key_dir = jax.random.split(key, 3)
        goal = jnp.asarray(self._goal_candidates)[
            jax.random.randint(key_goal, (), 0, len(self._goal_candidates))
        ][None]
        grid = jnp.asarray(self._walls).at[goal[0, 1], goal[0, 0]].set(tiles.GOAL)
        spawn = jnp.asarray(self._spawn).ravel() & (grid.ravel() == tiles.FLOOR)
        flat = _pick_distinct(key_spawn, spawn, self.n_agents)
        agents = jnp.stack([flat % self.width, flat // self.width], -1)
        agent_dir = jax.random.randint(key_dir, (self.n_agents,), 0, 4)
        return grid, goal, agents, agent_dir


@struct.dataclass
class MazeParams(EnvParams):
    """Maze parameters. ``extra_connection_prob`` opens extra walls (loops) after carving."""

    extra_connection_prob: float | jax.Array = 0.0


class Maze(ReachGoalEnv):
    """19x19 maze generated in JAX from the key; agents spawn near the candidate farthest from
    the goal, as the original did (five random candidates, 3x3 box around the farthest)."""

    name = "Maze"
    params_cls = MazeParams

    def __init__(self, n_agents: int = 2, size: int = 19, n_spawn_candidates: int = 5, **kwargs) -> None:
        super().__init__(height=size, width=size, n_agents=n_agents, n_goals=1, **kwargs)
        if size < 5 or size % 2 == 0:
            raise ValueError(f"size must be odd and >= 5, got size={size}")
        if n_spawn_candidates < 1:
            raise ValueError(f"n_spawn_candidates must be >= 1, got n_spawn_candidates={n_spawn_candidates}")
        self.n_spawn_candidates = n_spawn_candidates

    def _generate(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, ...]:
        key_maze, key_goal, key_spawn, key_dir = jax.random.split(key, 4)
        walls = generate_maze(key_maze, self.height, self.width, params.extra_connection_prob)
        free = ~walls.ravel()
        # One goal and the spawn candidates: distinct random open cells.
        picks = _pick_distinct(key_goal, free, 1 + self.n_spawn_candidates)
        xy = jnp.stack([picks % self.width, picks // self.width], -1)
        goal, candidates = xy[:1], xy[1:]
        far = candidates[jnp.argmax(jnp.abs(candidates - goal).sum(-1))]
        ys, xs = jnp.divmod(jnp.arange(self.height * self.width), self.width)
        box = (jnp.abs(xs - far[0]) <= 1) & (jnp.abs(ys - far[1]) <= 1)
        flat = _pick_distinct(key_spawn, box & free & (jnp.arange(free.size) != picks[0]), self.n_agents)
        agents = jnp.stack([flat % self.width, flat // self.width], -1)
        grid = jnp.where(walls, tiles.WALL, tiles.FLOOR).astype(jnp.uint8)
        grid = grid.at[goal[0, 1], goal[0, 0]].set(tiles.GOAL)
        agent_dir = jax.random.randint(key_dir, (self.n_agents,), 0, 4)
        return grid, goal, agents, agent_dir
