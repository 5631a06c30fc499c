"""Properties over random action sequences and random layouts (hypothesis).

A small NumPy reference of the rules (movement, Goal Cycle / reach rewards, prestige, time)
written from the rules text predicts every step from the previous state; the library must
agree with it, and its views and states must keep the invariants that hold in any episode.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import (
    DIR_VEC,
    HORIZON,
    RESETS,
    check_views,
    get_kit,
    index_tree,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sociajax
from sociajax.envs import tiles

PRESTIGE_MAX = 1.0 / (1.0 - 0.99)
FIELDS = ("agent_pos", "agent_dir", "prestige", "last_goal", "agent_done", "time", "episode_return")
SETTINGS = dict(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def reference_step(cycle: bool, s: dict, actions, max_steps: int, penalty: float = -1.5, decay: float = 0.99):
    """One step of the rules, from the text, for one environment (dict of NumPy arrays)."""
    grid = s["grid"]
    height, width = grid.shape
    goals = [tuple(int(v) for v in g) for g in s["goal_pos"]]
    n = len(s["agent_dir"])
    pos = s["agent_pos"].astype(np.int64).copy()
    dirs = s["agent_dir"].astype(np.int64).copy()
    last = s["last_goal"].astype(np.int64).copy()
    agent_done = s["agent_done"].copy()
    reward = np.zeros(n)
    time = int(s["time"]) + 1
    for i in range(n):
        if agent_done[i]:
            continue  # a done agent stays put and ignores its actions
        a = int(actions[i])
        if a == 0:
            dirs[i] = (dirs[i] - 1) % 4
        elif a == 1:
            dirs[i] = (dirs[i] + 1) % 4
        elif a == 2:
            dx, dy = DIR_VEC[int(dirs[i])]
            x, y = int(pos[i, 0]) + dx, int(pos[i, 1]) + dy
            if 0 <= x < width and 0 <= y < height and grid[y, x] != tiles.WALL:
                pos[i] = (x, y)
                if grid[y, x] == tiles.GOAL:
                    g = goals.index((x, y))
                    if cycle:
                        if last[i] < 0 or g == (last[i] + 1) % len(goals):
                            reward[i], last[i] = 1.0, g
                        else:
                            reward[i] = penalty
                    else:
                        reward[i] = 1.0 - 0.9 * time / max_steps
                        agent_done[i] = True
    prestige = np.where(reward < 0, 0.0, decay * s["prestige"].astype(np.float64) + reward)
    done = time >= max_steps or (not cycle and bool(agent_done.all()))
    new = dict(
        agent_pos=pos,
        agent_dir=dirs,
        prestige=prestige,
        last_goal=last,
        agent_done=agent_done,
        time=time,
        episode_return=s["episode_return"] + reward,
    )
    return new, reward, done


def _as_dict(state) -> dict:
    return {k: np.asarray(v) for k, v in vars(state).items()} if not isinstance(state, dict) else state


def _state_at(states, t: int) -> dict:
    return {k: np.asarray(v)[t] for k, v in vars(states).items()}


def _assert_state_matches(got: dict, want: dict, where) -> None:
    for name in FIELDS:
        if name in ("prestige", "episode_return"):
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5, err_msg=f"{name} {where}")
        else:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{name} {where}")


def _random_actions(rng: np.random.Generator, forward: float, shape) -> np.ndarray:
    actions = rng.integers(0, 7, shape)
    return np.where(rng.random(shape) < forward, 2, actions).astype(np.int32)


# =========================================================================== rollouts
ROLLOUT_ENVS = ["GoalCycle-3", "GoalCycle-4", "FourRooms"]


@pytest.mark.parametrize("env_id", ROLLOUT_ENVS)
@settings(max_examples=25, **SETTINGS)
@given(
    index=st.integers(0, 63),
    seed=st.integers(0, 2**31 - 1),
    forward=st.floats(0.2, 0.8),
    max_steps=st.integers(2, 80),
    penalty=st.sampled_from([-1.5, -0.25, -3.0]),
)
def test_random_rollouts_follow_the_rules(env_id, index, seed, forward, max_steps, penalty):
    k = get_kit(env_id)
    cycle = env_id.startswith("GoalCycle")
    overrides = dict(max_steps=max_steps, penalty=penalty) if cycle else dict(max_steps=max_steps)
    _, params = sociajax.make(env_id, **overrides)
    _, resets = k.resets(*RESETS[env_id])
    state0 = index_tree(resets, index)
    rng = np.random.default_rng(seed)
    actions = _random_actions(rng, forward, (HORIZON, k.env.n_agents))
    keys = jax.random.split(jax.random.PRNGKey(seed), HORIZON)
    obs, states, reward, done, info = jax.device_get(k.rollout(keys, state0, actions, params))

    # Views: uint8, right shape, cells right behind seen, non-agent tiles flat atlas colours.
    assert obs.shape == (HORIZON, k.env.n_agents, 21, 21, 3)
    check_views(obs, states.agent_pos, states.agent_dir)

    # No agent is ever inside a wall or outside the grid; prestige stays in range.
    height, width = k.env.height, k.env.width
    x, y = states.agent_pos[..., 0], states.agent_pos[..., 1]
    assert ((x >= 0) & (x < width) & (y >= 0) & (y < height)).all()
    t_idx = np.arange(HORIZON)[:, None]
    assert (states.grid[t_idx, y, x] != tiles.WALL).all()
    assert (states.prestige >= 0).all() and (states.prestige <= PRESTIGE_MAX + 1e-4).all()

    # Step by step against the reference rules.
    prev = _as_dict(jax.device_get(state0))
    returns = np.zeros(k.env.n_agents)
    wants, want_rewards, want_dones = [], [], []
    for t in range(HORIZON):
        want, want_reward, want_done = reference_step(cycle, prev, actions[t], max_steps, penalty)
        wants.append(want)
        want_rewards.append(want_reward)
        want_dones.append(want_done)
        returns += want_reward
        got = _state_at(states, t)
        if want_done:
            # The finished episode is reported; the state is the next episode's first.
            np.testing.assert_allclose(info["episode_return"][t], returns, rtol=1e-5, atol=1e-4)
            assert int(info["episode_length"][t]) == want["time"]
            returns[:] = 0
        prev = got
    np.testing.assert_allclose(reward, np.stack(want_rewards), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(done, want_dones)
    going = ~np.asarray(want_dones)
    stacked = {name: np.stack([np.asarray(w[name]) for w in wants]) for name in FIELDS}
    _assert_state_matches(
        {name: np.asarray(getattr(states, name))[going] for name in FIELDS},
        {name: stacked[name][going] for name in FIELDS},
        "on steps that do not end an episode",
    )
    # Goals are fixed within an episode.
    before = np.concatenate([np.asarray(state0.grid)[None], states.grid[:-1]])
    np.testing.assert_array_equal(states.grid[going], before[going])
    before = np.concatenate([np.asarray(state0.goal_pos)[None], states.goal_pos[:-1]])
    np.testing.assert_array_equal(states.goal_pos[going], before[going])
    # Ending steps return the next episode's first state.
    ended = index_tree(states, np.nonzero(~going)[0])
    np.testing.assert_array_equal(ended.time, 0)
    np.testing.assert_array_equal(ended.prestige, 0)
    np.testing.assert_array_equal(ended.episode_return, 0)
    np.testing.assert_array_equal(ended.last_goal, -1)
    assert not ended.agent_done.any()
    if cycle:  # Goal Cycle has no early end: an episode is exactly max_steps steps.
        start = int(state0.time)
        np.testing.assert_array_equal(np.nonzero(done)[0], np.arange(max_steps - 1 - start, HORIZON, max_steps))
        np.testing.assert_array_equal(states.time, (np.arange(1, HORIZON + 1) + start) % max_steps)

    # Determinism: same key, same actions, same everything.
    again = jax.device_get(k.rollout(keys, state0, actions, params))
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves((obs, states, reward, done, info))):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("env_id", ROLLOUT_ENVS)
def test_resets_are_deterministic_per_key(env_id):
    k = get_kit(env_id)
    count, seed = RESETS[env_id]
    obs, states = k.resets(count, seed)
    obs2, states2 = k.compute_resets(count, seed)
    np.testing.assert_array_equal(obs, obs2)
    for a, b in zip(jax.tree.leaves(states), jax.tree.leaves(states2)):
        np.testing.assert_array_equal(a, b)
    check_views(obs, states.agent_pos, states.agent_dir)
    # Different keys give different episodes (Four Rooms has few distinct starts).
    starts = {
        g.tobytes() + p.tobytes() + d.tobytes() for g, p, d in zip(states.grid, states.agent_pos, states.agent_dir)
    }
    assert len(starts) > 0.8 * count


# =========================================================================== random layouts
@st.composite
def layouts(draw, env):
    """(layout rows, agent_pos, agent_dir) of the env's size, with or without an outer ring;
    goals and agents drawn in one 5x5 box so that agents often walk onto goals."""
    height, width = env.height, env.width
    cycle = isinstance(env, sociajax.GoalCycle)
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    ring = draw(st.booleans())
    density = draw(st.floats(0.0, 0.45))
    grid = np.where(rng.random((height, width)) < density, "#", ".")
    if ring:
        grid[[0, -1], :] = "#"
        grid[:, [0, -1]] = "#"
    cx, cy = int(rng.integers(1, width - 1)), int(rng.integers(1, height - 1))
    box = [
        (x, y)
        for y in range(max(1, cy - 2), min(height - 1, cy + 3))
        for x in range(max(1, cx - 2), min(width - 1, cx + 3))
    ]
    free = [(x, y) for x, y in box if grid[y, x] == "."]
    if len(free) < env.n_goals + 1:
        for x, y in box:
            grid[y, x] = "."
        free = box
    order = rng.permutation(len(free))
    for g, i in enumerate(order[: env.n_goals]):
        x, y = free[i]
        grid[y, x] = str(g) if cycle else "G"
    # Agents on any non-wall cell of the box (goals included: hand layouts allow it).
    agent_cells = [free[i] for i in rng.integers(0, len(free), env.n_agents)]
    dirs = rng.integers(0, 4, env.n_agents)
    return ["".join(row) for row in grid], agent_cells, dirs


RANDOM_LAYOUT_KITS = {"GoalCycle-3 7x7": ("GoalCycle-3", {"size": 7}), "FourRooms": ("FourRooms", {})}


@pytest.mark.parametrize("name", sorted(RANDOM_LAYOUT_KITS))
@settings(max_examples=40, **SETTINGS)
@given(data=st.data())
def test_random_layouts_follow_the_rules(name, data):
    env_id, static = RANDOM_LAYOUT_KITS[name]
    k = get_kit(env_id, **static)
    cycle = env_id.startswith("GoalCycle")
    layout, agent_pos, agent_dir = data.draw(layouts(k.env))
    max_steps = data.draw(st.integers(5, 40))
    penalty = data.draw(st.sampled_from([-1.5, -0.25]))
    overrides = dict(max_steps=max_steps, penalty=penalty) if cycle else dict(max_steps=max_steps)
    _, params = sociajax.make(env_id, **static, **overrides)
    obs, state = k.from_layout(layout, agent_pos, agent_dir, params)
    assert k.env.layout(state) == layout
    check_views(np.asarray(obs), np.asarray(state.agent_pos), np.asarray(state.agent_dir), state.grid.shape)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    actions = _random_actions(rng, data.draw(st.floats(0.3, 0.8)), (30, k.env.n_agents))
    prev = _as_dict(jax.device_get(state))
    for t, (new, reward, done) in enumerate(k.run(state, actions, params)):
        got = _as_dict(jax.device_get(new))
        want, want_reward, want_done = reference_step(cycle, prev, actions[t], max_steps, penalty)
        np.testing.assert_allclose(reward, want_reward, rtol=1e-5, atol=1e-6, err_msg=f"step {t}")
        _assert_state_matches(got, want, t)
        assert done == want_done, t
        np.testing.assert_array_equal(got["grid"], prev["grid"])
        assert (got["prestige"] >= 0).all() and (got["prestige"] <= PRESTIGE_MAX).all()
        prev = got
    assert k.env.layout(new) == layout  # goals never disappear
    check_views(np.asarray(k.get_obs(new, params)), got["agent_pos"], got["agent_dir"], got["grid"].shape)
