"""``make_train(config)``: the compiled training program of one config.

The returned :class:`Trainer` holds pure functions:

* ``init(keys [S, 2]) -> RunState [S]`` — fresh populations, one per seed;
* ``chunk(state) -> (state, metrics)`` — ``updates_per_chunk`` updates of every seed in
  one compiled call: a ``lax.scan`` over updates of a ``vmap`` over seeds, each update =
  collect whole episodes (:mod:`sociajax.training.rollout`) + one PPO update per learner
  (``vmap`` over the learner axis, per-learner lr and aux coefficient as data).

Update ``u`` of a seed draws its randomness from ``fold_in(seed_key, u)``, so the numbers
do not depend on how updates are grouped into chunks or where a run was resumed. With
several devices the seed axis is sharded over them (``jax.sharding``); the program is the
same, XLA partitions it. The host loop (logging, checkpoints, signals) lives in
:mod:`sociajax.training.run`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sociajax.agents.ppo import ppo_update
from sociajax.envs.core import EnvParams, MultiAgentGridEnv
from sociajax.envs.registry import make
from sociajax.training.config import TrainConfig, env_overrides, rollout_length
from sociajax.training.population import Population, PopulationState
from sociajax.training.rollout import ROLLOUT_AXES, collect

_COMPILED: dict[tuple, Any] = {}  # see Trainer.compiled_chunk

# PPO metrics reported per learner and update (means over the minibatch steps taken).
PPO_METRICS = (
    "loss", "policy_loss", "value_loss", "entropy", "aux_loss", "approx_kl_final", "num_steps", "reverted"
)


@struct.dataclass
class RunState:
    """Everything a seed carries between updates (all of it is checkpointed).

    population: learners' train states and frozen params; key: the seed's base key
    (uint32 [2]); update: updates done (int32)."""

    population: PopulationState
    key: jax.Array
    update: jax.Array


@dataclasses.dataclass(frozen=True)
class Trainer:
    """The compiled program of one config and its sizes (see module doc)."""

    config: TrainConfig
    env: MultiAgentGridEnv
    env_params: EnvParams
    population: Population
    rollout_steps: int  # steps scanned per update (episode padded to segment_len)
    episode_steps: int  # the env's time limit
    updates_per_chunk: int
    num_chunks: int
    init: Callable[..., RunState]
    chunk: Callable[[RunState], tuple[RunState, dict[str, jax.Array]]]
    sharding: Optional[NamedSharding]

    @property
    def num_updates(self) -> int:
        return self.num_chunks * self.updates_per_chunk

    @property
    def env_steps_per_update(self) -> int:
        """Env steps one update budgets per seed (``num_envs`` episodes at the time limit)."""
        return self.config.ppo.num_envs * self.episode_steps

    def seed_keys(self) -> jax.Array:
        """uint32 [S, 2]: seed ``i`` of a sweep is the run with ``seed + i``."""
        seeds = np.arange(self.config.num_seeds) + self.config.seed
        return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])

    def compiled_chunk(self, state: RunState) -> Callable[[RunState], tuple[RunState, dict[str, jax.Array]]]:
        """``chunk`` compiled ahead of time for ``state``'s shapes and placement, shared by
        every config that builds the same program (configs differing only in run length,
        seed, logging or run folder), so compile time is measured apart and paid once."""
        signature = jax.tree.map(lambda x: (x.shape, x.dtype, getattr(x, "sharding", None)), state)
        key = (self.program_key, jax.tree.structure(state), tuple(jax.tree.leaves(signature)))
        if key not in _COMPILED:
            _COMPILED[key] = self.chunk.lower(state).compile()
        return _COMPILED[key]

    @property
    def program_key(self) -> tuple:
        config = self.config
        return (config.env, config.agents, config.ppo, config.num_seeds, self.updates_per_chunk, self.rollout_steps)

    def place(self, tree: Any) -> Any:
        """Put a seed-stacked pytree on the devices (sharded along seeds when several)."""
        if self.sharding is None:
            return tree
        return jax.device_put(tree, self.sharding)


def _update(
    population: Population,
    env: MultiAgentGridEnv,
    env_params: EnvParams,
    rollout_steps: int,
    state: RunState,
) -> tuple[RunState, dict[str, jax.Array]]:
    """One update of one seed: collect episodes, update every learner."""
    config = population.ppo
    key = jax.random.fold_in(state.key, state.update)
    key_rollout, key_ppo = jax.random.split(key)
    rollout, stats = collect(
        population, env, env_params, population.acting_params(state.population), key_rollout,
        config.num_envs, rollout_steps,
    )
    n_learners = len(population.learner_agents)
    update = jax.vmap(ppo_update, in_axes=(0, ROLLOUT_AXES, 0, 0))
    learners, ppo_metrics = update(
        state.population.learners, rollout, jax.random.split(key_ppo, n_learners), population.learner_ppo_configs()
    )
    metrics = {
        "return": jnp.mean(stats.returns, 0),  # [A]
        "env_steps": jnp.sum(stats.lengths),
        "episode_length": jnp.mean(stats.lengths.astype(jnp.float32)),
    }
    metrics.update({k: ppo_metrics[k].astype(jnp.float32) for k in PPO_METRICS})  # [L]
    new_state = RunState(
        population=state.population.replace(learners=learners), key=state.key, update=state.update + 1
    )
    return new_state, metrics


def _seed_sharding(num_seeds: int) -> Optional[NamedSharding]:
    """Shard seeds over as many devices as divide the seed count (None: one device)."""
    devices = jax.devices()
    count = math.gcd(num_seeds, len(devices))
    if count <= 1:
        return None
    return NamedSharding(Mesh(np.asarray(devices[:count]), ("seed",)), PartitionSpec("seed"))


@functools.lru_cache(maxsize=8)
def make_train(config: TrainConfig) -> Trainer:
    """Build (not yet compile) the training program of ``config``; cached per config, so a
    second call — e.g. on ``--resume`` in the same process — reuses the compiled code."""
    env, env_params = make(config.env.env_id, **env_overrides(config))
    population = Population(config.agents, config.ppo, config.network)
    steps = rollout_length(config)
    episode_steps = int(env_params.max_steps)
    per_update = config.ppo.num_envs * episode_steps
    num_updates = max(1, -(-config.total_env_steps // per_update))
    per_chunk = config.updates_per_chunk  # not capped: a resumed run must keep the same program
    num_chunks = -(-num_updates // per_chunk)

    def init_one(key: jax.Array, loaded: dict[int, Any]) -> RunState:
        key_init, key_run = jax.random.split(key)
        return RunState(
            population=population.init(key_init, loaded), key=key_run, update=jnp.zeros((), jnp.int32)
        )

    # Seeds are initialised one after another (``lax.map``), not batched with ``vmap``: the
    # orthogonal initialisers call QR, and on XLA's CPU backend a program holding several
    # *batched* QR calls sometimes never finishes (12 of 22 runs of a 4-seed init on 2 cores;
    # the same QRs unbatched never hung). Init runs once per run, so the loop costs nothing.
    init_all = jax.jit(lambda keys, loaded: jax.lax.map(lambda key: init_one(key, loaded), keys))

    def init(keys: jax.Array, loaded: Optional[dict[int, Any]] = None) -> RunState:
        """keys uint32 [S, 2]; ``loaded[agent]`` params (shared by all seeds) replace an
        agent's initial params."""
        return init_all(keys, loaded or {})

    update = functools.partial(_update, population, env, env_params, steps)

    def chunk_one(state: RunState) -> tuple[RunState, dict[str, jax.Array]]:
        if per_chunk == 1:  # no loop: XLA's CPU backend runs loop bodies several times slower
            state, metrics = update(state)
            return state, jax.tree.map(lambda x: x[None], metrics)
        return jax.lax.scan(lambda s, _: update(s), state, None, length=per_chunk)

    # Metrics come back [S, U, ...]; the state buffer is donated (updated in place).
    chunk = jax.jit(jax.vmap(chunk_one), donate_argnums=0)
    return Trainer(
        config=config,
        env=env,
        env_params=env_params,
        population=population,
        rollout_steps=steps,
        episode_steps=episode_steps,
        updates_per_chunk=per_chunk,
        num_chunks=num_chunks,
        init=init,
        chunk=chunk,
        sharding=_seed_sharding(config.num_seeds),
    )
