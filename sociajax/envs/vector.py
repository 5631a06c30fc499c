"""``VecEnv``: many environments stepped as one batch, resetting only when needed.

Under ``jax.vmap`` an auto-reset runs the layout generator on every step (both sides of a
conditional are computed for a batch). Goal Cycle layouts need a connectivity check and mazes
are carved by depth-first search, so that would dominate the step. ``VecEnv`` steps the batch
without resets and then, inside one ``lax.cond`` on "did any episode end", builds fresh
layouts and swaps them in where episodes ended. Goal Cycle episodes all last ``max_steps``,
so a batch started together pays for layouts once per episode.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sociajax.envs.core import EnvParams, EnvState, MultiAgentGridEnv


def where_envs(mask: jax.Array, new, old):
    """Pytree of ``new`` where ``mask`` [N] is True, else ``old`` (leaves with a leading env axis)."""
    pick = lambda a, b: jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)
    return jax.tree.map(pick, new, old)


class VecEnv:
    """``num_envs`` copies of ``env`` with batched reset/step (same API, leading env axis).

    obs uint8 [N, A, 21, 21, 3]; actions int32 [N, A]; reward [N, A]; done bool [N].
    """

    def __init__(self, env: MultiAgentGridEnv, num_envs: int) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got num_envs={num_envs!r}")
        self.env = env
        self.num_envs = num_envs

    @property
    def default_params(self) -> EnvParams:
        return self.env.default_params

    def reset(self, key: jax.Array, params: EnvParams | None = None) -> tuple[jax.Array, EnvState]:
        params = self.default_params if params is None else params
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.reset, in_axes=(0, None))(keys, params)

    def step(
        self,
        key: jax.Array,
        state: EnvState,
        actions: jax.Array,
        params: EnvParams | None = None,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, jax.Array]]:
        params = self.default_params if params is None else params
        actions = jnp.asarray(actions)
        if actions.shape != (self.num_envs, self.env.n_agents):
            raise ValueError(
                f"actions must have shape ({self.num_envs}, {self.env.n_agents}), got {actions.shape}"
            )
        next_state, reward, done = jax.vmap(self.env.step_state, in_axes=(0, 0, None))(
            state, actions, params
        )
        info = jax.vmap(self.env._episode_info)(next_state)

        def with_resets(state: EnvState) -> EnvState:
            fresh = jax.vmap(self.env.reset_state, in_axes=(0, None))(
                jax.random.split(key, self.num_envs), params
            )
            return where_envs(done, fresh, state)

        state = jax.lax.cond(jnp.any(done), with_resets, lambda state: state, next_state)
        obs = jax.vmap(self.env.get_obs, in_axes=(0, None))(state, params)
        return obs, state, reward, done, info
