"""VecEnv's chunked resets: which layout each new episode gets, and that it is a fresh draw.

The env under test is Four Rooms whose ``reset_state`` also writes its key into ``last_goal``
(Four Rooms never reads or changes that field), so every episode carries the key its layout
was drawn from. That makes "no two episodes share a layout" and "the layout is exactly
``env.reset_state(key)``" checkable directly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fast_jit

import sociajax
from sociajax.envs.reach import FourRooms
from sociajax.envs.vector import VecEnv, default_reset_pool

N, K, MAX_STEPS, T = 256, 4, 16, 160


class KeyTaggedFourRooms(FourRooms):
    """Four Rooms whose new episodes remember their reset key in ``last_goal`` (int32 [2])."""

    def reset_state(self, key, params):
        state = super().reset_state(key, params)
        return state.replace(last_goal=jax.lax.bitcast_convert_type(jax.random.key_data(key), jnp.int32))


def _key(tag) -> jax.Array:
    return jax.lax.bitcast_convert_type(jnp.asarray(tag, jnp.int32), jnp.uint32)


ENV = KeyTaggedFourRooms()
PARAMS = ENV.default_params.replace(max_steps=MAX_STEPS)


def _tags(keys) -> np.ndarray:
    return np.asarray(jax.lax.bitcast_convert_type(jax.vmap(jax.random.key_data)(keys), jnp.int32))


def _layouts(state) -> np.ndarray:
    """[n, 1 + 2 + 2] goal candidate index, both agents' spawn cells (flat) and agent 0's dir."""
    candidates = ENV._goal_candidates
    goal = np.argmax(np.all(np.asarray(state.goal_pos)[:, :1, None, :] == candidates[None, None], -1), -1)
    pos = np.asarray(state.agent_pos)
    cells = pos[..., 1] * ENV.width + pos[..., 0]
    return np.concatenate([goal, cells, np.asarray(state.agent_dir)[:, :1]], -1)


@pytest.fixture(scope="module")
def rollout():
    """Random actions for T steps: half the envs end a few at a time (8 a step: two chunks of
    K = 4), the other half together every 16 steps (bursts of 128+, which rebuild all N).
    Returns a jitted key -> (done [T, N], state after each step, initial state)."""
    venv = VecEnv(ENV, N, reset_pool=K)

    def run(key):
        key_reset, key_run = jax.random.split(key)
        _, initial = venv.reset(key_reset, PARAMS)
        envs = jnp.arange(N, dtype=jnp.int32)
        state = initial.replace(time=jnp.where(envs < N // 2, envs % MAX_STEPS, 0))

        def body(state, key):
            key_act, key_step = jax.random.split(key)
            actions = jax.random.randint(key_act, (N, ENV.n_agents), 0, 3)
            _, state, _, done, _ = venv.step(key_step, state, actions, PARAMS)
            return state, (done, state)

        _, (done, states) = jax.lax.scan(body, state, jax.random.split(key_run, T))
        return done, states, initial

    return venv, fast_jit(run)


def _episodes(done, states, initial):
    """The first state of every episode of the rollout: the initial ones and every reset."""
    done = np.asarray(done)
    starts = jax.tree.map(lambda a: np.asarray(a)[done], states)
    return jax.tree.map(lambda a, b: np.concatenate([np.asarray(a), b]), initial, starts)


def _chi_square(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Two-sample chi-square statistic of two integer samples and its degrees of freedom."""
    values = np.union1d(a, b)
    ca = np.array([(a == v).sum() for v in values], float)
    cb = np.array([(b == v).sum() for v in values], float)
    ka, kb = np.sqrt(cb.sum() / ca.sum()), np.sqrt(ca.sum() / cb.sum())
    return float(((ka * ca - kb * cb) ** 2 / (ca + cb)).sum()), len(values) - 1


# Chi-square 0.1% critical values by degrees of freedom (3: directions, 8: goals and spawn cells).
CHI2_999 = {3: 16.27, 8: 26.12}


def test_every_episode_gets_its_own_fresh_layout_from_env_reset_state(rollout):
    venv, run = rollout
    done, states, initial = run(jax.random.PRNGKey(0))
    branches = np.asarray(jax.vmap(venv.reset_branch)(jnp.sum(done, 1, dtype=jnp.int32)))
    assert {1, 2} <= set(branches.tolist())  # both the chunked and the rebuild-all path ran
    assert (branches == 1).sum() > T // 2
    episodes = _episodes(done, states, initial)
    tags = np.asarray(episodes.last_goal)
    n_episodes = len(tags)
    assert n_episodes > 2500
    assert len({tuple(t) for t in tags.tolist()}) == n_episodes  # no key went to two episodes
    # Each episode's first state is exactly env.reset_state of its key (no fields mixed up).
    sample = np.random.default_rng(0).choice(n_episodes, 300, replace=False)
    keys = jax.vmap(_key)(tags[sample])
    ref = jax.jit(jax.vmap(ENV.reset_state, in_axes=(0, None)))(keys, PARAMS)
    for got, want in zip(jax.tree.leaves(jax.tree.map(lambda a: a[sample], episodes)), jax.tree.leaves(ref)):
        np.testing.assert_array_equal(got, np.asarray(want))


def test_episode_layouts_follow_env_reset_distribution(rollout):
    _, run = rollout
    done, states, initial = run(jax.random.PRNGKey(1))
    episodes = _episodes(done, states, initial)
    n_episodes = len(np.asarray(episodes.time))
    _, fresh = jax.jit(VecEnv(ENV, n_episodes).reset)(jax.random.PRNGKey(2), PARAMS)
    got, want = _layouts(episodes), _layouts(fresh)
    # Four Rooms draws a goal among 9 cells, 2 distinct spawn cells among 9 and directions.
    for column, name in enumerate(["goal", "agent 0 cell", "agent 1 cell", "agent 0 dir"]):
        stat, dof = _chi_square(got[:, column], want[:, column])
        assert stat < CHI2_999[dof], f"{name}: chi-square {stat:.1f} with {dof} dof over {n_episodes} episodes"


def test_same_key_same_rollout_other_key_other_layouts(rollout):
    _, run = rollout
    a = jax.device_get(run(jax.random.PRNGKey(3)))
    b = jax.device_get(run(jax.random.PRNGKey(3)))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    c = jax.device_get(run(jax.random.PRNGKey(4)))
    assert not np.array_equal(a[1].last_goal, c[1].last_goal)


def test_step_hands_out_chunk_keys_by_rank_or_rebuilds_all():
    n, k = 32, 4
    venv = VecEnv(ENV, n, reset_pool=k)
    _, state = jax.jit(venv.reset)(jax.random.PRNGKey(5), PARAMS)
    step = fast_jit(venv.step)
    stay = jnp.full((n, ENV.n_agents), 6, jnp.int32)  # "done" action: nobody moves
    key = jax.random.PRNGKey(6)
    for ended in ([1, 5, 6, 17, 30, 31], list(range(0, 32, 2)) + [3, 5, 7, 9]):
        mask = np.isin(np.arange(n), ended)
        start = state.replace(time=jnp.where(mask, MAX_STEPS - 1, 0).astype(jnp.int32))
        _, new, _, done, _ = step(key, start, stay, PARAMS)
        np.testing.assert_array_equal(np.asarray(done), mask)
        tags = np.asarray(new.last_goal)
        if len(ended) <= 8:  # two chunks of 4 (8 layouts <= 32 / 2): rank r takes chunk r // 4
            assert int(venv.reset_branch(len(ended))) == 1
            chunks = [_tags(jax.random.split(jax.random.fold_in(key, c), k)) for c in range(2)]
            want = np.concatenate(chunks)[: len(ended)]
        else:  # 20 ended: five chunks would build 20 > 32 / 2 layouts, so all 32 are rebuilt
            assert int(venv.reset_branch(len(ended))) == 2
            want = _tags(jax.random.split(key, n))[np.sort(ended)]
        np.testing.assert_array_equal(tags[np.sort(ended)], want)
        np.testing.assert_array_equal(np.asarray(new.time), np.where(mask, 0, 1))
        kept = ~mask  # unfinished envs are untouched (one step of "done" actions)
        for got, old in zip(jax.tree.leaves(new.replace(time=start.time)), jax.tree.leaves(start)):
            np.testing.assert_array_equal(np.asarray(got)[kept], np.asarray(old)[kept])


def test_reset_pool_option():
    env, _ = sociajax.make("FourRooms")
    assert VecEnv(env, 4096).reset_pool == default_reset_pool(4096) == 64
    assert VecEnv(env, 256).reset_pool == 16 and VecEnv(env, 4).reset_pool == 4
    assert VecEnv(env, 8, reset_pool=100).reset_pool == 8
    for bad in (0, -1, 1.5, True, "4"):
        with pytest.raises(ValueError, match="reset_pool"):
            VecEnv(env, 8, reset_pool=bad)
