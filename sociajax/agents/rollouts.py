"""Roll out populations of scripted policies, batched and jitted."""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sociajax.envs.core import EnvParams, EnvState, MultiAgentGridEnv
from sociajax.envs.vector import VecEnv, where_envs


def _act_all(policies: Sequence[Any], key: jax.Array, memories: list, state: EnvState):
    """Actions int32 [A] and new memories for one environment."""
    keys = jax.random.split(key, len(policies))
    actions, new = [], []
    for agent, (policy, memory) in enumerate(zip(policies, memories)):
        action, memory = policy.act(keys[agent], memory, state, agent)
        actions.append(action)
        new.append(memory)
    return jnp.stack(actions).astype(jnp.int32), new


def _check_population(env: MultiAgentGridEnv, policies: Sequence[Any]) -> None:
    if len(policies) != env.n_agents:
        raise ValueError(f"need one policy per agent: got {len(policies)} policies for n_agents={env.n_agents}")


def scripted_returns(
    env: MultiAgentGridEnv,
    params: EnvParams,
    policies: Sequence[Any],
    key: jax.Array,
    num_envs: int = 64,
    num_steps: int | None = None,
) -> jax.Array:
    """float32 [num_envs, A]: summed reward of each agent over ``num_steps`` steps
    (default: one episode, ``params.max_steps``) in ``num_envs`` parallel envs."""
    _check_population(env, policies)
    num_steps = int(params.max_steps) if num_steps is None else num_steps
    venv = VecEnv(env, num_envs)

    @jax.jit
    def run(key: jax.Array) -> jax.Array:
        key_reset, key_run = jax.random.split(key)
        _, state = venv.reset(key_reset, params)

        def init_all(state: EnvState) -> list:
            return [jax.vmap(policy.init, in_axes=(0, None))(state, i) for i, policy in enumerate(policies)]

        memories = init_all(state)

        def body(carry, key):
            state, memories, total = carry
            key_act, key_step = jax.random.split(key)
            actions, memories = jax.vmap(lambda k, m, s: _act_all(policies, k, m, s))(
                jax.random.split(key_act, num_envs), memories, state
            )
            _, state, reward, done, _ = venv.step(key_step, state, actions, params)
            # Policies start over where an env was reset (a new layout); only steps where some
            # episode ended pay for that.
            restart = lambda memories: where_envs(done, init_all(state), memories)
            memories = jax.lax.cond(jnp.any(done), restart, lambda memories: memories, memories)
            return (state, memories, total + reward), None

        total = jnp.zeros((num_envs, env.n_agents), jnp.float32)
        (_, _, total), _ = jax.lax.scan(body, (state, memories, total), jax.random.split(key_run, num_steps))
        return total

    return run(key)


def record_episode(
    env: MultiAgentGridEnv,
    params: EnvParams,
    policies: Sequence[Any],
    key: jax.Array,
    num_steps: int | None = None,
    tile_px: int = 16,
) -> dict[str, np.ndarray]:
    """One episode with every step recorded: ``frames`` [T+1, H*t, W*t, 3] full renders,
    ``views`` [T+1, A, 21, 21, 3] observations, ``rewards`` [T, A], ``prestige`` [T+1, A].

    Recording stops before the auto-reset, so the last frame is the episode's last state.
    """
    _check_population(env, policies)
    num_steps = int(params.max_steps) if num_steps is None else num_steps

    @jax.jit
    def run(key: jax.Array):
        key_reset, key_run = jax.random.split(key)
        obs, state = env.reset(key_reset, params)
        memories = [policy.init(state, i) for i, policy in enumerate(policies)]

        def body(carry, key):
            state, memories = carry
            actions, memories = _act_all(policies, key, memories, state)
            next_state, reward, _ = env.step_state(state, actions, params)
            out = (env.render(next_state, params, tile_px), env.get_obs(next_state, params), reward, next_state.prestige)
            return (next_state, memories), out

        _, (frames, views, rewards, prestige) = jax.lax.scan(
            body, (state, memories), jax.random.split(key_run, num_steps)
        )
        first = (env.render(state, params, tile_px)[None], obs[None], state.prestige[None])
        return (
            jnp.concatenate([first[0], frames]),
            jnp.concatenate([first[1], views]),
            rewards,
            jnp.concatenate([first[2], prestige]),
        )

    frames, views, rewards, prestige = jax.device_get(run(key))
    return {"frames": frames, "views": views, "rewards": rewards, "prestige": prestige}
