"""The multi-agent gridworld shared by Goal Cycle, Four Rooms and Maze.

State and params are immutable pytrees; every transition is a pure function, so whole
batches of episodes run under ``jax.vmap`` / ``jax.jit`` / ``lax.scan``. Anything that sets
an array shape (grid size, agent count, goal count, view size) lives on the environment
object as a static Python value; everything else lives in ``EnvParams`` and may be traced.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sociajax.envs import rendering, tiles

NUM_ACTIONS = 7
# MiniGrid's action names; only the first three do anything in these worlds.
ACTION_NAMES = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
LEFT, RIGHT, FORWARD = 0, 1, 2
# NumPy, not a JAX array: importing the package must not start a JAX backend (a multi-host
# run initialises jax.distributed first). Index it as ``jnp.asarray(DIR_VEC)[...]``.
DIR_VEC = rendering.DIR_VEC
_PRESENCE_STREAM = 0x5EED  # fold_in tag of the reset key's presence draw


@struct.dataclass
class EnvParams:
    """Traced environment parameters: one compiled step serves any values of these."""

    max_steps: int | jax.Array = 250
    prestige_decay: float | jax.Array = 0.99
    prestige_scale: float | jax.Array = 4.0
    # Probability that each agent takes part in an episode, scalar or float32 [A], drawn at
    # reset from ONE uniform per episode (agent i is present when u < presence[i]), so agents
    # of equal presence come and go together: presence 0.25 for both experts gives episodes
    # that are 25% social and 75% solo, not four mixes. An absent agent is drawn in no view,
    # never acts and earns nothing (solo training = experts at presence 0, the same program).
    presence: float | jax.Array = 1.0


@struct.dataclass
class EnvState:
    """Everything about one episode. Positions are (x = column, y = row).

    grid: uint8 [H, W] cell kinds (``tiles.FLOOR``, ``tiles.WALL``, ``tiles.GOAL``).
    goal_pos: int32 [G, 2]; in Goal Cycle, goal i is the i-th goal of the (hidden) cycle.
    agent_pos: int32 [A, 2]; agent_dir: int32 [A] (0 east, 1 south, 2 west, 3 north).
    prestige: float32 [A] decayed reward sum that colours the agent in others' views.
    last_goal: int32 [A] index of the last goal the agent got right (-1: none yet).
    agent_done: bool [A] agent reached the goal and stopped (Four Rooms, Maze).
    time: int32 steps taken in this episode.
    episode_return: float32 [A] reward summed over this episode so far.
    present: bool [A] the agent takes part in this episode (``EnvParams.presence``).
    """

    grid: jax.Array
    goal_pos: jax.Array
    agent_pos: jax.Array
    agent_dir: jax.Array
    prestige: jax.Array
    last_goal: jax.Array
    agent_done: jax.Array
    time: jax.Array
    episode_return: jax.Array
    present: jax.Array


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


class MultiAgentGridEnv(abc.ABC):
    """Base class: movement, rewards on entering goals, prestige, views, auto-reset.

    Subclasses provide ``_generate`` (a random initial layout), ``_goal_rewards`` (what
    entering a goal pays) and ``_episode_over``. Agents are ghosts: they share cells freely.
    """

    name: str = "GridWorld"
    goal_char: str = "G"
    params_cls: type = EnvParams

    def __init__(
        self,
        height: int,
        width: int,
        n_agents: int,
        n_goals: int,
        view_size: int = 7,
        view_offset: int = 1,
        tile_px: int = 3,
        occlusion: str = "original",
    ) -> None:
        _check_int("n_agents", n_agents, low=1)
        _check_int("n_goals", n_goals, low=1)
        _check_int("height", height, low=3)
        _check_int("width", width, low=3)
        _check_int("view_size", view_size, low=3)
        if view_size % 2 == 0:
            raise ValueError(f"view_size must be odd, got view_size={view_size}")
        _check_int("view_offset", view_offset, low=0, high=view_size - 1)
        _check_int("tile_px", tile_px, low=1)
        if not isinstance(occlusion, str) or occlusion not in rendering.OCCLUSION_RULES:
            raise ValueError(
                f"occlusion must be one of {sorted(rendering.OCCLUSION_RULES)}, got occlusion={occlusion!r}"
            )
        self.height, self.width = height, width
        self.n_agents, self.n_goals = n_agents, n_goals
        self.view_size, self.view_offset, self.tile_px = view_size, view_offset, tile_px
        # Line of sight: "original" is what the paper's agents saw; "minigrid" is process_vis.
        self.occlusion = occlusion

    # ------------------------------------------------------------------ public API
    @property
    def default_params(self) -> EnvParams:
        return self.params_cls()

    @property
    def obs_shape(self) -> tuple[int, int, int, int]:
        side = self.view_size * self.tile_px
        return (self.n_agents, side, side, 3)

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    def reset(self, key: jax.Array, params: EnvParams | None = None) -> tuple[jax.Array, EnvState]:
        """Start an episode: (obs uint8 [A, 21, 21, 3], state). The first view is real."""
        params = self.default_params if params is None else params
        state = self.reset_state(key, params)
        return self.get_obs(state, params), state

    def step(
        self,
        key: jax.Array,
        state: EnvState,
        actions: jax.Array,
        params: EnvParams | None = None,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, jax.Array]]:
        """Advance one step for all agents: (obs, state, reward [A], done, info).

        When the step ends the episode it auto-resets: the returned obs and state are the next
        episode's first, and ``info`` holds the finished episode's ``episode_return`` [A] and
        ``episode_length``. The reset sits in a ``lax.cond``, so a single jitted env only
        builds a new layout when an episode ends; under ``jax.vmap`` the cond becomes a select
        and every step pays for a layout. For batches use :class:`sociajax.VecEnv`, which
        resets only on steps where some episode ended.
        """
        params = self.default_params if params is None else params
        actions = jnp.asarray(actions)
        if _is_concrete(actions):
            self._check_actions(actions)
        next_state, reward, done = self.step_state(state, actions, params)
        info = self._episode_info(next_state)
        state = jax.lax.cond(done, lambda: self.reset_state(key, params), lambda: next_state)
        return self.get_obs(state, params), state, reward, done, info

    @staticmethod
    def _episode_info(state: EnvState) -> dict[str, jax.Array]:
        return {
            "episode_return": state.episode_return,
            "episode_length": state.time,
            "agent_done": state.agent_done,
            "present": state.present,
        }

    def get_obs(self, state: EnvState, params: EnvParams | None = None) -> jax.Array:
        """uint8 [A, V*t, V*t, 3]: every agent's egocentric view of ``state``."""
        params = self.default_params if params is None else params
        return rendering.egocentric_views(
            state.grid,
            state.agent_pos,
            state.agent_dir,
            state.prestige,
            params.prestige_scale,
            self.view_size,
            self.view_offset,
            self.tile_px,
            self.occlusion,
            present=state.present,
        )

    def render(self, state: EnvState, params: EnvParams | None = None, tile_px: int = 16) -> jax.Array:
        """uint8 [H*t, W*t, 3]: the whole grid, agents drawn in their prestige colours."""
        params = self.default_params if params is None else params
        return rendering.full_frame(
            state.grid, state.agent_pos, state.agent_dir, state.prestige, params.prestige_scale, tile_px,
            present=state.present,
        )

    def reset_from_layout(
        self,
        key: jax.Array,
        params: EnvParams | None,
        layout: Sequence[str],
        agent_pos: Any,
        agent_dir: Any,
    ) -> tuple[jax.Array, EnvState]:
        """Start an episode on a hand-written layout (host-side parsing; the state jit-steps).

        layout: equal-length strings, '#' wall, '.' floor, goals as in :meth:`layout`.
        agent_pos int [A, 2] as (x, y); agent_dir int [A] in 0..3.
        """
        del key  # Layouts are fully specified; the key keeps the signature uniform.
        params = self.default_params if params is None else params
        grid, goal_pos = self._parse_layout(layout)
        pos = np.asarray(agent_pos)
        dirs = np.asarray(agent_dir)
        self._check_agents(grid, pos, dirs)
        state = self._initial_state(
            jnp.asarray(grid, jnp.uint8),
            jnp.asarray(goal_pos, jnp.int32),
            jnp.asarray(pos, jnp.int32),
            jnp.asarray(dirs, jnp.int32),
        )
        if not hasattr(self, "_jitted_obs"):
            # Host-side entry point: render the first view compiled, not op by op.
            self._jitted_obs = jax.jit(self.get_obs)
        return self._jitted_obs(state, params), state

    def layout(self, state: EnvState, params: EnvParams | None = None) -> list[str]:
        """The state's map as strings in :meth:`reset_from_layout`'s alphabet (no agents)."""
        del params
        grid = np.asarray(state.grid)
        rows = [["#" if v == tiles.WALL else "." for v in row] for row in grid]
        for index, (x, y) in enumerate(np.asarray(state.goal_pos)):
            rows[y][x] = self._goal_symbol(index)
        return ["".join(row) for row in rows]

    # ------------------------------------------------------------------ transitions
    def reset_state(self, key: jax.Array, params: EnvParams) -> EnvState:
        grid, goal_pos, agent_pos, agent_dir = self._generate(key, params)
        state = self._initial_state(grid, goal_pos, agent_pos, agent_dir)
        # Its own stream (fold_in), so the layout drawn from ``key`` is the same at any presence.
        draw = jax.random.uniform(jax.random.fold_in(key, _PRESENCE_STREAM))
        present = draw < jnp.broadcast_to(jnp.asarray(params.presence, jnp.float32), (self.n_agents,))
        return state.replace(present=present)

    def step_state(
        self, state: EnvState, actions: jax.Array, params: EnvParams
    ) -> tuple[EnvState, jax.Array, jax.Array]:
        """One step without auto-reset: (state, reward [A], done)."""
        acting = ~state.agent_done & state.present
        actions = actions.astype(jnp.int32)
        turn = jnp.where(actions == LEFT, -1, jnp.where(actions == RIGHT, 1, 0))
        agent_dir = jnp.where(acting, (state.agent_dir + turn) % 4, state.agent_dir)
        ahead = state.agent_pos + jnp.asarray(DIR_VEC)[state.agent_dir]
        x, y = ahead[:, 0], ahead[:, 1]
        inside = (x >= 0) & (x < state.grid.shape[1]) & (y >= 0) & (y < state.grid.shape[0])
        cell = state.grid[jnp.clip(y, 0, state.grid.shape[0] - 1), jnp.clip(x, 0, state.grid.shape[1] - 1)]
        moved = acting & (actions == FORWARD) & inside & (cell != tiles.WALL)
        agent_pos = jnp.where(moved[:, None], ahead, state.agent_pos)
        entered_goal = moved & (cell == tiles.GOAL)
        goal_index = jnp.argmax(jnp.all(agent_pos[:, None, :] == state.goal_pos[None], -1), -1)
        time = state.time + 1
        reward, last_goal, agent_done = self._goal_rewards(state, entered_goal, goal_index, time, params)
        reward = reward.astype(jnp.float32)
        # Prestige: decays every step, grows with rewards, and is lost on a penalty.
        prestige = jnp.where(reward < 0, 0.0, params.prestige_decay * state.prestige + reward)
        state = state.replace(
            agent_pos=agent_pos,
            agent_dir=agent_dir,
            prestige=prestige.astype(jnp.float32),
            last_goal=last_goal,
            agent_done=agent_done,
            time=time,
            episode_return=state.episode_return + reward,
        )
        return state, reward, self._episode_over(state, params)

    # ------------------------------------------------------------------ subclass hooks
    @abc.abstractmethod
    def _generate(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, ...]:
        """(grid uint8 [H, W], goal_pos [G, 2], agent_pos [A, 2], agent_dir [A])."""

    @abc.abstractmethod
    def _goal_rewards(
        self, state: EnvState, entered: jax.Array, goal_index: jax.Array, time: jax.Array, params: EnvParams
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(reward [A], last_goal [A], agent_done [A]) after agents entered goals."""

    def _episode_over(self, state: EnvState, params: EnvParams) -> jax.Array:
        return state.time >= params.max_steps

    def _goal_symbol(self, index: int) -> str:
        return self.goal_char

    def _goal_order(self, symbols: list[tuple[str, int, int]]) -> list[tuple[int, int]]:
        """Goal positions from (symbol, x, y) in layout order; subclasses may reorder."""
        return [(x, y) for _, x, y in symbols]

    # ------------------------------------------------------------------ helpers
    def _initial_state(
        self, grid: jax.Array, goal_pos: jax.Array, agent_pos: jax.Array, agent_dir: jax.Array
    ) -> EnvState:
        n_agents = agent_pos.shape[0]
        return EnvState(
            grid=grid.astype(jnp.uint8),
            goal_pos=goal_pos.astype(jnp.int32),
            agent_pos=agent_pos.astype(jnp.int32),
            agent_dir=agent_dir.astype(jnp.int32),
            prestige=jnp.zeros(n_agents, jnp.float32),
            last_goal=jnp.full(n_agents, -1, jnp.int32),
            agent_done=jnp.zeros(n_agents, bool),
            time=jnp.zeros((), jnp.int32),
            episode_return=jnp.zeros(n_agents, jnp.float32),
            present=jnp.ones(n_agents, bool),
        )

    def _layout_alphabet(self) -> str:
        return "#." + self.goal_char

    def _parse_layout(self, layout: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(layout, str) or not all(isinstance(row, str) for row in layout) or len(layout) == 0:
            raise ValueError(f"layout must be a non-empty list of strings, got {layout!r}")
        widths = {len(row) for row in layout}
        if len(widths) != 1:
            raise ValueError(f"layout rows must have equal length, got lengths {[len(r) for r in layout]}")
        alphabet = self._layout_alphabet()
        grid = np.zeros((len(layout), len(layout[0])), np.uint8)
        symbols: list[tuple[str, int, int]] = []
        for y, row in enumerate(layout):
            for x, ch in enumerate(row):
                if ch not in alphabet:
                    raise ValueError(
                        f"layout has character {ch!r} at (x={x}, y={y}); {self.name} accepts {alphabet!r}"
                    )
                if ch == "#":
                    grid[y, x] = tiles.WALL
                elif ch != ".":
                    grid[y, x] = tiles.GOAL
                    symbols.append((ch, x, y))
        if grid.shape != (self.height, self.width):
            raise ValueError(
                f"layout is {grid.shape[1]}x{grid.shape[0]} (width x height) but this {self.name} env is "
                f"{self.width}x{self.height}; auto-resets draw env-sized layouts, so build the env to match "
                f"(make(..., size=N) for a square layout; Goal Cycle also takes height= and width=)"
            )
        if len(symbols) != self.n_goals:
            raise ValueError(f"layout has {len(symbols)} goals but this {self.name} env has n_goals={self.n_goals}")
        return grid, np.asarray(self._goal_order(symbols), np.int32)

    def _check_agents(self, grid: np.ndarray, pos: np.ndarray, dirs: np.ndarray) -> None:
        if pos.shape != (self.n_agents, 2):
            raise ValueError(f"agent_pos must have shape ({self.n_agents}, 2), got {pos.shape}")
        if dirs.shape != (self.n_agents,):
            raise ValueError(f"agent_dir must have shape ({self.n_agents},), got {dirs.shape}")
        if not np.issubdtype(pos.dtype, np.integer):
            raise ValueError(f"agent_pos must hold integers, got agent_pos={pos.tolist()}")
        if not np.issubdtype(dirs.dtype, np.integer):
            raise ValueError(f"agent_dir must hold integers, got agent_dir={dirs.tolist()}")
        for i, (x, y) in enumerate(pos):
            if not (0 <= x < grid.shape[1] and 0 <= y < grid.shape[0]):
                raise ValueError(f"agent_pos[{i}]=({x}, {y}) is outside the {grid.shape[1]}x{grid.shape[0]} layout")
            if grid[y, x] == tiles.WALL:
                raise ValueError(f"agent_pos[{i}]=({x}, {y}) is on a wall")
        for i, d in enumerate(dirs):
            if d not in (0, 1, 2, 3):
                raise ValueError(f"agent_dir[{i}]={d} is not a direction (0 east, 1 south, 2 west, 3 north)")

    def _check_actions(self, actions: jax.Array) -> None:
        if actions.shape != (self.n_agents,):
            raise ValueError(f"actions must have shape ({self.n_agents},), got {actions.shape}")
        bad = np.asarray(actions)
        if bad.min() < 0 or bad.max() >= NUM_ACTIONS:
            raise ValueError(f"actions must be in 0..{NUM_ACTIONS - 1}, got {bad.tolist()}")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(height={self.height}, width={self.width}, "
            f"n_agents={self.n_agents}, n_goals={self.n_goals}, occlusion={self.occlusion!r})"
        )


def _check_int(field: str, value: Any, low: int | None = None, high: int | None = None) -> None:
    """Raise a ValueError naming ``field`` unless ``value`` is an int within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{field} must be an integer, got {field}={value!r}")
    if low is not None and value < low:
        raise ValueError(f"{field} must be >= {low}, got {field}={value}")
    if high is not None and value > high:
        raise ValueError(f"{field} must be <= {high}, got {field}={value}")


def check_params(params: EnvParams) -> None:
    """Validate concrete parameter values, naming the bad field."""
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        if not _is_concrete(value):
            continue
        if not np.all(np.isfinite(np.asarray(value, np.float64))):
            raise ValueError(f"{field.name} must be finite, got {field.name}={value!r}")
    steps = params.max_steps
    if _is_concrete(steps) and (
        isinstance(steps, (bool, np.bool_)) or not np.issubdtype(np.asarray(steps).dtype, np.integer)
    ):
        raise ValueError(f"max_steps must be an integer, got max_steps={steps!r}")
    if _is_concrete(params.max_steps) and np.any(np.asarray(params.max_steps) < 1):
        raise ValueError(f"max_steps must be >= 1, got max_steps={params.max_steps!r}")
    if _is_concrete(params.prestige_decay) and not np.all(
        (np.asarray(params.prestige_decay) >= 0) & (np.asarray(params.prestige_decay) < 1)
    ):
        raise ValueError(f"prestige_decay must be in [0, 1), got prestige_decay={params.prestige_decay!r}")
    presence = params.presence
    if _is_concrete(presence) and not np.all((np.asarray(presence) >= 0) & (np.asarray(presence) <= 1)):
        raise ValueError(f"presence must be in [0, 1], got presence={presence!r}")
    if _is_concrete(params.prestige_scale) and np.any(np.asarray(params.prestige_scale) <= 0):
        raise ValueError(f"prestige_scale must be > 0, got prestige_scale={params.prestige_scale!r}")
