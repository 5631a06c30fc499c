"""``make_train(config)``: the compiled training program of one config.

The returned :class:`Trainer` holds pure functions:

* ``init(keys [R, 2]) -> RunState [R]`` — fresh populations, one per run;
* ``chunk(state) -> (state, metrics)`` — ``updates_per_chunk`` updates of every run in
  one compiled call: a ``lax.scan`` over updates of a ``vmap`` over runs (or, with
  ``run_loop="map"``, a loop over them and over each run's learners), each update =
  collect whole episodes (:mod:`sociajax.training.rollout`) + one PPO update per learner
  (``vmap`` over the learner axis).

A run is one condition and one seed (:mod:`sociajax.training.conditions`): run ``r`` is
condition ``r // num_seeds``, seed ``seed + r % num_seeds``; without conditions, runs are
seeds. Everything in which runs differ is data carried in ``RunState.data`` (learning rates,
coefficients, objectives, penalty and presence schedules, evaluated at the episodes trained
before each update), so the program depends only on the static part of the config
(``config.static_config``): configs that differ only in data share one compiled program.

Update ``u`` of a run draws its randomness from ``fold_in(seed_key, u)``, so the numbers
do not depend on how updates are grouped into chunks or where a run was resumed. Which other
conditions share the program can change them: XLA may compile a program of 6 runs
differently from one of 15 and sum in another order, a float rounding that training can
then grow. With several devices the run axis is sharded over them
(``jax.sharding``), over the devices of every process in a multi-host run
(:mod:`sociajax.training.distributed`); the program is the same, XLA partitions it. The host loop (logging,
checkpoints, signals) lives in :mod:`sociajax.training.run`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sociajax.agents.ppo import ppo_update
from sociajax.envs.core import EnvParams, MultiAgentGridEnv
from sociajax.envs.registry import make
from sociajax.training.conditions import RunData, condition_names, runs_data
from sociajax.training.config import TrainConfig, env_overrides, num_actions, program_config, rollout_length, static_config
from sociajax.training.population import Population, PopulationState
from sociajax.training.rollout import ROLLOUT_AXES, collect

_COMPILED: dict[tuple, Any] = {}  # see Trainer.compiled_chunk

# PPO metrics reported per learner and update (means over the minibatch steps taken).
PPO_METRICS = (
    "loss", "policy_loss", "value_loss", "entropy", "aux_loss", "bc_loss", "approx_kl_final", "num_steps",
    "reverted",
)


@struct.dataclass
class RunState:
    """Everything a run carries between updates (all of it is checkpointed).

    population: learners' train states and frozen params; key: the run's base key
    (uint32 [2], its seed's); update: updates done (int32); data: the run's
    :class:`~sociajax.training.conditions.RunData`."""

    population: PopulationState
    key: jax.Array
    update: jax.Array
    data: RunData


@dataclasses.dataclass(frozen=True)
class Trainer:
    """The compiled program of one config and its sizes (see module doc)."""

    config: TrainConfig
    env: MultiAgentGridEnv
    env_params: EnvParams  # the world's params without the runs' schedules (penalty, presence)
    population: Population
    rollout_steps: int  # steps scanned per update (episode padded to segment_len)
    episode_steps: int  # the env's time limit
    updates_per_chunk: int
    num_chunks: int
    init: Callable[..., RunState]
    chunk: Callable[[RunState], tuple[RunState, dict[str, jax.Array]]]
    sharding: Optional[NamedSharding]
    conditions: tuple[str, ...]  # condition names, in run order
    run_data: RunData  # NumPy [R]

    @property
    def num_updates(self) -> int:
        return self.num_chunks * self.updates_per_chunk

    @property
    def num_runs(self) -> int:
        """Conditions x seeds."""
        return len(self.conditions) * self.config.num_seeds

    @property
    def env_steps_per_update(self) -> int:
        """Env steps one update budgets per run (``num_envs`` episodes at the time limit)."""
        return self.config.ppo.num_envs * self.episode_steps

    def run_seeds(self) -> np.ndarray:
        """int [R]: each run's seed (``seed + r % num_seeds``)."""
        return self.config.seed + np.arange(self.num_runs) % self.config.num_seeds

    def run_conditions(self) -> list[str]:
        """Each run's condition name [R]."""
        return [self.conditions[r // self.config.num_seeds] for r in range(self.num_runs)]

    def seed_keys(self) -> jax.Array:
        """uint32 [R, 2]: run ``r`` draws from ``PRNGKey(seed + r % num_seeds)``, so seed ``i``
        of a sweep is the run with ``seed + i`` alone, in every condition."""
        return jnp.stack([jax.random.PRNGKey(int(s)) for s in self.run_seeds()])

    def env_params_at(self, data: RunData, episodes: jax.Array) -> EnvParams:
        """The world's params of a run after ``episodes`` episodes: its penalty and presence
        schedules in force (traceable)."""
        return schedule_env_params(self.env_params, data, episodes)

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
        """What the compiled program depends on: the config with data and host-only fields at
        their defaults (``config.program_config``), the number of runs and schedule stages;
        the rest of the state's shapes are in ``compiled_chunk``'s key."""
        return (program_config(self.config), self.num_runs, self.updates_per_chunk, self.rollout_steps)

    def place(self, tree: Any) -> Any:
        """Put a run-stacked pytree on the devices (sharded along runs when several). With
        several processes each holds ``tree`` whole (init is deterministic) and builds the
        global arrays from it, placing only its own devices' shards."""
        if self.sharding is None:
            return tree
        if jax.process_count() > 1:
            from sociajax.training.distributed import global_array

            return jax.tree.map(lambda x: global_array(x, self.sharding), tree)
        return jax.device_put(tree, self.sharding)


def schedule_env_params(env_params: EnvParams, data: RunData, episodes: jax.Array) -> EnvParams:
    """``env_params`` with a run's penalty (worlds that have one) and presence in force after
    ``episodes`` episodes."""
    changes = {"presence": data.presence.at(episodes)}
    if hasattr(env_params, "penalty"):
        changes["penalty"] = data.penalty.at(episodes)
    return env_params.replace(**changes)


def _update(
    population: Population,
    env: MultiAgentGridEnv,
    env_params: EnvParams,
    rollout_steps: int,
    loop_learners: bool,
    state: RunState,
) -> tuple[RunState, dict[str, jax.Array]]:
    """One update of one run: collect episodes under the run's schedules, update every
    learner with the run's data (batched, or one after another when ``loop_learners``)."""
    config = population.ppo
    key = jax.random.fold_in(state.key, state.update)
    key_rollout, key_ppo = jax.random.split(key)
    episodes = state.update * config.num_envs
    params = schedule_env_params(env_params, state.data, episodes)
    rollout, stats = collect(
        population, env, params, population.acting_params(state.population), key_rollout,
        config.num_envs, rollout_steps, data_agents=state.data.data_agents, epsilon=state.data.epsilon,
        segment_len=config.segment_len if config.reuse_rollout else 0,  # off in programs that clone (static_config)
    )
    n_learners = len(population.learner_agents)

    def update_one(learner, learner_rollout, key_learner, data):
        return ppo_update(learner, learner_rollout, key_learner, config, data)

    keys = jax.random.split(key_ppo, n_learners)
    if loop_learners:  # unbatched, so the update's conds skip their work; the learner axis goes first
        args = (state.population.learners, _learners_first(rollout), keys, state.data.learners)
        if n_learners == 1:  # a loop of one is its body
            learners, ppo_metrics = jax.tree.map(lambda x: x[None], update_one(*jax.tree.map(lambda x: x[0], args)))
        else:
            learners, ppo_metrics = jax.lax.map(lambda a: update_one(*a), args)
    else:
        learners, ppo_metrics = jax.vmap(update_one, in_axes=(0, ROLLOUT_AXES, 0, 0))(
            state.population.learners, rollout, keys, state.data.learners)
    metrics = {
        "return": stats.mean_returns(),  # [A], over the episodes each agent took part in
        "present": jnp.mean(stats.present.astype(jnp.float32), 0),  # [A]
        "presence": params.presence,  # [A], in force
        "penalty": getattr(params, "penalty", jnp.full((), jnp.nan)).astype(jnp.float32),
        "env_steps": jnp.sum(stats.lengths),
        "episode_length": jnp.mean(stats.lengths.astype(jnp.float32)),
    }
    metrics.update({k: ppo_metrics[k].astype(jnp.float32) for k in PPO_METRICS})  # [L]
    new_state = state.replace(population=state.population.replace(learners=learners), update=state.update + 1)
    return new_state, metrics


def _learners_first(rollout: Any) -> Any:
    """The rollout with each field's learner axis (:data:`ROLLOUT_AXES`) moved to the front."""
    return jax.tree.map(lambda axis, field: jax.tree.map(lambda x: jnp.moveaxis(x, axis, 0), field),
                        ROLLOUT_AXES, rollout)


def mesh_devices(num_runs: int, devices: Sequence[Any]) -> list[Any]:
    """The devices the run axis is sharded over: as many per process as divide the runs each
    process holds, the same number from every process (so every process has shards and runs
    the program). Alone: the first ``gcd(num_runs, device count)`` devices.

    Multi-process runs need the run count to be a multiple of the process count: a process
    without a run would hold no shard of the state it must step with the others."""
    processes: dict[int, list[Any]] = {}
    for device in devices:
        processes.setdefault(device.process_index, []).append(device)
    if len(processes) == 1:
        return list(devices[: math.gcd(num_runs, len(devices))])
    if num_runs % len(processes):
        raise ValueError(
            f"num_runs (conditions x num_seeds) = {num_runs} must be a multiple of the process count "
            f"{len(processes)} in a multi-process run"
        )
    per_process = math.gcd(num_runs // len(processes), min(len(d) for d in processes.values()))
    return [d for index in sorted(processes) for d in processes[index][:per_process]]


def _run_sharding(num_runs: int) -> Optional[NamedSharding]:
    """Shard runs over the devices of every process (None: one device, one process)."""
    devices = mesh_devices(num_runs, jax.devices())
    if len(devices) <= 1:
        return None
    return NamedSharding(Mesh(np.asarray(devices), ("run",)), PartitionSpec("run"))


@functools.lru_cache(maxsize=16)
def _init_program(population: Population) -> Callable[..., RunState]:
    """The jitted initialisation of runs of ``population`` (shared by every config with the
    same static population, so runs that differ only in data compile it once)."""

    def init_one(key: jax.Array, data: RunData, loaded: dict[int, tuple[Any, Any]]) -> RunState:
        key_init, key_run = jax.random.split(key)
        return RunState(
            population=population.init(key_init, loaded), key=key_run, update=jnp.zeros((), jnp.int32), data=data
        )

    # Runs are initialised one after another (``lax.map``), not batched with ``vmap``: the
    # orthogonal initialisers call QR, and on XLA's CPU backend a program holding several
    # *batched* QR calls sometimes never finishes (12 of 22 runs of a 4-seed init on 2 cores;
    # the same QRs unbatched never hung). Init runs once per run, so the loop costs nothing.
    return jax.jit(lambda keys, data, loaded: jax.lax.map(lambda args: init_one(*args), (keys, data, loaded)))


@functools.lru_cache(maxsize=8)
def make_train(config: TrainConfig) -> Trainer:
    """Build (not yet compile) the training program of ``config``; cached per config, so a
    second call — e.g. on ``--resume`` in the same process — reuses the compiled code.

    The program is built from ``static_config(config)`` alone, so no data value can be
    baked into it; the data of every run (``runs_data``) enters through ``RunState.data``."""
    static = static_config(config)
    env, env_params = make(static.env.env_id, **env_overrides(static))
    population = Population(
        static.agents, static.ppo, static.network, num_actions(static.env), obs_shape=tuple(env.obs_shape[1:])
    )
    default_penalty = float(env_params.penalty) if hasattr(env_params, "penalty") else None
    run_data = runs_data(config, default_penalty)
    names = tuple(condition_names(config))
    steps = rollout_length(config)
    episode_steps = int(env_params.max_steps)
    per_update = config.ppo.num_envs * episode_steps
    num_updates = max(1, -(-config.total_env_steps // per_update))
    per_chunk = config.updates_per_chunk  # not capped: a resumed run must keep the same program
    num_chunks = -(-num_updates // per_chunk)

    init_all = _init_program(population)

    def init(keys: jax.Array, loaded: Optional[dict[int, tuple[Any, Any]]] = None) -> RunState:
        """keys uint32 [R, 2]; ``loaded[agent] = (params [R, ...], use bool [R])`` replaces
        an agent's initial params in the runs where ``use`` (``run.loaded_params`` builds it
        from the config's ``load_from`` fields)."""
        return init_all(keys, run_data, loaded or {})

    # "map" also runs each learner's update on its own, unbatched
    loop_learners = static.run_loop == "map"
    update = functools.partial(_update, population, env, env_params, steps, loop_learners)

    def chunk_one(state: RunState) -> tuple[RunState, dict[str, jax.Array]]:
        if per_chunk == 1:  # no loop: XLA's CPU backend runs loop bodies several times slower
            state, metrics = update(state)
            return state, jax.tree.map(lambda x: x[None], metrics)
        return jax.lax.scan(lambda s, _: update(s), state, None, length=per_chunk)

    # Metrics come back [S, U, ...]; the state buffer is donated (updated in place). With
    # several devices every output stays split along runs like the input: left to XLA's
    # sharding propagation, small outputs (a run's env-step count) came back replicated,
    # which costs an all-gather inside every chunk and, across processes, a slow fetch.
    sharding = _run_sharding(len(names) * config.num_seeds)
    placed = {} if sharding is None else {"out_shardings": sharding}
    runs = jax.vmap(chunk_one) if static.run_loop == "vmap" else functools.partial(jax.lax.map, chunk_one)
    chunk = jax.jit(runs, donate_argnums=0, **placed)
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
        sharding=sharding,
        conditions=names,
        run_data=run_data,
    )
