"""Scripted policies: what a perfect agent scores, and that experts behave like experts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sociajax
from sociajax.agents import make_policy
from sociajax.agents.scripted import (
    WRONG_GOAL_PRICE,
    ExplorerCycler,
    OracleCycler,
    _goal_mask,
    _prices,
    goal_path_costs,
    navigate,
)
from sociajax.envs import tiles
from sociajax.envs.core import FORWARD, LEFT, RIGHT
from sociajax.envs.grid_ops import UNREACHABLE, path_costs
from sociajax.eval import scripted_returns


@pytest.fixture(scope="module")
def goal_cycle_returns() -> np.ndarray:
    env, params = sociajax.make("GoalCycle-3")
    policies = [make_policy("oracle"), make_policy("explorer"), make_policy("random")]
    return np.asarray(scripted_returns(env, params, policies, jax.random.PRNGKey(0), num_envs=48))


def test_oracle_scores_highest_and_random_lowest(goal_cycle_returns: np.ndarray) -> None:
    oracle, explorer, random = goal_cycle_returns.mean(0)
    assert oracle > 15.0  # ~25 goals in 250 steps on 13x13
    assert oracle > explorer > random
    assert random < 2.0


def test_oracle_never_pays_a_penalty_when_a_detour_exists() -> None:
    env, params = sociajax.make("GoalCycle-3", n_agents=1, height=5, width=9)
    layout = [
        "#########",
        "#.......#",
        "#.0.1.2.#",
        "#.......#",
        "#########",
    ]
    # Start between goals 0 and 1; the straight line to goal 2 after 1 passes nothing, but the
    # way from 2 back to 0 passes goal 1: the oracle must walk around it.
    _, state = env.reset_from_layout(jax.random.PRNGKey(0), params, layout, [[3, 2]], [2])
    policy = OracleCycler()
    memory = policy.init(state, 0)

    @jax.jit
    def run(state, memory):
        def body(carry, key):
            state, memory = carry
            action, memory = policy.act(key, memory, state, 0)
            state, reward, _ = env.step_state(state, action[None], params)
            return (state, memory), reward[0]

        return jax.lax.scan(body, (state, memory), jax.random.split(jax.random.PRNGKey(1), 120))[1]

    rewards = np.asarray(run(state, memory))
    assert rewards.min() == 0.0
    assert rewards.sum() >= 10  # keeps cycling


@pytest.mark.parametrize("digits", ["0123", "2031", "3210", "1302"])
def test_explorer_learns_the_order_then_stops_paying_penalties(digits: str) -> None:
    """In an open room (a detour around every goal exists) the explorer pays at most
    1 + 2 + ... + (N - 2) penalties while learning, and none once it knows the cycle."""
    env, params = sociajax.make("GoalCycle-4", n_agents=1, height=7, width=9)
    a, b, c, d = digits
    layout = [
        "#########",
        f"#.{a}...{b}.#",
        "#.......#",
        "#.......#",
        "#.......#",
        f"#.{c}...{d}.#",
        "#########",
    ]
    _, state = env.reset_from_layout(jax.random.PRNGKey(0), params, layout, [[4, 3]], [0])
    policy = ExplorerCycler()

    @jax.jit
    def run(state):
        def body(carry, key):
            state, memory = carry
            action, memory = policy.act(key, memory, state, 0)
            state, reward, _ = env.step_state(state, action[None], params)
            return (state, memory), reward[0]

        return jax.lax.scan(body, (state, policy.init(state, 0)), jax.random.split(jax.random.PRNGKey(1), 200))[1]

    rewards = np.asarray(run(state))
    penalties = np.flatnonzero(rewards < 0)
    assert len(penalties) <= 3
    assert (rewards[100:] >= 0).all() and rewards[100:].sum() >= 8


@pytest.mark.parametrize("env_id, options", [("GoalCycle-5", {}), ("GoalCycle-3", {"height": 9, "width": 9})])
def test_per_goal_tables_give_the_shortest_path_prices_to_any_goal_set(env_id, options) -> None:
    """Experts price a path to a set of goals from per-goal tables made once per episode
    (the minimum over the set); that must equal a fresh search toward the whole set, on every
    cell, for every non-empty set of goals, layouts with goals in corridors included."""
    env, params = sociajax.make(env_id, n_agents=1, **options)
    states = jax.vmap(env.reset_state, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(7), 48), params)
    n_goals = states.goal_pos.shape[1]
    subsets = jnp.asarray([[(m >> g) & 1 for g in range(n_goals)] for m in range(1, 2**n_goals)], bool)

    def direct(state, chosen):
        targets = _goal_mask(state, chosen)
        return path_costs(_prices(state, targets), targets)

    def tabled(state, chosen):
        return jnp.min(jnp.where(chosen[:, None, None], goal_path_costs(state), UNREACHABLE), 0)

    over_sets = lambda f: jax.jit(jax.vmap(lambda s: jax.vmap(lambda c: f(s, c))(subsets)))
    want, got = over_sets(direct)(states), over_sets(tabled)(states)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    # From some floor cells every way to the set crosses a goal outside it: the case that matters.
    floor = np.asarray(states.grid == tiles.FLOOR)[:, None]
    crossing = floor & (np.asarray(want) >= WRONG_GOAL_PRICE) & (np.asarray(want) < UNREACHABLE)
    assert crossing.any()


def test_experts_start_over_with_each_auto_reset_episode() -> None:
    """``scripted_returns`` past one episode re-inits policies where envs reset: experts walk
    the new layout as well as the first (stale path tables would send them to old goals)."""
    env, params = sociajax.make("GoalCycle-3", n_agents=2, penalty=0.0)
    policies = [make_policy("oracle"), make_policy("explorer")]
    first = np.asarray(scripted_returns(env, params, policies, jax.random.PRNGKey(3), num_envs=16))
    three = np.asarray(scripted_returns(env, params, policies, jax.random.PRNGKey(3), num_envs=16,
                                        num_steps=3 * int(params.max_steps)))
    assert (three.mean(0) > 2.7 * first.mean(0)).all(), (three.mean(0), first.mean(0))


def test_navigate_prefers_straight_then_turns_toward_lower_cost() -> None:
    dist = jnp.array(
        [
            [9, 9, 9],
            [3, 2, 1],
            [9, 9, 9],
        ]
    )
    pos = jnp.array([1, 1])  # x=1, y=1, cost 2; east (x=2) is downhill
    assert int(navigate(dist, pos, jnp.int32(0))) == FORWARD  # facing east
    assert int(navigate(dist, pos, jnp.int32(3))) == RIGHT  # facing north: turn right to east
    assert int(navigate(dist, pos, jnp.int32(1))) == LEFT  # facing south: turn left to east
    assert int(navigate(dist, pos, jnp.int32(2))) in (LEFT, RIGHT)  # facing away: turn around


def test_goal_seeker_reaches_four_rooms_goal_and_stops() -> None:
    env, params = sociajax.make("FourRooms", n_agents=2)
    returns = np.asarray(
        scripted_returns(env, params, [make_policy("seeker"), make_policy("seeker")], jax.random.PRNGKey(2), 32)
    )
    assert (returns > 0.8).all()  # every seeker reaches the goal early in every episode


def test_imperfect_expert_is_worse_than_the_expert(goal_cycle_returns: np.ndarray) -> None:
    env, params = sociajax.make("GoalCycle-3", n_agents=1)
    noisy = np.asarray(
        scripted_returns(env, params, [make_policy("oracle", epsilon=0.5)], jax.random.PRNGKey(0), num_envs=48)
    )
    assert noisy.mean() < goal_cycle_returns[:, 0].mean() - 2.0


def test_unknown_policy_and_bad_epsilon_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown scripted policy 'telepath'"):
        make_policy("telepath")
    with pytest.raises(ValueError, match="epsilon=1.5"):
        make_policy("oracle", epsilon=1.5)
    with pytest.raises(ValueError, match="n_actions=0"):
        make_policy("random", n_actions=0)
    env, params = sociajax.make("GoalCycle-3")
    with pytest.raises(ValueError, match="n_agents=3"):
        scripted_returns(env, params, [make_policy("random")], jax.random.PRNGKey(0))
