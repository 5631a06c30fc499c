"""Running a figure: all its conditions and seeds trained as one compiled program, the run
folder's checkpoints, and the ``summary.json`` fields and closing lines every script shares."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from sociajax.training.results import late_mean

from scales import Scale


# ``figure4.csv``-style columns (results.long_rows): the novice is agent 0, the experts 1 and 2.
NOVICE_COLUMNS: dict[str, tuple[str, tuple[int, ...]]] = {
    "return": ("return", (0,)),
    "expert_return": ("return", (1, 2)),
    "penalty": ("penalty", (0,)),
    "entropy": ("entropy", (0,)),
    "aux_loss": ("aux_loss", (0,)),
}


def check_one_program(config: Any) -> None:
    """Every condition has the same static config (what the compiled program depends on),
    so conditions x seeds are one program that differs only in data."""
    from sociajax.training.config import condition_static_configs

    statics = condition_static_configs(config)
    first = next(iter(statics.values()))
    differing = [name for name, s in statics.items() if s != first]
    if differing:
        raise AssertionError(f"conditions {differing} would compile another program")


def compiled_programs() -> int:
    """How many training programs this process has compiled so far (the trainer's cache of
    compiled chunks): a figure's conditions and seeds must add exactly one, or none when an
    earlier call in the same process already compiled that program."""
    from sociajax.training import trainer

    return len(trainer._COMPILED)


def train_as_one_program(config: Any, resume: bool) -> tuple[Any, int]:
    """Train ``config`` and return (result, training programs compiled): at most one, or
    the figure's conditions and seeds were not one program after all."""
    from sociajax.training.run import train

    before = compiled_programs()
    result = train(config, resume=resume)
    compiled = compiled_programs() - before
    if compiled > 1:
        raise AssertionError(f"training compiled {compiled} programs; conditions x seeds must be one")
    return result, compiled


def kept_checkpoints(run_dir: Path) -> list[int]:
    """The updates at which ``run_dir`` holds a checkpoint, in order."""
    folder = run_dir / "checkpoints"
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()) if folder.is_dir() else []


def run_summary(scale: Scale, config: Any, conditions: Sequence[str], result: Any, compiled: int,
                script_start: float, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``summary.json`` fields every figure script records: budget, seeds, programs
    compiled, wall and compile time (and the CPU, cores, XLA flags and run loop they ran
    with), and each condition's late return."""
    import jax

    from sociajax.host import cores_available, cpu_label

    return {
        "num_seeds": config.num_seeds,
        "seeds": list(range(config.seed, config.seed + config.num_seeds)),
        "episodes_per_run": scale.num_updates * scale.ppo.num_envs,
        "env_steps_per_run": scale.total_env_steps,
        "updates": result.updates,
        "runs": len(conditions) * config.num_seeds,
        "compiled_training_programs": compiled,
        "train_wall_s": round(result.wall_s, 1),
        "compile_s": round(result.compile_s, 1),
        "script_wall_s": round(time.perf_counter() - script_start, 1),
        "cpu": cpu_label(),
        "cores": cores_available(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),  # thread settings round sums differently
        "run_loop": config.run_loop,  # so do batched and looped runs
        "device": jax.devices()[0].device_kind,
        "late_return": {c: late_mean(rows, c) for c in conditions},
    }


def print_late_returns(labels: Mapping[str, str], summary: Mapping[str, Any]) -> None:
    """The closing lines of a training figure script: programs compiled and each
    condition's late return."""
    print(f"{len(labels)} conditions x {summary['num_seeds']} seeds, {summary['compiled_training_programs']} compiled "
          "training program(s); late return (last 10% of updates):")
    for name, label in labels.items():
        print(f"  {label:<32} {summary['late_return'][name]:+.2f}")
