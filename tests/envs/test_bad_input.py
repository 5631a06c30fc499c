"""Bad arguments raise a ValueError that names the bad field or value."""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import KEY, fast_jit, get_kit

import sociajax
from sociajax.envs import rendering

# Layouts must have the env's size: these 5x5 ones go with make("GoalCycle-3", size=5).
GC_LAYOUT = ["#####", "#0.1#", "#.2.#", "#...#", "#####"]
GC_AGENTS = ([[1, 2], [3, 2], [2, 3]], [0, 1, 2])


@pytest.fixture(scope="module")
def gc():
    return sociajax.make("GoalCycle-3", size=5)


# ============================================================================ make()
@pytest.mark.parametrize("env_id", ["GoalCycle", "FourRoom", "Maze-2", "goalcycle-3", "GoalCycle-x", ""])
def test_unknown_env_id(env_id):
    with pytest.raises(ValueError, match=re.escape(repr(env_id))):
        sociajax.make(env_id)


@pytest.mark.parametrize("env_id", ["GoalCycle-0", "GoalCycle-11"])
def test_goal_cycle_goal_count_out_of_range(env_id):
    with pytest.raises(ValueError, match="n_goals"):
        sociajax.make(env_id)


@pytest.mark.parametrize(
    "env_id, option",
    [("GoalCycle-3", "pnalty"), ("GoalCycle-3", "max_step"), ("FourRooms", "penalty"), ("Maze", "n_goal")],
)
def test_unknown_make_keyword(env_id, option):
    with pytest.raises(ValueError, match=option):
        sociajax.make(env_id, **{option: 1})


def test_n_goals_conflicting_with_the_id():
    with pytest.raises(ValueError, match="n_goals=4"):
        sociajax.make("GoalCycle-3", n_goals=4)


@pytest.mark.parametrize("env_id", ["GoalCycle-3", "FourRooms", "Maze"])
@pytest.mark.parametrize("n_agents", [0, -1])
def test_bad_agent_count(env_id, n_agents):
    with pytest.raises(ValueError, match=rf"n_agents.*{n_agents}"):
        sociajax.make(env_id, n_agents=n_agents)


def test_non_integer_agent_count():
    with pytest.raises(ValueError, match="n_agents"):
        sociajax.make("GoalCycle-3", n_agents=2.5)


@pytest.mark.parametrize(
    "field, value",
    [
        ("max_steps", 0),
        ("max_steps", -5),
        ("prestige_decay", 1.5),
        ("prestige_decay", -0.1),
        ("prestige_scale", 0.0),
    ],
)
def test_invalid_param_values(field, value):
    with pytest.raises(ValueError, match=rf"{field}.*{re.escape(str(value))}"):
        sociajax.make("GoalCycle-3", **{field: value})


def test_non_finite_penalty():
    with pytest.raises(ValueError, match="penalty"):
        sociajax.make("GoalCycle-3", penalty=float("nan"))


def test_non_integer_max_steps():
    # A step count of 2.5 is meaningless (episodes would silently end at step 3).
    with pytest.raises(ValueError, match="max_steps"):
        sociajax.make("GoalCycle-3", max_steps=2.5)


@pytest.mark.parametrize("env_id", ["GoalCycle-3", "FourRooms", "Maze"])
@pytest.mark.parametrize("value", ["MiniGrid", "", "marlgrid", None, 1])
def test_bad_occlusion(env_id, value):
    with pytest.raises(ValueError, match=rf"occlusion.*{re.escape(repr(value))}"):
        sociajax.make(env_id, occlusion=value)


def test_bad_occlusion_in_the_rendering_function():
    with pytest.raises(ValueError, match="occlusion='shadow'"):
        rendering.visibility(jnp.ones((7, 7), bool), 5, 3, "shadow")


def test_valid_overrides_are_accepted():
    """Control for the tests above: the same fields with valid values are fine."""
    env, params = sociajax.make("GoalCycle-3", max_steps=10, prestige_decay=0.5, penalty=-0.25, n_agents=2)
    assert env.n_agents == 2 and int(params.max_steps) == 10
    assert float(params.prestige_decay) == 0.5 and float(params.penalty) == -0.25
    for occlusion in ("original", "minigrid"):
        assert sociajax.make("Maze", occlusion=occlusion)[0].occlusion == occlusion
    assert sociajax.make("FourRooms")[0].occlusion == "original"  # the default


# ============================================================================ layouts
@pytest.mark.parametrize(
    "env_id, layout, bad",
    [
        ("GoalCycle-3", ["#####", "#0x1#", "#.2.#", "#####"], "x"),
        ("GoalCycle-3", ["#####", "#0G1#", "#.2.#", "#####"], "G"),
        ("GoalCycle-3", ["#####", "#0 1#", "#.2.#", "#####"], " "),
        ("FourRooms", ["#####", "#.0G#", "#...#", "#####"], "0"),
        ("Maze", ["#####", "#.@G#", "#...#", "#####"], "@"),
    ],
)
def test_bad_layout_character(env_id, layout, bad):
    env, params = sociajax.make(env_id)
    pos = [[1, 2]] * env.n_agents
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        env.reset_from_layout(KEY, params, layout, pos, [0] * env.n_agents)


def test_ragged_layout(gc):
    env, params = gc
    layout = ["#####", "#0.1#", "#.2.##", "#####"]
    with pytest.raises(ValueError, match="equal length"):
        env.reset_from_layout(KEY, params, layout, *GC_AGENTS)


@pytest.mark.parametrize("layout", [[], "#0.1#"])
def test_layout_not_a_list_of_strings(gc, layout):
    env, params = gc
    with pytest.raises(ValueError, match="layout"):
        env.reset_from_layout(KEY, params, layout, *GC_AGENTS)


def test_reach_layout_without_goal():
    env, params = sociajax.make("FourRooms")
    layout = ["#" * 17] + ["#" + "." * 15 + "#"] * 15 + ["#" * 17]
    with pytest.raises(ValueError, match="0 goals"):
        env.reset_from_layout(KEY, params, layout, [[1, 1], [2, 1]], [0, 0])


@pytest.mark.parametrize(
    "layout, pattern",
    [
        (["#####", "#0.1#", "#...#", "#...#", "#####"], r"2 goals.*n_goals=3"),
        (["#####", "#0.1#", "#2.3#", "#...#", "#####"], r"4 goals.*n_goals=3"),
        (["#####", "#0.0#", "#.1.#", "#...#", "#####"], r"'0', '0'"),  # duplicated digit
        (["#####", "#0.1#", "#.3.#", "#...#", "#####"], r"'3'"),  # skipped digit
    ],
)
def test_wrong_goals_in_goal_cycle_layout(gc, layout, pattern):
    env, params = gc
    with pytest.raises(ValueError, match=pattern):
        env.reset_from_layout(KEY, params, layout, [[2, 1]] * 3, [0, 0, 0])


def test_goal_layout_control():
    """Control: the layout the bad-agent tests start from is valid."""
    k = get_kit("GoalCycle-3", size=5)
    _, state = k.from_layout(GC_LAYOUT, *GC_AGENTS)
    assert k.env.layout(state) == GC_LAYOUT


# ============================================================================ agents
def test_agent_on_a_wall(gc):
    env, params = gc
    with pytest.raises(ValueError, match=r"agent_pos\[1\]=\(0, 0\).*wall"):
        env.reset_from_layout(KEY, params, GC_LAYOUT, [[1, 2], [0, 0], [2, 3]], [0, 0, 0])
    with pytest.raises(ValueError, match=r"agent_pos\[2\]=\(2, 4\).*wall"):
        env.reset_from_layout(KEY, params, GC_LAYOUT, [[1, 2], [1, 3], [2, 4]], [0, 0, 0])


@pytest.mark.parametrize("bad", [(5, 1), (-1, 2), (2, 5), (1, -3)])
def test_agent_out_of_bounds(gc, bad):
    env, params = gc
    with pytest.raises(ValueError, match=re.escape(f"agent_pos[0]=({bad[0]}, {bad[1]})") + ".*outside"):
        env.reset_from_layout(KEY, params, GC_LAYOUT, [list(bad), [1, 2], [2, 3]], [0, 0, 0])


def test_non_integer_agent_position(gc):
    env, params = gc
    with pytest.raises(ValueError, match="agent_pos"):
        env.reset_from_layout(KEY, params, GC_LAYOUT, [[1.5, 2.0], [1, 2], [2, 3]], [0, 0, 0])


@pytest.mark.parametrize("bad", [4, -1, 7])
def test_bad_direction(gc, bad):
    env, params = gc
    with pytest.raises(ValueError, match=re.escape(f"agent_dir[1]={bad}")):
        env.reset_from_layout(KEY, params, GC_LAYOUT, GC_AGENTS[0], [0, bad, 2])


@pytest.mark.parametrize(
    "pos, dirs, pattern",
    [
        ([[1, 2], [3, 2]], [0, 1, 2], r"agent_pos.*\(3, 2\)"),  # two agents for three
        ([[1, 2], [3, 2], [2, 3], [1, 3]], [0, 1, 2, 3], r"agent_pos.*\(3, 2\)"),
        ([1, 2, 3], [0, 1, 2], r"agent_pos.*\(3, 2\)"),
        ([[1, 2], [3, 2], [2, 3]], [0, 1], r"agent_dir.*\(3,\)"),
    ],
)
def test_wrong_number_of_agents(gc, pos, dirs, pattern):
    env, params = gc
    with pytest.raises(ValueError, match=pattern):
        env.reset_from_layout(KEY, params, GC_LAYOUT, pos, dirs)


# ============================================================================ actions
@pytest.fixture(scope="module")
def gc_state():
    k = get_kit("GoalCycle-3", size=5)
    _, state = k.from_layout(GC_LAYOUT, *GC_AGENTS)
    return k.env, k.params, state


@pytest.mark.parametrize("bad", [7, -1, 100])
def test_eager_step_with_out_of_range_action(gc_state, bad):
    env, params, state = gc_state
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        env.step(KEY, state, jnp.array([2, bad, 0], jnp.int32), params)
    with pytest.raises(ValueError, match="actions"):
        env.step(KEY, state, np.array([bad, 0, 0]), params)


@pytest.mark.parametrize("shape", [(2,), (4,), (3, 1), (1, 3), ()])
def test_eager_step_with_wrong_actions_shape(gc_state, shape):
    env, params, state = gc_state
    with pytest.raises(ValueError, match=re.escape(f"got {shape}")):
        env.step(KEY, state, jnp.zeros(shape, jnp.int32), params)


def test_vec_env_bad_arguments(gc):
    env, params = gc
    for bad in (0, -2, 1.5):
        with pytest.raises(ValueError, match="num_envs"):
            sociajax.VecEnv(env, bad)
    vec = sociajax.VecEnv(env, 2)
    with pytest.raises(ValueError, match=re.escape("got (3,)")):
        vec.step(KEY, None, jnp.zeros((3,), jnp.int32), params)


# ============================================================================ layout vs env shape
def _four_rooms(goals):
    doors = {(4, 8), (8, 4), (12, 8), (8, 12)}

    def cell(x, y):
        if x in (0, 16) or y in (0, 16) or ((x == 8 or y == 8) and (x, y) not in doors):
            return "#"
        return "G" if (x, y) in goals else "."

    return ["".join(cell(x, y) for x in range(17)) for y in range(17)]


@pytest.mark.parametrize(
    "env_id, layout, pos, dirs, pattern",
    [
        # A 5x5 Goal Cycle layout for the default 13x13 env: auto-resets could not swap in
        # a 13x13 layout, so it is refused up front.
        ("GoalCycle-3", GC_LAYOUT, *GC_AGENTS, r"5x5.*13x13"),
        ("GoalCycle-3", [r + "...." for r in GC_LAYOUT], *GC_AGENTS, r"9x5.*13x13"),
        # Two goals for the one-goal Four Rooms; a 5x5 layout for it.
        ("FourRooms", _four_rooms({(7, 7), (9, 9)}), [[6, 7], [7, 6]], [0, 1], r"2 goals.*n_goals=1"),
        ("FourRooms", ["#####", "#..G#", "#...#", "#...#", "#####"], [[1, 1], [2, 1]], [0, 1], r"5x5.*17x17"),
    ],
)
def test_layout_that_does_not_fit_the_env_is_rejected(env_id, layout, pos, dirs, pattern):
    env, params = sociajax.make(env_id)
    with pytest.raises(ValueError, match=pattern):
        env.reset_from_layout(KEY, params, layout, pos, dirs)


def test_env_built_to_the_layout_size_steps_and_auto_resets():
    """The error's advice works: make(..., size=5) takes the 5x5 layout, and env.step on its
    state (auto-resetting into a generated 5x5 layout) runs under jit."""
    k = get_kit("GoalCycle-3", size=5)
    _, params = sociajax.make("GoalCycle-3", size=5, max_steps=1)
    _, state = k.from_layout(GC_LAYOUT, *GC_AGENTS)
    obs, new, reward, done, info = fast_jit(k.env.step)(KEY, state, jnp.full(3, 2, jnp.int32), params)
    assert obs.shape == (3, 21, 21, 3) and bool(done)
    assert new.grid.shape == (5, 5) and int(new.time) == 0
    np.testing.assert_array_equal(np.asarray(reward), [1.0, 0.0, 0.0])  # agent 0 stepped onto goal 2
