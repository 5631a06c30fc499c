"""Goal Cycle: visit N identical goals in a hidden cyclic order; wrong goals cost a penalty.

13x13 by default, outer wall ring, 18 random inner walls, N goals, 3 agents, 250 steps.
Unlike the original, every goal is reachable from every spawn (layouts are resampled until
they are), spawn directions are random, and the first observation is real.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sociajax.envs import tiles
from sociajax.envs.core import EnvParams, MultiAgentGridEnv
from sociajax.envs.grid_ops import reachable


@struct.dataclass
class GoalCycleParams(EnvParams):
    """Goal Cycle parameters. ``penalty`` is paid for a wrong goal (the paper's -1.5)."""

    penalty: float | jax.Array = -1.5


class GoalCycle(MultiAgentGridEnv):
    """Goal Cycle with ``n_goals`` goals; goal ``i`` of ``EnvState.goal_pos`` is i-th in the cycle."""

    name = "GoalCycle"
    goal_char = "0123456789"
    params_cls = GoalCycleParams

    def __init__(
        self,
        n_goals: int = 3,
        n_agents: int = 3,
        size: int = 13,
        n_walls: int | None = None,
        height: int | None = None,
        width: int | None = None,
        **kwargs,
    ) -> None:
        height = size if height is None else height
        width = size if width is None else width
        super().__init__(height=height, width=width, n_agents=n_agents, n_goals=n_goals, **kwargs)
        if height < 5 or width < 5:
            if height == width == size:
                raise ValueError(f"size must be >= 5, got size={size}")
            raise ValueError(f"height and width must be >= 5, got height={height}, width={width}")
        inner = (height - 2) * (width - 2)
        # The original's clutter density: int(0.15 * inner cells) = 18 on 13x13.
        self.n_walls = int(0.15 * inner) if n_walls is None else n_walls
        if isinstance(self.n_walls, bool) or not isinstance(self.n_walls, int) or self.n_walls < 0:
            raise ValueError(f"n_walls must be a non-negative integer, got n_walls={n_walls!r}")
        if n_goals > 10:
            raise ValueError(f"n_goals must be <= 10 (layouts name goals '0'..'9'), got n_goals={n_goals}")
        needed = self.n_walls + n_goals + n_agents
        if needed > inner:
            raise ValueError(
                f"n_walls + n_goals + n_agents = {needed} does not fit in the {inner} inner cells "
                f"of a {width}x{height} grid"
            )
        ys, xs = np.mgrid[1 : height - 1, 1 : width - 1]
        self._inner_cells = np.stack([xs.ravel(), ys.ravel()], -1).astype(np.int32)
        self._border = np.zeros((height, width), np.uint8)
        self._border[[0, -1], :] = tiles.WALL
        self._border[:, [0, -1]] = tiles.WALL

    def _generate(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, ...]:
        key_dir, key_layout = jax.random.split(key)
        cells = jnp.asarray(self._inner_cells)
        n_pick = self.n_walls + self.n_goals + self.n_agents

        def draw(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
            # Distinct cells for walls, goals, then agents: the original's placement order.
            _, picks = jax.lax.top_k(jax.random.uniform(key, (cells.shape[0],)), n_pick)
            chosen = cells[picks]
            walls = chosen[: self.n_walls]
            goals = chosen[self.n_walls : self.n_walls + self.n_goals]
            agents = chosen[self.n_walls + self.n_goals :]
            grid = jnp.asarray(self._border).at[walls[:, 1], walls[:, 0]].set(tiles.WALL)
            grid = grid.at[goals[:, 1], goals[:, 0]].set(tiles.GOAL)
            seed = jnp.zeros(grid.shape, bool).at[goals[0, 1], goals[0, 0]].set(True)
            reach = reachable(grid != tiles.WALL, seed)
            ok = jnp.all(reach[goals[:, 1], goals[:, 0]]) & jnp.all(reach[agents[:, 1], agents[:, 0]])
            return grid, goals, agents, ok

        def redraw(carry):
            key, *_ = carry
            key, sub = jax.random.split(key)
            return (key, *draw(sub))

        key_layout, sub = jax.random.split(key_layout)
        _, grid, goals, agents, _ = jax.lax.while_loop(
            lambda carry: ~carry[-1], redraw, (key_layout, *draw(sub))
        )
        agent_dir = jax.random.randint(key_dir, (self.n_agents,), 0, 4)
        return grid, goals, agents, agent_dir

    def _goal_rewards(self, state, entered, goal_index, time, params):
        first = state.last_goal < 0
        correct = first | (goal_index == (state.last_goal + 1) % self.n_goals)
        reward = jnp.where(entered, jnp.where(correct, 1.0, params.penalty), 0.0)
        last_goal = jnp.where(entered & correct, goal_index, state.last_goal).astype(jnp.int32)
        return reward, last_goal, state.agent_done

    def _goal_symbol(self, index: int) -> str:
        return str(index)

    def _goal_order(self, symbols):
        digits = sorted(int(ch) for ch, _, _ in symbols)
        if digits != list(range(len(digits))):
            raise ValueError(
                f"Goal Cycle layout goals must be '0'..'{len(digits) - 1}' each exactly once, "
                f"got {[ch for ch, _, _ in symbols]}"
            )
        order = sorted(symbols, key=lambda s: int(s[0]))
        return [(x, y) for _, x, y in order]
