"""Orbax checkpoints of a run: the whole seed-stacked :class:`RunState` plus a small JSON
record (updates done, env steps per seed, wall time), so a resumed run continues bit for bit.

In a multi-process run every process takes part in each save and restore (orbax's
multi-process protocol: each writes and reads the shards of its own devices, process 0 the
metadata and the JSON record, with barriers between), so the run folder must be on a file
system all processes share.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp

from sociajax.training.trainer import RunState, Trainer

CHECKPOINT_DIR = "checkpoints"


class Checkpointer:
    """Save / restore ``(RunState, meta)`` under ``run_dir/checkpoints/<update>``."""

    def __init__(self, run_dir: str | os.PathLike, keep: int = 2, create: bool = True) -> None:
        self.directory = Path(run_dir).absolute() / CHECKPOINT_DIR
        if not create and not self.directory.is_dir():
            raise FileNotFoundError(f"{Path(run_dir)} has no checkpoints/ folder")
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=create),
        )

    def latest(self) -> Optional[int]:
        return self.manager.latest_step()

    def save(self, update: int, state: RunState, meta: dict[str, Any]) -> None:
        """Blocking save (a run stopped right after still has it); in a multi-process run
        every process must call it, at the same update."""
        self.manager.save(
            update,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            force=True,
        )
        self.manager.wait_until_finished()

    def restore(
        self, trainer: Trainer, update: Optional[int] = None, local: bool = False
    ) -> tuple[RunState, dict[str, Any]]:
        """The state and meta saved at ``update`` (default: the latest). The state is placed
        as ``trainer`` places it (in a multi-process run: global arrays, each process reading
        only its devices' shards), or with ``local`` whole on this process's first device
        (to read numbers on the host, e.g. an expert's params)."""
        update = self.latest() if update is None else update
        if update is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = jax.eval_shape(trainer.init, trainer.seed_keys())
        sharding = None if local else trainer.sharding
        sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract)
        try:
            return self.restore_as(abstract, update)
        except ValueError as err:
            if "data.epsilon" not in str(err):
                raise
        # Written before scripted experts' ``epsilon`` became run data: restore the rest, and
        # take ``epsilon`` from the config, whence every field of ``RunState.data`` comes.
        saved = {f.name: getattr(abstract.data, f.name) for f in dataclasses.fields(abstract.data) if f.name != "epsilon"}
        state, meta = self.restore_as(abstract.replace(data=saved), update)
        epsilon = jax.device_put(trainer.run_data.epsilon) if local else trainer.place(trainer.run_data.epsilon)
        return state.replace(data=type(abstract.data)(**state.data, epsilon=epsilon)), meta

    def restore_as(self, abstract: Any, update: int) -> tuple[Any, dict[str, Any]]:
        """The state saved at ``update`` as ``abstract`` (a pytree of ``ShapeDtypeStruct``
        with shardings) describes it, and its meta."""
        restored = self.manager.restore(
            update,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()),
        )
        return restored["state"], dict(restored["meta"])

    def close(self) -> None:
        self.manager.close()


@dataclasses.dataclass
class LoadedRun:
    """A run folder's config and the seed-stacked state of its last checkpoint."""

    config: Any  # TrainConfig
    state: RunState
    meta: dict[str, Any]


def load_run(run_dir: str | os.PathLike, update: Optional[int] = None) -> LoadedRun:
    """The config and checkpoint (``update``; default the last) of the run in ``run_dir``."""
    from sociajax.training.config import TrainConfig
    from sociajax.training.trainer import make_train

    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{run_dir} holds no run (no config.json)")
    config = TrainConfig.from_dict(json.loads(config_path.read_text()), source=str(config_path))
    checkpointer = Checkpointer(run_dir, keep=config.keep_checkpoints, create=False)
    try:
        kept = sorted(checkpointer.manager.all_steps())
        if update is not None and update not in kept:
            raise ValueError(f"{run_dir} has no checkpoint at update {update}; kept: {kept}")
        # Alone: placed as the run placed it; with several processes, whole on each (the
        # callers read it on the host, which global arrays would not allow).
        state, meta = checkpointer.restore(make_train(config), update, local=jax.process_count() > 1)
    finally:
        checkpointer.close()
    return LoadedRun(config, state, meta)


def load_agent_params(
    run_dir: str | os.PathLike,
    agent: int,
    seed_index: int = 0,
    update: Optional[int] = None,
    condition: int = 0,
) -> Any:
    """Network params of ``agent`` (a learner or frozen agent) of seed ``seed_index`` (and
    condition ``condition``) from the checkpoint at ``update`` (default: the last) of the run
    in ``run_dir``: how experts load their policies."""
    from sociajax.training.trainer import make_train

    run = load_run(run_dir, update)
    config = run.config
    trainer = make_train(config)
    population = trainer.population
    if agent not in population.learned_agents:
        raise ValueError(
            f"agent {agent} of {run_dir} has no network (roles: {[a.role for a in config.agents]})"
        )
    if not 0 <= seed_index < config.num_seeds:
        raise ValueError(f"seed index {seed_index} out of range: {run_dir} has num_seeds={config.num_seeds}")
    if not 0 <= condition < len(trainer.conditions):
        raise ValueError(f"condition {condition} out of range: {run_dir} has {len(trainer.conditions)}")
    position = population.learned_agents.index(agent)
    stacked = jax.vmap(population.acting_params)(run.state.population)  # [R, L + F, ...]
    run_index = condition * config.num_seeds + seed_index
    return jax.tree.map(lambda x: x[run_index, position], stacked)
