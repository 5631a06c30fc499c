"""Rules of the worlds, checked on small hand-built layouts at cell and pixel level.

Layout conventions: '#' wall, '.' floor, '0'..'9' Goal Cycle goals in cycle order, 'G' the
Four Rooms / Maze goal; positions are (x = column, y = row); directions 0 east, 1 south,
2 west, 3 north. Views: 7x7 tiles of 3 px, observer at view row 5, column 3, facing up.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import (
    DIR_VEC,
    HORIZON,
    RESETS,
    FLOOR_RGB,
    GOAL_RGB,
    SHADOW_RGB,
    WALL_RGB,
    bfs_reachable,
    check_views,
    fast_jit,
    index_tree,
    is_flat,
    sprite_red,
    tile,
)

import sociajax
from sociajax.envs import tiles

NOOP = 6
L, R, F = 0, 1, 2

# Layouts must match the env's size, so each layout shape has its env (and compiled code).
K7 = dict(size=7)  # GoalCycle-3 on 7x7
KC = dict(height=5, width=9)  # GoalCycle-3 on the corridor

# Goals 0, 1, 2 in a corridor at x = 2, 4, 6 of row y = 1; spare rows below.
CORRIDOR = [
    "#########",
    "#.0.1.2.#",
    "#.......#",
    "#.......#",
    "#########",
]

# An open room with an inner wall at (3, 3) and goals in three corners.
OPEN = [
    "#######",
    "#0....#",
    "#.....#",
    "#..#..#",
    "#.....#",
    "#1...2#",
    "#######",
]


def _np(x):
    return np.asarray(x)


# ============================================================================ movement
@pytest.mark.parametrize(
    "direction, expected",
    [(0, (4, 2)), (1, (3, 2)), (2, (2, 2)), (3, (3, 1))],  # south of (3, 2) is the wall (3, 3)
)
def test_forward_moves_into_floor_and_not_into_walls(kit, direction, expected):
    k = kit("GoalCycle-3", **K7)
    # Agent 1 faces the outer wall (north), agent 2 faces the outer wall (east).
    _, state = k.from_layout(OPEN, [[3, 2], [4, 1], [5, 4]], [direction, 3, 0])
    state, reward, done = k.step_state(state, [F, F, F])
    assert tuple(_np(state.agent_pos[0])) == expected
    assert tuple(_np(state.agent_pos[1])) == (4, 1)
    assert tuple(_np(state.agent_pos[2])) == (5, 4)
    np.testing.assert_array_equal(_np(state.agent_dir), [direction, 3, 0])  # forward never turns
    np.testing.assert_array_equal(_np(reward), [0, 0, 0])
    assert not bool(done)


def test_forward_repeatedly_walks_until_the_wall(kit):
    k = kit("GoalCycle-3", **K7)
    _, state = k.from_layout(OPEN, [[1, 2], [1, 2], [1, 2]], [0, 0, 0])
    xs = [int(s.agent_pos[0, 0]) for s, _, _ in k.run(state, [[F, NOOP, NOOP]] * 7)]
    assert xs == [2, 3, 4, 5, 5, 5, 5]


def test_agents_cannot_leave_a_layout_without_outer_walls(kit):
    k = kit("GoalCycle-3", **K7)
    layout = ["0.....1", "......."] + ["......."] * 4 + ["..2...."]
    _, state = k.from_layout(layout, [[0, 1], [6, 3], [3, 0]], [2, 0, 3])
    for state, _, _ in k.run(state, [[F, F, F]] * 3):
        np.testing.assert_array_equal(_np(state.agent_pos), [[0, 1], [6, 3], [3, 0]])
    # Cells beyond the edge of the map are drawn as shadow, like hidden ones.
    view = _np(k.get_obs(state))[2]  # agent 2 at the top edge, facing north
    assert is_flat(view[0:15], SHADOW_RGB)
    assert not is_flat(tile(view, 5, 2), SHADOW_RGB)


@pytest.mark.parametrize("direction", range(4))
def test_turning_changes_direction_mod_4_and_not_position(kit, direction):
    k = kit("GoalCycle-3", **K7)
    left_of = {0: 3, 1: 0, 2: 1, 3: 2}
    right_of = {0: 1, 1: 2, 2: 3, 3: 0}
    _, state = k.from_layout(OPEN, [[2, 2], [2, 2], [4, 4]], [direction, direction, direction])
    new, reward, _ = k.step_state(state, [L, R, NOOP])
    np.testing.assert_array_equal(_np(new.agent_dir), [left_of[direction], right_of[direction], direction])
    np.testing.assert_array_equal(_np(new.agent_pos), _np(state.agent_pos))
    np.testing.assert_array_equal(_np(reward), 0)
    # Four turns the same way come back to the start.
    s = state
    for s, _, _ in k.run(state, [[L, R, L]] * 4):
        pass
    np.testing.assert_array_equal(_np(s.agent_dir), [direction] * 3)


@pytest.mark.parametrize("action", [3, 4, 5, 6])
def test_actions_3_to_6_do_nothing(kit, action):
    k = kit("GoalCycle-3", **K7)
    # Every agent faces a goal one step ahead, so acting as "forward" would be visible.
    _, state = k.from_layout(OPEN, [[1, 2], [1, 4], [4, 5]], [3, 1, 0])
    for new, reward, done in k.run(state, [[action] * 3] * 3):
        np.testing.assert_array_equal(_np(new.agent_pos), [[1, 2], [1, 4], [4, 5]])
        np.testing.assert_array_equal(_np(new.agent_dir), [3, 1, 0])
        np.testing.assert_array_equal(_np(new.last_goal), [-1, -1, -1])
        np.testing.assert_array_equal(_np(new.grid), _np(state.grid))
        np.testing.assert_array_equal(reward, [0, 0, 0])
        assert not done
    assert int(new.time) == 3
    # Control: forward from the same state does move them onto the goals.
    moved, reward, _ = k.step_state(state, [F, F, F])
    np.testing.assert_array_equal(_np(moved.agent_pos), [[1, 1], [1, 5], [5, 5]])
    np.testing.assert_array_equal(reward, [1, 1, 1])


def test_agents_are_ghosts_and_share_cells(kit):
    k = kit("GoalCycle-3", **K7)
    # Agent 1 stands on (3, 2); agents 0 and 2 step onto it from the west and from the north.
    _, state = k.from_layout(OPEN, [[2, 2], [3, 2], [3, 1]], [0, 2, 1])
    new, _, _ = k.step_state(state, [F, NOOP, F])
    np.testing.assert_array_equal(_np(new.agent_pos), [[3, 2]] * 3)
    # And they can walk out of the shared cell through each other.
    new, _, _ = k.step_state(new, [F, F, L])
    np.testing.assert_array_equal(_np(new.agent_pos), [[4, 2], [2, 2], [3, 2]])


# ============================================================================ Goal Cycle rewards
@pytest.mark.parametrize("goal", [0, 1, 2])
def test_first_goal_of_any_index_pays_one(kit, goal):
    k = kit("GoalCycle-3", **KC)
    start = [2 * goal + 1, 1]  # just west of goal `goal`, facing east
    _, state = k.from_layout(CORRIDOR, [start, [1, 2], [7, 2]], [0, 0, 0])
    new, reward, _ = k.step_state(state, [F, NOOP, NOOP])
    np.testing.assert_allclose(reward, [1.0, 0.0, 0.0])
    assert int(new.last_goal[0]) == goal


def _cycle_script(penalty):
    """(agent 0 action, expected reward, expected last_goal) from (1, 1) facing east."""
    p = penalty
    return [
        (F, 1.0, 0),  # goal 0: first goal
        (F, 0.0, 0),
        (F, 1.0, 1),  # goal 1: the next one
        (L, 0.0, 1),  # turning on a goal earns nothing
        (L, 0.0, 1),
        (F, 0.0, 1),
        (F, p, 1),  # goal 0 again: wrong, progress kept
        (R, 0.0, 1),
        (R, 0.0, 1),
        (F, 0.0, 1),
        (F, p, 1),  # back onto goal 1, the last one got right: wrong
        (F, 0.0, 1),
        (F, 1.0, 2),  # goal 2: right (progress survived both penalties)
        (F, 0.0, 2),
        (R, 0.0, 2),
        (R, 0.0, 2),
        (F, p, 2),  # goal 2 again: wrong
        (F, 0.0, 2),
        (F, p, 2),  # goal 1: wrong (next is 0)
        (F, 0.0, 2),
        (F, 1.0, 0),  # goal 0: the cycle wraps around
        (NOOP, 0.0, 0),  # standing on a goal earns nothing
    ]


@pytest.mark.parametrize("override", [None, 0.0, -0.25])
def test_goal_cycle_rewards_and_penalty_override(kit, override):
    k = kit("GoalCycle-3", **KC)
    if override is None:
        _, params = sociajax.make("GoalCycle-3")
        penalty = -1.5
    else:
        _, params = sociajax.make("GoalCycle-3", penalty=override)
        penalty = override
    assert float(params.penalty) == penalty
    _, state = k.from_layout(CORRIDOR, [[1, 1], [1, 2], [7, 2]], [0, 0, 0], params)
    script = _cycle_script(penalty)
    results = k.run(state, [[a, NOOP, NOOP] for a, _, _ in script], params)
    rewards = [float(r[0]) for _, r, _ in results]
    last = [int(s.last_goal[0]) for s, _, _ in results]
    np.testing.assert_allclose(rewards, [r for _, r, _ in script], atol=1e-6)
    assert last == [g for _, _, g in script]
    for s, r, _ in results:  # bystanders earn nothing
        np.testing.assert_array_equal(r[1:], 0.0)
    final = results[-1][0]
    np.testing.assert_allclose(float(final.episode_return[0]), sum(r for _, r, _ in script), atol=1e-5)


def test_each_agent_keeps_its_own_cycle_progress(kit):
    k = kit("GoalCycle-3", **KC)
    _, params = sociajax.make("GoalCycle-3")
    p = -1.5
    _, state = k.from_layout(CORRIDOR, [[1, 1], [5, 1], [1, 2]], [0, 0, 0])
    steps = [
        ([F, F, NOOP], [1, 1, 0]),  # agent 0 -> goal 0 (first), agent 1 -> goal 2 (first)
        ([F, L, NOOP], [0, 0, 0]),
        ([NOOP, L, NOOP], [0, 0, 0]),
        ([NOOP, F, NOOP], [0, 0, 0]),
        ([F, F, NOOP], [1, p, 0]),  # both enter goal 1 together: right for 0, wrong for 1
        ([F, F, NOOP], [0, 0, 0]),
        ([F, F, NOOP], [1, 1, 0]),  # agent 0 -> goal 2, agent 1 -> goal 0 (2 -> 0 wraps)
    ]
    results = k.run(state, [a for a, _ in steps], params)
    for (_, expected), (_, reward, _) in zip(steps, results):
        np.testing.assert_allclose(reward, expected)
    np.testing.assert_array_equal(_np(results[4][0].agent_pos[0]), _np(results[4][0].agent_pos[1]))
    np.testing.assert_array_equal(_np(results[4][0].last_goal), [1, 2, -1])
    np.testing.assert_array_equal(_np(results[-1][0].last_goal), [2, 0, -1])


def test_goals_never_disappear(kit):
    k = kit("GoalCycle-3", **KC)
    _, state = k.from_layout(CORRIDOR, [[1, 1], [1, 2], [7, 2]], [0, 0, 0])
    results = k.run(state, [[a, NOOP, NOOP] for a, _, _ in _cycle_script(-1.5)])
    assert sum(float(r[0]) for _, r, _ in results) != 0  # rewards were paid
    for s, _, _ in results:
        assert k.env.layout(s) == CORRIDOR
        np.testing.assert_array_equal(_np(s.goal_pos), [[2, 1], [4, 1], [6, 1]])


# ============================================================================ episode length
def _corridor_13():
    return ["#" * 13, "#.0.1.2.....#"] + ["#" + "." * 11 + "#"] * 10 + ["#" * 13]


def _keys(seed, n=HORIZON):
    return jax.random.split(jax.random.PRNGKey(seed), n)


def _actions(rows, n_agents=3, fill=NOOP):
    out = np.full((HORIZON, n_agents), fill, np.int32)
    out[: len(rows)] = rows
    return out


def test_episode_ends_exactly_at_max_steps_with_auto_reset(kit):
    k = kit("GoalCycle-3")
    _, params = sociajax.make("GoalCycle-3", max_steps=5)
    assert int(params.max_steps) == 5
    # Agent 0 walks east over goals 0, 1, 2 (+1, 0, +1, 0, +1); agent 1 walks west over
    # 2, 1, 0 (+1, 0, penalty, 0, +1); agent 2 idles.
    _, state = k.from_layout(_corridor_13(), [[1, 1], [7, 1], [5, 5]], [0, 2, 1], params)
    obs, states, reward, done, info = k.rollout(_keys(1), state, _actions([[F, F, NOOP]] * 5), params)
    obs, states, reward, done = _np(obs), jax.device_get(states), _np(reward), _np(done)
    np.testing.assert_array_equal(np.nonzero(done)[0][:5], [4, 9, 14, 19, 24])  # every 5 steps
    np.testing.assert_array_equal(states.time[:6], [1, 2, 3, 4, 0, 1])
    np.testing.assert_allclose(reward[:5].sum(0), [3.0, 0.5, 0.0])
    np.testing.assert_allclose(reward[:5, 1], [1.0, 0.0, -1.5, 0.0, 1.0])
    np.testing.assert_allclose(_np(info["episode_return"])[4], [3.0, 0.5, 0.0], atol=1e-5)
    assert int(info["episode_length"][4]) == 5
    # The state and obs returned by the ending step are the next episode's first.
    first = index_tree(states, 4)
    assert int(first.time) == 0
    np.testing.assert_array_equal(first.episode_return, 0)
    np.testing.assert_array_equal(first.prestige, 0)
    np.testing.assert_array_equal(first.last_goal, -1)
    assert not np.array_equal(first.grid, _np(state.grid))
    assert first.grid.shape == (13, 13) and int((first.grid[1:-1, 1:-1] == tiles.WALL).sum()) == 18
    np.testing.assert_array_equal(obs[4], _np(k.get_obs(first, params)))
    # A second episode's return is its own.
    np.testing.assert_allclose(_np(info["episode_return"])[9], reward[5:10].sum(0), atol=1e-5)


def test_default_goal_cycle_episode_is_250_steps(kit):
    k = kit("GoalCycle-3")
    assert int(k.params.max_steps) == 250
    _, states = k.resets(*RESETS["GoalCycle-3"])
    rng = np.random.default_rng(0)
    # Two chained rollouts: 2 * HORIZON consecutive steps from a reset.
    state, dones, times, rewards = index_tree(states, 0), [], [], []
    for part in range(2):
        actions = rng.integers(0, 7, (HORIZON, 3))
        _, out, reward, done, info = k.rollout(_keys(2 + part), state, actions)
        dones.append(_np(done))
        times.append(_np(out.time))
        rewards.append(_np(reward))
        state = index_tree(out, HORIZON - 1)
    dones, times, rewards = np.concatenate(dones), np.concatenate(times), np.concatenate(rewards)
    assert 2 * HORIZON > 251
    np.testing.assert_array_equal(np.nonzero(dones)[0], [249])
    np.testing.assert_array_equal(times[247:252], [248, 249, 0, 1, 2])
    ended = 249 - HORIZON
    assert int(info["episode_length"][ended]) == 250
    np.testing.assert_allclose(_np(info["episode_return"])[ended], rewards[:250].sum(0), rtol=1e-5, atol=1e-4)


# ============================================================================ prestige
def test_prestige_decays_grows_with_reward_and_resets_on_penalty(kit):
    k = kit("GoalCycle-3", **KC)
    _, state = k.from_layout(CORRIDOR, [[1, 1], [1, 2], [7, 2]], [0, 0, 0])
    script = _cycle_script(-1.5)
    results = k.run(state, [[a, NOOP, NOOP] for a, _, _ in script])
    c, expected = 0.0, []
    for _, r, _ in script:
        c = 0.0 if r < 0 else 0.99 * c + r
        expected.append(c)
    got = [float(s.prestige[0]) for s, _, _ in results]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert got[0] == pytest.approx(1.0) and got[2] == pytest.approx(0.99 * 0.99 + 1.0)
    assert got[6] == 0.0  # the penalty wiped it
    for s, _, _ in results:
        np.testing.assert_array_equal(_np(s.prestige[1:]), 0.0)


def test_prestige_decay_override_is_used(kit):
    k = kit("GoalCycle-3", **KC)
    _, params = sociajax.make("GoalCycle-3", prestige_decay=0.9)
    _, state = k.from_layout(CORRIDOR, [[1, 1], [1, 2], [7, 2]], [0, 0, 0], params)
    results = k.run(state, [[F, NOOP, NOOP], [F, NOOP, NOOP], [F, NOOP, NOOP], [NOOP] * 3], params)
    np.testing.assert_allclose(
        [float(s.prestige[0]) for s, _, _ in results], [1.0, 0.9, 1.81, 1.629], rtol=1e-5
    )


PRESTIGE_ROOM = [
    "#######",
    "#.01..#",
    "#.....#",
    "#2....#",
    "#.....#",
    "#.....#",
    "#######",
]


def test_prestige_colours_the_agent_in_others_views(kit):
    k = kit("GoalCycle-3", **K7)
    # Observer (agent 0) at (4, 2) facing north; the watched cell is (4, 1), view row 4, col 3.
    _, before = k.from_layout(PRESTIGE_ROOM, [[4, 2], [4, 1], [5, 3]], [3, 0, 3])
    red_tile = tile(k.get_obs(before)[0], 4, 3).astype(np.int64)
    np.testing.assert_array_equal(red_tile[..., 0], sprite_red(0))  # east-facing, pure red
    assert red_tile[..., 0].max() > 150
    np.testing.assert_array_equal(red_tile[..., 1:], 0)

    # Agent 1 earns goal 0 and goal 1 walking east from (1, 1), then steps onto (4, 1).
    _, state = k.from_layout(PRESTIGE_ROOM, [[4, 2], [1, 1], [5, 3]], [3, 0, 3])
    results = k.run(state, [[NOOP, F, NOOP]] * 3)
    state = results[-1][0]
    np.testing.assert_array_equal(_np(state.agent_pos[1]), [4, 1])
    c = float(state.prestige[1])
    assert c == pytest.approx(0.99 * (0.99 + 1.0))
    blue_tile = tile(k.get_obs(state)[0], 4, 3).astype(np.int64)
    assert blue_tile[..., 2].max() > red_tile[..., 2].max() + 50  # bluer
    assert blue_tile[..., 0].max() < red_tile[..., 0].max() - 50  # less red
    mix = np.tanh(c / 4.0)
    color = np.floor(mix * np.array([0.0, 0.0, 255.0]) + (1 - mix) * np.array([255.0, 0.0, 0.0]))
    expected = (tiles.agent_alpha(3)[0, 3].astype(np.int64)[..., None] * color.astype(np.int64)) >> 8
    np.testing.assert_array_equal(blue_tile, expected)

    # Still visibly blue many steps later.
    for state, _, _ in k.run(state, [[NOOP] * 3] * 30):
        pass
    later = tile(k.get_obs(state)[0], 4, 3).astype(np.int64)
    assert later[..., 2].max() > 40


# ============================================================================ reset
@pytest.fixture(scope="module")
def gc3_resets(kit):
    k = kit("GoalCycle-3")
    obs, states = k.resets(*RESETS["GoalCycle-3"])
    assert obs.shape[0] == 200
    return k, obs, states


def _check_goal_cycle_layouts(states, n_goals, n_agents):
    grids = _np(states.grid)
    n = grids.shape[0]
    for i in range(n):
        grid = grids[i]
        assert grid.shape == (13, 13)
        ring = np.concatenate([grid[0], grid[-1], grid[:, 0], grid[:, -1]])
        assert (ring == tiles.WALL).all(), i
        inner = grid[1:-1, 1:-1]
        assert int((inner == tiles.WALL).sum()) == 18, i
        assert int((grid == tiles.GOAL).sum()) == n_goals, i
        goals = [tuple(g) for g in _np(states.goal_pos[i])]
        assert len(set(goals)) == n_goals
        for x, y in goals:
            assert grid[y, x] == tiles.GOAL
        agents = [tuple(a) for a in _np(states.agent_pos[i])]
        assert len(agents) == n_agents and len(set(agents)) == n_agents, (i, agents)
        free = grid != tiles.WALL
        for x, y in agents:
            assert grid[y, x] == tiles.FLOOR, (i, x, y)
            reach = bfs_reachable(free, (x, y))
            for gx, gy in goals:
                assert reach[gy, gx], (i, (x, y), (gx, gy))
    # Layouts are random.
    assert len({g.tobytes() for g in grids}) == n


def test_goal_cycle_reset_layouts_are_valid_and_connected(gc3_resets):
    _, _, states = gc3_resets
    _check_goal_cycle_layouts(states, n_goals=3, n_agents=3)
    np.testing.assert_array_equal(_np(states.time), 0)
    np.testing.assert_array_equal(_np(states.prestige), 0)
    np.testing.assert_array_equal(_np(states.last_goal), -1)


def test_goal_cycle_4_reset_layouts_are_valid_and_connected(kit):
    k = kit("GoalCycle-4")
    _, states = k.resets(*RESETS["GoalCycle-4"])
    _check_goal_cycle_layouts(states, n_goals=4, n_agents=3)


def test_reset_directions_are_random(gc3_resets):
    _, _, states = gc3_resets
    dirs = _np(states.agent_dir)
    assert set(dirs[:64, 0].tolist()) == {0, 1, 2, 3}
    for a in range(3):
        counts = np.bincount(dirs[:, a], minlength=4)
        assert counts.min() >= 20, counts  # roughly uniform over 200 resets
    # Agents of one episode do not all share a direction.
    assert np.mean((dirs == dirs[:, :1]).all(axis=1)) < 0.3


def test_reset_first_obs_is_real(gc3_resets):
    k, obs, states = gc3_resets
    assert obs.shape == (200, 3, 21, 21, 3) and obs.dtype == np.uint8
    expected_own = sprite_red(3)
    for i in range(0, 200, 10):
        state = index_tree(states, i)
        np.testing.assert_array_equal(obs[i], _np(k.get_obs(state)))
        for a in range(3):
            view = obs[i, a]
            assert not is_flat(view, SHADOW_RGB)
            np.testing.assert_array_equal(tile(view, 5, 3)[..., 0], expected_own)
            # The cell ahead is always visible: floor, wall, goal or an agent, never shadow.
            assert not is_flat(tile(view, 4, 3), SHADOW_RGB)


def test_reset_from_layout_first_obs_shows_the_wall_ahead(kit):
    k = kit("GoalCycle-3", **K7)
    obs, _ = k.from_layout(OPEN, [[2, 1], [1, 4], [5, 2]], [3, 2, 0])  # all face an outer wall
    obs = _np(obs)
    for a in range(3):
        assert is_flat(tile(obs[a], 4, 3), WALL_RGB)
        np.testing.assert_array_equal(tile(obs[a], 5, 3)[..., 0], sprite_red(3))


# ============================================================================ views (pixels)
# Walls exactly two cells from (3, 3) in every direction.
CROSS = [
    "#######",
    "#0.#..#",
    "#.....#",
    "##...##",
    "#.....#",
    "#1.#.2#",
    "#######",
]


@pytest.mark.parametrize("direction", range(4))
def test_wall_two_cells_ahead_is_drawn_at_the_right_pixels(kit, direction):
    k = kit("GoalCycle-3", **K7)
    obs, _ = k.from_layout(CROSS, [[3, 3], [3, 3], [3, 3]], [direction] * 3)
    view = _np(obs)[0]
    assert is_flat(view[9:12, 9:12], WALL_RGB)  # view row 3, column 3
    assert is_flat(view[12:15, 9:12], FLOOR_RGB)  # view row 4: the floor in between
    # Left and right of the observer are floor too.
    assert is_flat(tile(view, 5, 2), FLOOR_RGB) and is_flat(tile(view, 5, 4), FLOOR_RGB)
    # The row behind is seen (the original's line of sight): floor behind, walls at its ends.
    assert is_flat(tile(view, 6, 3), FLOOR_RGB)
    assert is_flat(tile(view, 6, 0), WALL_RGB) and is_flat(tile(view, 6, 6), WALL_RGB)
    assert not any(is_flat(tile(view, 6, c), SHADOW_RGB) for c in range(7))


def test_cells_right_behind_are_seen_in_generated_views(gc3_resets):
    _, obs, _ = gc3_resets
    behind = obs[:, :, 18:21, 6:15].reshape(obs.shape[:2] + (3, 3, 3, 3)).swapaxes(-4, -3)
    assert not (behind == np.asarray(SHADOW_RGB, np.uint8)).all(axis=(-3, -2, -1)).any()
    # Further along the row behind, walls or the map's edge hide cells in some views.
    assert (obs[:, :, 18:21, 0:3] == np.asarray(SHADOW_RGB, np.uint8)).all(axis=(-3, -2, -1)).any()


def test_cells_behind_a_wall_column_are_shadow(kit):
    k = kit("GoalCycle-3", **K7)
    column = ["#######", "#0.#..#", "#1.#..#", "#2.#..#", "#..#..#", "#..#..#", "#######"]
    # The observer at (2, 5) faces north: view column c shows x = c - 1, view row r shows y = r.
    obs, _ = k.from_layout(column, [[2, 5]] * 3, [3] * 3)
    view = _np(obs)[0]
    for r in range(1, 6):
        assert is_flat(tile(view, r, 4), WALL_RGB), r  # the column x = 3
        assert is_flat(view[3 * r : 3 * r + 3, 15:21], SHADOW_RGB), r  # x = 4, 5 behind it
    assert is_flat(tile(view, 1, 2), GOAL_RGB)  # goal 0 at (1, 1), on the open side
    # Control: without the column the same cells are visible floor.
    no_column = [row[:3] + "." + row[4:] if 0 < y < 6 else row for y, row in enumerate(column)]
    obs, _ = k.from_layout(no_column, [[2, 5]] * 3, [3] * 3)
    view = _np(obs)[0]
    for r in range(1, 6):
        assert is_flat(view[3 * r : 3 * r + 3, 12:21], FLOOR_RGB), r


def test_wall_row_ahead_hides_everything_beyond(kit):
    k = kit("GoalCycle-3", **K7)
    layout = ["#######", "#0.1.2#", "#.....#", "#######", "#.....#", "#.....#", "#######"]
    obs, _ = k.from_layout(layout, [[3, 5]] * 3, [3] * 3)
    view = _np(obs)[0]
    # View row r shows y = r: y = 3 is wall all across; y <= 2 (goals included) is hidden.
    assert is_flat(view[9:12], WALL_RGB)
    assert is_flat(view[0:9], SHADOW_RGB)
    assert is_flat(view[12:15, 3:18], FLOOR_RGB)
    # Control: open the wall row and the goals come into view.
    layout[3] = "#.....#"
    obs, _ = k.from_layout(layout, [[3, 5]] * 3, [3] * 3)
    view = _np(obs)[0]
    for col in (1, 3, 5):
        assert is_flat(tile(view, 1, col), GOAL_RGB), col


# An open 7x7 room: goals in three corners.
ROOM = [
    "#######",
    "#0...1#",
    "#.....#",
    "#.....#",
    "#.....#",
    "#2....#",
    "#######",
]


def test_agent_sprites_differ_by_direction():
    sprites = [sprite_red(d).tobytes() for d in range(4)]
    assert len(set(sprites)) == 4


@pytest.mark.parametrize("observer_dir", range(4))
@pytest.mark.parametrize("other_dir", range(4))
def test_agent_ahead_is_drawn_pointing_its_relative_direction(kit, observer_dir, other_dir):
    k = kit("GoalCycle-3", **K7)
    dx, dy = DIR_VEC[observer_dir]
    rx, ry = DIR_VEC[(observer_dir + 1) % 4]  # the observer's right
    # Agent 1 one cell ahead of the observer, agent 2 one cell to its right.
    pos = [[3, 3], [3 + dx, 3 + dy], [3 + rx, 3 + ry]]
    obs, _ = k.from_layout(ROOM, pos, [observer_dir, other_dir, other_dir])
    view = _np(obs)[0].astype(np.int64)
    # Facing the same way as the observer points up (3); each quarter turn right turns it right.
    relative = (other_dir - observer_dir + 3) % 4
    ahead = tile(view, 4, 3)
    np.testing.assert_array_equal(ahead[..., 0], sprite_red(relative))
    np.testing.assert_array_equal(ahead[..., 1:], 0)
    np.testing.assert_array_equal(tile(view, 5, 4)[..., 0], sprite_red(relative))
    assert is_flat(tile(view, 5, 2), FLOOR_RGB)
    # The observer itself always points up.
    np.testing.assert_array_equal(tile(view, 5, 3)[..., 0], sprite_red(3))


def _reach_layout(size):
    """An open size x size room; the goal 'G' at (5, 1)."""
    inner = "#" + "." * (size - 2) + "#"
    return ["#" * size, "#....G" + "." * (size - 7) + "#"] + [inner] * (size - 3) + ["#" * size]


def _four_rooms_layout(goal=(7, 7)):
    walls = _four_rooms_walls()
    return ["".join("#" if walls[y, x] else ("G" if (x, y) == goal else ".") for x in range(17)) for y in range(17)]


@pytest.mark.parametrize(
    "env_id, static, layouts",
    [
        ("GoalCycle-3", KC, lambda: [CORRIDOR]),
        ("GoalCycle-3", K7, lambda: [OPEN, CROSS, ROOM]),
        ("FourRooms", {}, lambda: [_four_rooms_layout(), _reach_layout(17)]),
        ("Maze", {}, lambda: [_reach_layout(19)]),
    ],
)
def test_layout_round_trip(kit, env_id, static, layouts):
    k = kit(env_id, **static)
    for layout in layouts():
        free = [(x, y) for y, row in enumerate(layout) for x, ch in enumerate(row) if ch == "."]
        pos = free[-k.env.n_agents :]
        dirs = list(range(k.env.n_agents))
        _, state = k.from_layout(layout, pos, dirs)
        assert k.env.layout(state) == layout
        np.testing.assert_array_equal(_np(state.agent_pos), pos)
        np.testing.assert_array_equal(_np(state.agent_dir), dirs)
        walls = np.array([[ch == "#" for ch in row] for row in layout])
        np.testing.assert_array_equal(_np(state.grid) == tiles.WALL, walls)


def test_generated_layout_round_trips(gc3_resets):
    k, _, states = gc3_resets
    for i in range(5):
        state = index_tree(states, i)
        rows = k.env.layout(state)
        assert len(rows) == 13 and all(len(r) == 13 for r in rows)
        assert sum(r.count("#") for r in rows) == 48 + 18
        _, again = k.from_layout(rows, _np(state.agent_pos), _np(state.agent_dir))
        np.testing.assert_array_equal(_np(again.grid), _np(state.grid))
        np.testing.assert_array_equal(_np(again.goal_pos), _np(state.goal_pos))


@pytest.mark.parametrize("tile_px", [4, 8])
def test_render_shape_and_tile_colours(kit, tile_px):
    k = kit("GoalCycle-3", **K7)
    _, state = k.from_layout(OPEN, [[2, 2], [4, 4], [2, 4]], [0, 1, 2])
    frame = _np(fast_jit(k.env.render, static_argnums=2)(state, k.params, tile_px))
    t = tile_px
    assert frame.shape == (7 * t, 7 * t, 3) and frame.dtype == np.uint8
    for y, row in enumerate(OPEN):
        for x, ch in enumerate(row):
            cell = frame[y * t : y * t + t, x * t : x * t + t]
            if ch == "#":
                assert is_flat(cell, WALL_RGB), (x, y)
            elif ch.isdigit():
                assert is_flat(cell, GOAL_RGB), (x, y)
    for x, y in [(2, 2), (4, 4), (2, 4)]:  # agents are drawn, red at prestige 0
        cell = frame[y * t : y * t + t, x * t : x * t + t].astype(int)
        assert cell[..., 0].max() > 150 and cell[..., 2].max() == 0


# ============================================================================ Four Rooms, Maze
REACH_SIZE = {"FourRooms": 17, "Maze": 19}  # the default sizes


@pytest.mark.parametrize("env_id", ["FourRooms", "Maze"])
def test_reach_goal_rules(kit, env_id):
    k = kit(env_id)
    assert k.env.n_agents == 2
    _, params = sociajax.make(env_id, max_steps=20)
    reach = _reach_layout(REACH_SIZE[env_id])
    _, state = k.from_layout(reach, [[4, 1], [1, 2]], [0, 0], params)
    actions = [
        [NOOP, NOOP],
        [NOOP, NOOP],
        [NOOP, NOOP],
        [F, NOOP],  # step 4: agent 0 enters the goal
        [L, F],  # agent 0 is done: its actions are ignored from now on
        [F, F],
        [R, F],
        [F, F],
        [F, L],
        [L, F],  # step 10: agent 1 enters the goal; everyone is done
    ]
    results = k.run(state, actions, params)
    rewards = np.stack([r for _, r, _ in results])
    expected = np.zeros((10, 2))
    expected[3, 0] = 1 - 0.9 * 4 / 20
    expected[9, 1] = 1 - 0.9 * 10 / 20
    np.testing.assert_allclose(rewards, expected, rtol=1e-6)
    dones = [d for _, _, d in results]
    assert dones == [False] * 9 + [True]
    for t, (s, _, _) in enumerate(results):
        if t >= 3:  # agent 0 stays on the goal facing east, done
            np.testing.assert_array_equal(_np(s.agent_pos[0]), [5, 1])
            assert int(s.agent_dir[0]) == 0
            assert bool(s.agent_done[0])
        assert bool(s.agent_done[1]) == (t == 9)
    final = results[-1][0]
    np.testing.assert_array_equal(_np(final.agent_pos), [[5, 1], [5, 1]])
    np.testing.assert_allclose(_np(final.episode_return), expected.sum(0), rtol=1e-6)
    assert k.env.layout(final) == reach  # the goal stays
    # Both stay visible on the goal in a full render.
    frame = _np(fast_jit(k.env.render, static_argnums=2)(final, params, 8))
    assert not is_flat(frame[8:16, 40:48], GOAL_RGB)


@pytest.mark.parametrize("env_id", ["FourRooms", "Maze"])
def test_reach_episode_ends_at_time_limit(kit, env_id):
    k = kit(env_id)
    _, params = sociajax.make(env_id, max_steps=6)
    reach = _reach_layout(REACH_SIZE[env_id])
    _, state = k.from_layout(reach, [[1, 1], [1, 2]], [2, 2], params)
    results = k.run(state, [[L, R]] * 8, params)
    assert [d for _, _, d in results][:6] == [False] * 5 + [True]
    _, params = sociajax.make(env_id, max_steps=6)
    # One agent done is not the end of the episode.
    _, state = k.from_layout(reach, [[4, 1], [1, 2]], [0, 2], params)
    results = k.run(state, [[F, L]] * 6, params)
    assert [d for _, _, d in results] == [False] * 5 + [True]
    assert bool(results[0][0].agent_done[0]) and not bool(results[-1][0].agent_done[1])


def _four_rooms_walls(size=17):
    grid = np.zeros((size, size), bool)
    grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = True
    grid[8, :] = True
    grid[:, 8] = True
    for x, y in [(4, 8), (8, 4), (12, 8), (8, 12)]:
        grid[y, x] = False
    return grid


def test_four_rooms_reset(kit):
    k = kit("FourRooms")
    obs, states = k.resets(*RESETS["FourRooms"])
    assert obs.shape[0] == 128 and (states.time == 0).all()
    walls = _four_rooms_walls()
    candidates = {(x, y) for x in (7, 9, 15) for y in (7, 9, 15)}
    goals_seen, dirs_seen = set(), set()
    for i in range(obs.shape[0]):
        grid = _np(states.grid[i])
        assert grid.shape == (17, 17)
        np.testing.assert_array_equal(grid == tiles.WALL, walls)
        assert int((grid == tiles.GOAL).sum()) == 1
        gx, gy = (int(v) for v in states.goal_pos[i, 0])
        assert grid[gy, gx] == tiles.GOAL
        assert (gx, gy) in candidates
        goals_seen.add((gx, gy))
        for x, y in _np(states.agent_pos[i]):
            assert 1 <= x <= 3 and 1 <= y <= 3
            assert bfs_reachable(~walls, (x, y))[gy, gx]
        dirs_seen |= set(_np(states.agent_dir[i]).tolist())
        assert k.env.layout(index_tree(states, i)) == [
            "".join("#" if walls[y, x] else ("G" if (x, y) == (gx, gy) else ".") for x in range(17))
            for y in range(17)
        ]
    assert goals_seen == candidates
    assert dirs_seen == {0, 1, 2, 3}
    check_views(_np(obs), states.agent_pos, states.agent_dir)  # the cells right behind are seen


def test_four_rooms_auto_reset_when_all_agents_are_done(kit):
    k = kit("FourRooms")
    layout = _four_rooms_layout((7, 7))
    # Agent 0 reaches the goal at step 1; agent 1 at step 3.
    _, state = k.from_layout(layout, [[6, 7], [7, 4]], [0, 1])
    obs, out, reward, done, info = k.rollout(_keys(3, HORIZON), state, _actions([[F, F]] * 3, 2))
    T = 250
    np.testing.assert_allclose(_np(reward)[:3], [[1 - 0.9 / T, 0], [0, 0], [0, 1 - 0.9 * 3 / T]], rtol=1e-6)
    np.testing.assert_array_equal(_np(done)[:3], [False, False, True])
    np.testing.assert_array_equal(_np(out.agent_done)[:2], [[True, False], [True, False]])
    np.testing.assert_allclose(_np(info["episode_return"])[2], [1 - 0.9 / T, 1 - 0.9 * 3 / T], rtol=1e-6)
    np.testing.assert_array_equal(_np(info["agent_done"])[2], [True, True])
    assert int(info["episode_length"][2]) == 3
    assert int(out.time[2]) == 0
    np.testing.assert_array_equal(_np(out.agent_done)[2], [False, False])
    assert all(1 <= v <= 3 for v in _np(out.agent_pos)[2].ravel())


# ============================================================================ VecEnv, jit, vmap
def test_vec_env_reset_gives_distinct_real_episodes(gc3_resets):
    # The shared Goal Cycle resets come from jit(VecEnv(env, 200).reset).
    k, obs, states = gc3_resets
    assert obs.shape == (200, 3, 21, 21, 3) and obs.dtype == np.uint8
    assert states.grid.shape == (200, 13, 13) and states.agent_pos.shape == (200, 3, 2)
    assert len({g.tobytes() for g in states.grid}) == 200
    for i in (0, 1, 199):
        np.testing.assert_array_equal(obs[i], _np(k.get_obs(index_tree(states, i))))


def test_vec_env_step_matches_per_env_steps_and_resets_done_envs(kit):
    k = kit("GoalCycle-3")
    _, params = sociajax.make("GoalCycle-3", max_steps=3)
    vec = sociajax.VecEnv(k.env, 4)
    _, states = k.resets(*RESETS["GoalCycle-3"])
    states = jax.tree.map(lambda a: jnp.asarray(a[:4]), states)
    states = states.replace(time=jnp.array([0, 1, 2, 2], jnp.int32))
    actions = jnp.array([[2, 0, 1], [2, 2, 2], [1, 2, 6], [2, 2, 2]], jnp.int32)
    obs, new, reward, done, info = fast_jit(vec.step)(jax.random.PRNGKey(2), states, actions, params)
    assert obs.shape == (4, 3, 21, 21, 3) and obs.dtype == jnp.uint8
    np.testing.assert_array_equal(_np(done), [False, False, True, True])
    for i in range(4):
        ref, ref_reward, ref_done = k.step_state(index_tree(states, i), actions[i], params)
        np.testing.assert_array_equal(_np(reward[i]), _np(ref_reward))
        assert bool(ref_done) == bool(done[i])
        np.testing.assert_array_equal(_np(info["episode_return"][i]), _np(ref.episode_return))
        got = index_tree(new, i)
        if not done[i]:
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
                np.testing.assert_array_equal(_np(a), _np(b))
        else:
            assert int(got.time) == 0
            np.testing.assert_array_equal(_np(got.episode_return), 0)
            np.testing.assert_array_equal(_np(got.last_goal), -1)
            assert int((_np(got.grid)[1:-1, 1:-1] == tiles.WALL).sum()) == 18
            assert not np.array_equal(_np(got.grid), _np(states.grid[i]))
        np.testing.assert_array_equal(_np(obs[i]), _np(k.get_obs(got, params)))


def test_vmapped_step_equals_single_steps(kit):
    k = kit("GoalCycle-3")
    _, params = sociajax.make("GoalCycle-3", max_steps=4)
    _, states = k.resets(*RESETS["GoalCycle-3"])
    states = jax.tree.map(lambda a: jnp.asarray(a[:3]), states)
    states = states.replace(time=jnp.array([0, 3, 2], jnp.int32))
    actions = jnp.array([[2, 2, 2], [0, 1, 2], [2, 6, 0]], jnp.int32)
    step_keys = jax.random.split(jax.random.PRNGKey(4), 3)
    vstep = fast_jit(jax.vmap(k.env.step, in_axes=(0, 0, 0, None)))
    obs, new, reward, done, info = vstep(step_keys, states, actions, params)
    np.testing.assert_array_equal(_np(done), [False, True, False])
    assert int(new.time[1]) == 0 and int(new.time[0]) == 1
    for i in range(3):
        # The first step of a rollout with the same key is one plain env.step.
        keys = jnp.broadcast_to(step_keys[i], (HORIZON,) + step_keys[i].shape)
        o, s, r, d, inf = k.rollout(keys, index_tree(states, i), _actions([_np(actions[i])]), params)
        np.testing.assert_array_equal(_np(obs[i]), _np(o[0]))
        np.testing.assert_array_equal(_np(reward[i]), _np(r[0]))
        assert bool(done[i]) == bool(d[0])
        for a, b in zip(jax.tree.leaves(index_tree(new, i)), jax.tree.leaves(index_tree(s, 0))):
            np.testing.assert_array_equal(_np(a), _np(b))
        np.testing.assert_array_equal(_np(info["episode_return"][i]), _np(inf["episode_return"][0]))
