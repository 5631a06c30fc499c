"""Rollouts in worlds where each agent's episode ends on its own (Four Rooms, Maze).

There a learner that reaches its goal stops acting while the others go on. Its step on the
goal must be a ``done`` (so GAE does not bootstrap through the masked steps after it), and
every later step must be masked. Both worlds share that code (``ReachGoalEnv``); a 5x5 maze is
used because an untrained policy reaches its goal there often (in a 12x12 Four Rooms, none of
64 learners did within 128 steps).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import sociajax
from sociajax.agents.ppo import PPOConfig, gae
from sociajax.training import AgentConfig
from sociajax.training.population import Population
from sociajax.training.rollout import collect

NUM_ENVS = 32
NUM_STEPS = 32  # the env's time limit, so every episode ends inside the rollout


@pytest.fixture(scope="module")
def rollout():
    env, env_params = sociajax.make("Maze", n_agents=2, size=5, max_steps=NUM_STEPS)
    population = Population((AgentConfig(role="learner"), AgentConfig(role="learner")), PPOConfig(num_envs=NUM_ENVS))
    state = population.init(jax.random.PRNGKey(0))
    params = population.acting_params(state)
    run = jax.jit(lambda key: collect(population, env, env_params, params, key, NUM_ENVS, NUM_STEPS))
    rollout, stats = run(jax.random.PRNGKey(1))
    return jax.device_get(rollout), jax.device_get(stats)


def _last_valid_step(valid: np.ndarray) -> np.ndarray:
    """Per [learner, env]: index of the last valid step (valid is a prefix, checked apart)."""
    return valid.sum(axis=0) - 1


def test_a_learners_valid_steps_are_one_prefix_ending_in_a_done(rollout) -> None:
    r, stats = rollout
    valid, dones = np.asarray(r.valid), np.asarray(r.dones)  # [T, L, B]
    steps = valid.sum(axis=0)
    assert (steps >= 1).all()
    prefix = np.arange(NUM_STEPS)[:, None, None] < steps[None]
    np.testing.assert_array_equal(valid, prefix)
    last = _last_valid_step(valid)
    done_at_last = np.take_along_axis(dones, last[None], axis=0)[0]
    assert done_at_last.all(), "a learner's last acting step must end its episode"
    # no done before the end of a learner's own episode
    assert not (dones & (np.arange(NUM_STEPS)[:, None, None] < last[None])).any()
    # the episode length counts until the last agent stops
    np.testing.assert_array_equal(np.asarray(stats.lengths), steps.max(axis=0))


def test_learners_that_reach_their_goal_end_before_the_episode(rollout) -> None:
    r, stats = rollout
    steps = np.asarray(r.valid).sum(axis=0)  # [L, B]
    early = steps < np.asarray(stats.lengths)[None]
    # the case under test happens, and only for a learner that got the goal's reward
    assert early.any(), "no learner reached its goal early: the test has nothing to check"
    rewards = np.asarray(r.rewards).sum(axis=0)
    assert (rewards[early] > 0).all()
    # nothing is earned on masked steps
    assert not np.asarray(r.rewards)[~np.asarray(r.valid)].any()


def test_gae_does_not_bootstrap_past_a_learners_goal(rollout) -> None:
    r, _ = rollout
    values = np.asarray(r.values, np.float32)
    # Values after a learner's end are junk to its GAE: make them huge, the answer must not move.
    junk = np.where(np.asarray(r.valid), values, 1e6)
    last_value = np.zeros(values.shape[1:], np.float32)
    clean, _ = gae(r.rewards, values, r.dones, last_value, 0.99, 0.95)
    dirty, _ = gae(r.rewards, junk, r.dones, last_value + 1e6, 0.99, 0.95)
    valid = np.asarray(r.valid)
    np.testing.assert_allclose(np.asarray(clean)[valid], np.asarray(dirty)[valid], rtol=1e-5, atol=1e-4)
