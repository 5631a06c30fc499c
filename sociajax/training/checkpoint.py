"""Orbax checkpoints of a run: the whole seed-stacked :class:`RunState` plus a small JSON
record (updates done, env steps per seed, wall time), so a resumed run continues bit for bit.
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
        """Blocking save (a run stopped right after still has it)."""
        self.manager.save(
            update,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            force=True,
        )
        self.manager.wait_until_finished()

    def restore(self, trainer: Trainer, update: Optional[int] = None) -> tuple[RunState, dict[str, Any]]:
        """The state (placed as ``trainer`` places it) and meta saved at ``update`` (default:
        the latest)."""
        update = self.latest() if update is None else update
        if update is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = jax.eval_shape(trainer.init, trainer.seed_keys())
        sharding = trainer.sharding or jax.sharding.SingleDeviceSharding(jax.devices()[0])
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract)
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
        state, meta = checkpointer.restore(make_train(config), update)
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
