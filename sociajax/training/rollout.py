"""Collect whole episodes of a population with ``lax.scan``.

Each update starts ``B`` fresh episodes and steps them for the rollout length (the time
limit padded to a multiple of ``segment_len``). Envs are stepped *without* auto-reset: an
env whose episode ended keeps stepping, but its later steps are masked (``valid`` False,
reward 0), so every env contributes exactly one episode, as in the paper's "128 episodes per
update". No ``lax.cond`` sits in the loop, so nothing turns into a both-branches ``select``
when seeds are vmapped. Agents that reached their goal in Four Rooms / Maze stop acting: that
step is their ``done`` and their later steps are masked too, as are all steps of an agent
absent from the episode (``EnvState.present``). ``starts`` is True only at step 0 (no episode
begins inside a rollout), and ``obs[t + 1]`` after a done is the episode's real last view,
not a reset's. A learner's rollout holds the views, actions, rewards and masks of its *data
agent*: itself, or for an imitation learner the agent it clones (whose views are rendered
anyway); its log-probabilities and values are always its own.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from sociajax.agents.ppo import Rollout
from sociajax.envs.core import EnvParams, MultiAgentGridEnv
from sociajax.training.population import Population

# ``vmap`` axes of a learner-stacked rollout: time-major fields carry learners on axis 1.
ROLLOUT_AXES = Rollout(
    obs=1, actions=1, rewards=1, dones=1, starts=1, log_probs=1, values=1, init_carry=0, valid=1,
    seg_carry=1, last_value=0,
)


@struct.dataclass
class EpisodeStats:
    """Per env of one rollout: ``returns`` f32 [B, A] (summed over the episode),
    ``lengths`` int32 [B] (env steps until the episode ended) and ``present`` bool [B, A]
    (the agent took part in the episode)."""

    returns: jax.Array
    lengths: jax.Array
    present: jax.Array

    def mean_returns(self) -> jax.Array:
        """f32 [A]: each agent's mean return over the episodes it took part in (NaN: none)."""
        count = jnp.sum(self.present, 0)
        total = jnp.sum(jnp.where(self.present, self.returns, 0.0), 0)
        return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)


def collect(
    population: Population,
    env: MultiAgentGridEnv,
    env_params: EnvParams,
    params: Any,
    key: jax.Array,
    num_envs: int,
    num_steps: int,
    greedy: bool = False,
    data_agents: Any = None,
    epsilon: Any = None,
    segment_len: int = 0,
) -> tuple[Rollout, EpisodeStats]:
    """One batch of whole episodes: the learners' :class:`Rollout` stacked on axis 1 of its
    time-major fields (see :data:`ROLLOUT_AXES`; init_carry on axis 0) and episode stats.

    ``params``: the learned agents' stacked params (``population.acting_params(state)``);
    ``greedy`` takes the most likely action instead of sampling (evaluation);
    ``data_agents`` int [L] (may be traced; default: the learners themselves) whose
    experience fills each learner's rollout; ``epsilon`` f32 [A] (may be traced) the scripted
    agents' chance of a random move: a run's ``RunData.epsilon`` (default: the population's
    own config's, all 0 for a trainer's population, whose config is static).

    ``segment_len`` > 0 (a divisor of ``num_steps``) also keeps what PPO's first recompute
    would compute again (``Rollout.seg_carry`` every ``segment_len`` steps and
    ``Rollout.last_value``, see ``PPOConfig.reuse_rollout``): only for learners that train
    on their own experience (``data_agents`` the learners themselves)."""
    if segment_len and num_steps % segment_len:
        raise ValueError(f"segment_len={segment_len} must divide num_steps={num_steps}")
    epsilon = population.epsilons if epsilon is None else epsilon
    if data_agents is None:
        data_agents = population.learner_agents
    learners = jnp.asarray(data_agents, jnp.int32)
    n_learners = len(population.learner_agents)
    key_reset, key_run = jax.random.split(key)
    env_state = jax.vmap(env.reset_state, in_axes=(0, None))(jax.random.split(key_reset, num_envs), env_params)
    get_obs = jax.vmap(env.get_obs, in_axes=(0, None))
    step = jax.vmap(env.step_state, in_axes=(0, 0, None))

    def body(carry, t):
        env_state, obs, rnn, memories, finished, starts, totals, lengths, seg_carry = carry
        if segment_len:  # the carry each learner consumes at a segment start (after the reset)
            slot = t // segment_len
            consumed = jax.tree.map(lambda c: jnp.where(starts[:, None], 0.0, c[:n_learners]), rnn)
            seg_carry = jax.tree.map(
                lambda buf, c: jax.lax.dynamic_update_index_in_dim(
                    buf, jnp.where(t % segment_len == 0, c, buf[slot]), slot, 0
                ),
                seg_carry, consumed,
            )
        active = ~finished
        acting = active[:, None] & ~env_state.agent_done & env_state.present  # [B, A]
        actions, rnn, memories, extras = population.act(
            jax.random.fold_in(key_run, t), params, rnn, memories, obs, starts, env_state, greedy, epsilon
        )
        was_done = env_state.agent_done
        env_state, reward, done = step(env_state, actions, env_params)
        reward = jnp.where(active[:, None], reward, 0.0)
        ended = done & active
        # A learner's own episode also ends when it reaches its goal (Four Rooms, Maze): its
        # later steps are masked, so GAE must not bootstrap through them.
        agent_ended = ended[:, None] | (acting & env_state.agent_done & ~was_done)  # [B, A]
        out = {
            "obs": jnp.swapaxes(obs[:, learners], 0, 1),  # [L, B, ...]
            "actions": actions[:, learners].T,
            "rewards": reward[:, learners].T,
            "dones": agent_ended[:, learners].T,
            "starts": jnp.broadcast_to(starts, (n_learners, num_envs)),
            "log_probs": extras["log_prob"][:n_learners],
            "values": extras["value"][:n_learners],
            "valid": acting[:, learners].T,
        }
        carry = (
            env_state,
            get_obs(env_state, env_params),
            rnn,
            memories,
            finished | done,
            jnp.zeros_like(starts),
            totals + reward,
            lengths + active.astype(jnp.int32),
            seg_carry,
        )
        return carry, out

    init = (
        env_state,
        get_obs(env_state, env_params),
        population.initial_carry(num_envs),
        population.init_memories(env_state),
        jnp.zeros((num_envs,), bool),
        jnp.ones((num_envs,), bool),
        jnp.zeros((num_envs, population.n_agents), jnp.float32),
        jnp.zeros((num_envs,), jnp.int32),
        jax.tree.map(
            lambda c: jnp.zeros((num_steps // segment_len,) + c[:n_learners].shape, c.dtype),
            population.initial_carry(num_envs),
        ) if segment_len else None,
    )
    (_, last_obs, rnn, _, _, last_starts, totals, lengths, seg_carry), out = jax.lax.scan(
        body, init, jnp.arange(num_steps)
    )
    last_value = None
    if segment_len:
        learner_obs = jnp.swapaxes(last_obs[:, learners], 0, 1)  # [L, B, ...]
        last_value = population.values(
            jax.tree.map(lambda p: p[:n_learners], params), jax.tree.map(lambda c: c[:n_learners], rnn),
            learner_obs, last_starts,
        )
    rollout = Rollout(
        obs=jnp.concatenate([out["obs"], jnp.swapaxes(last_obs[:, learners], 0, 1)[None]], 0),
        actions=out["actions"],
        rewards=out["rewards"],
        dones=out["dones"],
        starts=jnp.concatenate([out["starts"], jnp.broadcast_to(last_starts, (1, n_learners, num_envs))], 0),
        log_probs=out["log_probs"],
        values=out["values"],
        init_carry=jax.tree.map(lambda c: c[:n_learners], population.initial_carry(num_envs)),
        valid=out["valid"],
        seg_carry=seg_carry,
        last_value=last_value,
    )
    return rollout, EpisodeStats(returns=totals, lengths=lengths, present=env_state.present)
