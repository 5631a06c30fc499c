"""``VecEnv``: many environments stepped as one batch, building layouts only for envs that ended.

Under ``jax.vmap`` an auto-reset runs the layout generator on every step (both sides of a
conditional are computed for a batch). Goal Cycle layouts need a connectivity check and mazes
are carved by depth-first search, so that would dominate the step. ``VecEnv`` steps the batch
without resets and then, only on steps where some episode ended, builds fresh layouts and
swaps them in where episodes ended.

How many layouts it builds on such a step depends on how many episodes ended (``D``):

* ``D`` small (the usual case in a large, desynchronised batch): layouts are built in chunks of
  ``reset_pool`` (``K``) fresh draws, ``ceil(D / K)`` chunks, and the ``D`` finished envs take
  them in env order. This is Craftax's "optimistic reset" (a small batch of resets per step
  instead of one per env) made exact: Craftax hands the same reset to several envs when more
  than its ``num_envs / reset_ratio`` resets are needed; here more chunks are built instead,
  so no draw ever goes to two episodes, and unused draws are thrown away, never kept for a
  later step.
* ``D`` large (a batch whose episodes end together, e.g. Goal Cycle's fixed-length ones): all
  ``N`` layouts are built at once and swapped in where episodes ended, as one big batch is
  cheaper than many small chunks.

Every layout comes from ``env.reset_state`` on its own key split from the step key, and which
key a finished env receives depends only on its rank among the finished envs, never on the
layouts. So each episode's layout is an independent draw from the distribution of
``env.reset``, whichever path ran. Nothing is carried between steps: the state and the API are
those of a plain batch of ``EnvState``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sociajax.envs.core import EnvParams, EnvState, MultiAgentGridEnv

# Default chunk size: about 1/64 of the batch, at least 16 (see ``VecEnv``).
POOL_FRACTION = 64
POOL_MIN = 16


def where_envs(mask: jax.Array, new, old):
    """Pytree of ``new`` where ``mask`` [N] is True, else ``old`` (leaves with a leading env axis)."""
    pick = lambda a, b: jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)
    return jax.tree.map(pick, new, old)


def default_reset_pool(num_envs: int) -> int:
    """Layouts per reset chunk when none is given: ``max(16, num_envs // 64)``, at most ``num_envs``.

    Random-action Four Rooms at 4,096 envs ends 0-3 episodes on most steps (after the first
    synchronised time-out), so one small chunk serves almost every step."""
    return min(num_envs, max(POOL_MIN, num_envs // POOL_FRACTION))


class VecEnv:
    """``num_envs`` copies of ``env`` with batched reset/step (same API, leading env axis).

    obs uint8 [N, A, 21, 21, 3]; actions int32 [N, A]; reward [N, A]; done bool [N].

    ``reset_pool`` (``K``): fresh layouts built per chunk on a step where episodes ended
    (default :func:`default_reset_pool`; values above ``num_envs`` act as ``num_envs``). With
    ``K >= num_envs`` every such step builds all ``num_envs`` layouts, the behaviour before
    chunks existed. See the module docstring for why the layouts stay exact draws.
    """

    def __init__(self, env: MultiAgentGridEnv, num_envs: int, reset_pool: int | None = None) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got num_envs={num_envs!r}")
        if reset_pool is None:
            reset_pool = default_reset_pool(num_envs)
        elif isinstance(reset_pool, bool) or not isinstance(reset_pool, int) or reset_pool < 1:
            raise ValueError(f"reset_pool must be a positive integer or None, got reset_pool={reset_pool!r}")
        self.env = env
        self.num_envs = num_envs
        self.reset_pool = min(reset_pool, num_envs)

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
        """Step every env; envs whose episode ended start a new one (obs and state are its
        first), and ``info`` holds the finished episodes' ``episode_return`` and
        ``episode_length``, as :meth:`MultiAgentGridEnv.step`."""
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
        keep = lambda key, state: state
        reset_all = lambda key, state: self._reset_all(key, state, done, params)
        n_done = jnp.sum(done, dtype=jnp.int32)
        if self.reset_pool >= self.num_envs:  # chunks could not save anything: don't compile them
            state = jax.lax.cond(n_done > 0, reset_all, keep, key, next_state)
        else:
            chunked = lambda key, state: self._reset_in_chunks(key, state, done, params)
            state = jax.lax.switch(self.reset_branch(n_done), [keep, chunked, reset_all], key, next_state)
        obs = jax.vmap(self.env.get_obs, in_axes=(0, None))(state, params)
        return obs, state, reward, done, info

    def reset_branch(self, n_done: jax.Array) -> jax.Array:
        """0: no episode ended; 1: build ``ceil(n_done / K)`` chunks of ``K`` layouts; 2: build
        all ``N``. Chunks are used while they would build at most half as many layouts as
        ``N`` (a single big batch beats many small ones beyond that)."""
        k, n = self.reset_pool, self.num_envs
        chunked_layouts = -(-n_done // k) * k
        use_chunks = (k < n) & (2 * chunked_layouts <= n)
        return jnp.where(n_done == 0, 0, jnp.where(use_chunks, 1, 2)).astype(jnp.int32)

    def _reset_all(self, key: jax.Array, state: EnvState, done: jax.Array, params: EnvParams) -> EnvState:
        """Env ``i`` takes the layout of ``split(key, N)[i]`` if its episode ended."""
        fresh = jax.vmap(self.env.reset_state, in_axes=(0, None))(jax.random.split(key, self.num_envs), params)
        return where_envs(done, fresh, state)

    def _reset_in_chunks(self, key: jax.Array, state: EnvState, done: jax.Array, params: EnvParams) -> EnvState:
        """The finished env of rank ``r`` (in env order) takes the layout of
        ``split(fold_in(key, r // K), K)[r % K]``; chunk ``c`` is built only if some env has
        rank in ``[c K, (c + 1) K)``. Each chunk is scattered into the ``K`` envs it serves, so
        a chunk costs ``K`` layouts whatever ``N`` is."""
        k, n = self.reset_pool, self.num_envs
        n_chunks_max = -(-n // k)
        # Indices of the finished envs in env order, padded with N (an index scatter drops).
        order = jnp.nonzero(done, size=n_chunks_max * k, fill_value=n)[0].astype(jnp.int32)
        n_chunks = -(-jnp.sum(done, dtype=jnp.int32) // k)

        def chunk(carry: tuple[jax.Array, EnvState]) -> tuple[jax.Array, EnvState]:
            c, state = carry
            keys = jax.random.split(jax.random.fold_in(key, c), k)
            fresh = jax.vmap(self.env.reset_state, in_axes=(0, None))(keys, params)
            targets = jax.lax.dynamic_slice(order, (c * k,), (k,))
            state = jax.tree.map(lambda s, f: s.at[targets].set(f, mode="drop"), state, fresh)
            return c + 1, state

        _, state = jax.lax.while_loop(lambda carry: carry[0] < n_chunks, chunk, (jnp.int32(0), state))
        return state
