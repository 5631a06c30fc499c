"""Scripted policies that act from environment state inside ``jit`` / ``vmap``.

They are the experts of fast experiments and the yardstick of what a perfect agent scores.
Every policy has the same two pure functions, so a population can mix them with learners:

    pstate = policy.init(env_state, agent)       # at the start of each episode
    action, pstate = policy.act(key, pstate, env_state, agent)

``agent`` is the acting agent's index (a Python int or a traced scalar). ``init`` must be
called again when an episode starts over (an auto-reset): the walking experts compute their
shortest-path tables there, once per layout, because walls and goals do not move within an
episode. That keeps every ``act`` free of loops, which matters on GPUs, where each iteration
of a loop inside the rollout's step costs a synchronisation with the host.
"""

from __future__ import annotations

import dataclasses
import numbers

import jax
import jax.numpy as jnp
from flax import struct

from sociajax.envs import tiles
from sociajax.envs.core import DIR_VEC, FORWARD, LEFT, NUM_ACTIONS, RIGHT, EnvState
from sociajax.envs.grid_ops import UNREACHABLE, path_costs

# Price of walking over a goal that is not the target: large enough that experts detour
# around wrong goals whenever a detour exists, finite so they still move when none does.
WRONG_GOAL_PRICE = 1000
NOOP = 6  # "done": does nothing in these worlds


@struct.dataclass
class NoMemory:
    """State of policies that need none."""


@struct.dataclass
class PathMemory:
    """``to_goal`` int32 [G, H, W]: price of the cheapest path from each cell to goal g,
    walking over the other goals at ``WRONG_GOAL_PRICE`` (see :func:`goal_path_costs`)."""

    to_goal: jax.Array


def navigate(dist: jax.Array, pos: jax.Array, direction: jax.Array) -> jax.Array:
    """Action that follows ``dist`` (price to target per cell) downhill from (pos, direction).

    Prefers going straight, then turning right, left, and around, among equally good cells.
    """
    height, width = dist.shape
    order = (direction + jnp.array([0, 1, 3, 2])) % 4  # ahead, right, left, behind
    cells = pos[None, :] + jnp.asarray(DIR_VEC)[order]
    inside = (cells[:, 0] >= 0) & (cells[:, 0] < width) & (cells[:, 1] >= 0) & (cells[:, 1] < height)
    values = jnp.where(
        inside, dist[jnp.clip(cells[:, 1], 0, height - 1), jnp.clip(cells[:, 0], 0, width - 1)], UNREACHABLE
    )
    best = jnp.argmin(values)
    return jnp.array([FORWARD, RIGHT, LEFT, RIGHT], jnp.int32)[best]


def _prices(state: EnvState, targets: jax.Array) -> jax.Array:
    """Per-cell entry prices: walls impassable, goals that are not targets expensive."""
    other_goal = (state.grid == tiles.GOAL) & ~targets
    return jnp.where(
        state.grid == tiles.WALL, UNREACHABLE, jnp.where(other_goal, WRONG_GOAL_PRICE, 1)
    ).astype(jnp.int32)


def _goal_mask(state: EnvState, chosen: jax.Array) -> jax.Array:
    """bool [H, W] marking the goals with ``chosen[g]`` True."""
    mask = jnp.zeros(state.grid.shape, bool)
    return mask.at[state.goal_pos[:, 1], state.goal_pos[:, 0]].max(chosen)


def goal_path_costs(state: EnvState) -> jax.Array:
    """int32 [G, H, W]: for each goal g, the price of the cheapest path to it from each cell,
    the other goals priced ``WRONG_GOAL_PRICE``.

    The price to the nearest goal of any chosen set is the minimum of these over the set,
    exactly: a cheapest path to a set ends at the first chosen goal it meets, so it crosses no
    other chosen goal, and its price toward that goal alone is the same; a path toward one goal
    that crosses another chosen goal costs more than its part up to that goal."""
    n_goals = state.goal_pos.shape[0]

    def one(goal: jax.Array) -> jax.Array:
        targets = _goal_mask(state, jnp.arange(n_goals) == goal)
        return path_costs(_prices(state, targets), targets)

    return jax.vmap(one)(jnp.arange(n_goals))


def _walk_to(state: EnvState, agent: jax.Array | int, chosen_goals: jax.Array, to_goal: jax.Array) -> jax.Array:
    """Shortest-path action toward the nearest chosen goal, avoiding other goals; ``to_goal``
    from :func:`goal_path_costs` of this episode."""
    dist = jnp.min(jnp.where(chosen_goals[:, None, None], to_goal, UNREACHABLE), 0)
    return navigate(dist, state.agent_pos[agent], state.agent_dir[agent])


def _standing_on(state: EnvState, agent: jax.Array | int) -> jax.Array:
    """bool [G]: which goal the agent stands on."""
    return jnp.all(state.goal_pos == state.agent_pos[agent][None], -1)


@dataclasses.dataclass(frozen=True)
class OracleCycler:
    """Goal Cycle expert that knows the hidden order and walks shortest paths.

    First it walks to the nearest goal (any first goal pays +1), then to each next goal of
    the cycle, detouring around wrong goals, so it never pays a penalty when a detour exists.
    """

    def init(self, state: EnvState, agent: jax.Array | int) -> PathMemory:
        return PathMemory(goal_path_costs(state))

    def act(self, key, pstate: PathMemory, state: EnvState, agent):
        last = state.last_goal[agent]
        n_goals = state.goal_pos.shape[0]
        goal_ids = jnp.arange(n_goals)
        chosen = jnp.where(last < 0, ~_standing_on(state, agent), goal_ids == (last + 1) % n_goals)
        return _walk_to(state, agent, chosen, pstate.to_goal), pstate


@struct.dataclass
class ExplorerMemory:
    """What the explorer has learnt this episode about the cycle.

    successor int32 [G]: known next goal of each goal (-1 unknown).
    ruled_out bool [G, G]: ``ruled_out[g, c]`` means c is known not to follow g.
    prev_pos int32 [2], prev_last int32: the agent's position and progress at its last action.
    to_goal int32 [G, H, W]: this episode's path prices (:func:`goal_path_costs`).
    """

    successor: jax.Array
    ruled_out: jax.Array
    prev_pos: jax.Array
    prev_last: jax.Array
    to_goal: jax.Array


@dataclasses.dataclass(frozen=True)
class ExplorerCycler:
    """Goal Cycle expert that discovers the order by trial, then cycles.

    After the first goal it tries the nearest goal that could still be next (never one known
    wrong, never one already following another goal, never one that would close a cycle too
    short to hold every goal); a reward confirms it, a penalty rules it out. Knowledge resets
    with each episode (``init``).
    """

    def init(self, state: EnvState, agent) -> ExplorerMemory:
        n_goals = state.goal_pos.shape[0]
        return ExplorerMemory(
            successor=jnp.full((n_goals,), -1, jnp.int32),
            ruled_out=jnp.zeros((n_goals, n_goals), bool),
            prev_pos=state.agent_pos[agent],
            prev_last=state.last_goal[agent],
            to_goal=goal_path_costs(state),
        )

    def _learn(self, memory: ExplorerMemory, state: EnvState, agent) -> ExplorerMemory:
        n_goals = state.goal_pos.shape[0]
        on_goal = _standing_on(state, agent)
        arrived = jnp.any(on_goal) & jnp.any(state.agent_pos[agent] != memory.prev_pos)
        goal = jnp.argmax(on_goal)
        last = state.last_goal[agent]
        had_progress = memory.prev_last >= 0
        confirmed = arrived & had_progress & (last == goal) & (last != memory.prev_last)
        refuted = arrived & had_progress & (last == memory.prev_last)
        row = jnp.clip(memory.prev_last, 0, n_goals - 1)
        successor = jnp.where(confirmed, memory.successor.at[row].set(goal), memory.successor)
        ruled_out = jnp.where(refuted, memory.ruled_out.at[row, goal].set(True), memory.ruled_out)
        return memory.replace(successor=successor, ruled_out=ruled_out)

    def act(self, key, pstate: ExplorerMemory, state: EnvState, agent):
        memory = self._learn(pstate, state, agent)
        n_goals = state.goal_pos.shape[0]
        goal_ids = jnp.arange(n_goals)
        last = state.last_goal[agent]
        current = jnp.clip(last, 0, n_goals - 1)
        known = memory.successor[current]
        taken = jnp.any(memory.successor[None, :] == goal_ids[:, None], -1)
        # Following known links from candidate c back to `current` would close a cycle;
        # that is allowed only if the cycle holds every goal.
        node, hops, closes = goal_ids, jnp.zeros(n_goals, jnp.int32), jnp.zeros(n_goals, bool)
        for k in range(1, n_goals):
            node = jnp.where(node >= 0, memory.successor[jnp.clip(node, 0, n_goals - 1)], -1)
            newly = (node == current) & ~closes
            closes, hops = closes | newly, jnp.where(newly, k, hops)
        short_cycle = closes & (hops + 1 < n_goals)
        candidate = (goal_ids != current) & ~memory.ruled_out[current] & ~taken & ~short_cycle
        candidate = jnp.where(jnp.any(candidate), candidate, goal_ids != current)
        chosen = jnp.where(known >= 0, goal_ids == known, candidate)
        chosen = jnp.where(last < 0, ~_standing_on(state, agent), chosen)
        memory = memory.replace(prev_pos=state.agent_pos[agent], prev_last=last)
        return _walk_to(state, agent, chosen, memory.to_goal), memory


@dataclasses.dataclass(frozen=True)
class GoalSeeker:
    """Four Rooms / Maze expert: shortest path to the goal, then stays (no-op) once done."""

    def init(self, state: EnvState, agent) -> PathMemory:
        return PathMemory(goal_path_costs(state))

    def act(self, key, pstate: PathMemory, state: EnvState, agent):
        chosen = jnp.ones(state.goal_pos.shape[0], bool)
        action = _walk_to(state, agent, chosen, pstate.to_goal)
        return jnp.where(state.agent_done[agent], NOOP, action), pstate


@dataclasses.dataclass(frozen=True)
class RandomPolicy:
    """Distractor: uniform over the first ``n_actions`` actions (default: the three that move)."""

    n_actions: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.n_actions <= NUM_ACTIONS:
            raise ValueError(f"n_actions must be in 1..{NUM_ACTIONS}, got n_actions={self.n_actions}")

    def init(self, state: EnvState, agent) -> NoMemory:
        return NoMemory()

    def act(self, key, pstate, state: EnvState, agent):
        return jax.random.randint(key, (), 0, self.n_actions), pstate


@dataclasses.dataclass(frozen=True)
class Imperfect:
    """An expert that, with probability ``epsilon`` per step, acts at random instead.

    The expert draws from the step's own key, so at ``epsilon`` 0 it acts exactly as the
    expert alone would; ``epsilon`` may be a traced array (a per-run data field)."""

    expert: object
    epsilon: float | jax.Array = 0.1
    n_random_actions: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.epsilon, numbers.Real) and not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got epsilon={self.epsilon}")

    def init(self, state: EnvState, agent):
        return self.expert.init(state, agent)

    def act(self, key, pstate, state: EnvState, agent):
        key_coin, key_random = jax.random.split(jax.random.fold_in(key, 0x1E5))
        action, pstate = self.expert.act(key, pstate, state, agent)
        random_action = jax.random.randint(key_random, (), 0, self.n_random_actions)
        explore = jax.random.uniform(key_coin) < self.epsilon
        return jnp.where(explore, random_action, action), pstate


POLICIES = {
    "oracle": OracleCycler,
    "explorer": ExplorerCycler,
    "seeker": GoalSeeker,
    "random": RandomPolicy,
}


def make_policy(name: str, epsilon: float = 0.0, **kwargs):
    """Policy by name (``oracle``, ``explorer``, ``seeker``, ``random``), made imperfect when
    ``epsilon`` > 0."""
    if name not in POLICIES:
        raise ValueError(f"unknown scripted policy {name!r}; known: {sorted(POLICIES)}")
    policy = POLICIES[name](**kwargs)
    return Imperfect(policy, epsilon) if epsilon > 0 else policy
