"""``python -m sociajax.train --preset NAME [--run-dir DIR] [--seed S] [--num-seeds K]
[--total-env-steps N] [--grid FIELD=V1,V2 ...] [--resume] [--any.config.field VALUE]
[--distributed auto | --distributed.coordinator HOST:PORT --distributed.num-processes N
--distributed.process-id I]``

The preset gives the whole :class:`~sociajax.training.config.TrainConfig`; every field can
then be overridden by a flag generated from the dataclasses (``--help`` lists them with
their preset values). ``--resume`` continues the run folder's last checkpoint. The
``--distributed`` flags make this process one of a multi-host job
(:mod:`sociajax.training.distributed`); they are read, and ``jax.distributed`` initialised,
before anything else touches JAX.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Optional, Sequence

from sociajax.training.config import TrainConfig
from sociajax.training.presets import PRESETS, get_preset


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[TrainConfig, bool]:
    """(config, resume) from the command line."""
    import tyro

    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", default="miniature")
    pre.add_argument("--resume", action="store_true")
    pre.add_argument("--run-dir", "--run_dir", default=None)
    pre.add_argument("--grid", action="append", default=[])
    known, rest = pre.parse_known_args(argv)
    if known.run_dir is not None:
        rest += ["--run-dir", known.run_dir]
    try:
        saved = Path(known.run_dir or get_preset(known.preset).run_dir) / "config.json"
        if known.resume and saved.exists():
            # Resuming: the run folder's own config is the default; flags may change only
            # what config.RESUMABLE_CHANGES allows (checked when the run starts).
            default = TrainConfig.from_dict(json.loads(saved.read_text()), source=str(saved))
            default = dataclasses.replace(default, run_dir=str(saved.parent))
        else:
            default = get_preset(known.preset)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    description = (
        f"Train a population (preset {known.preset!r}; presets: {', '.join(sorted(PRESETS))}). "
        "--preset NAME picks the defaults below; --resume continues the run folder from its "
        "config.json and last checkpoint."
    )
    description += (
        " Multi-host: --distributed auto (jax.distributed from the cluster's environment: SLURM, Open MPI, "
        "or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID) or --distributed.coordinator HOST:PORT "
        "--distributed.num-processes N --distributed.process-id I [--distributed.local-device-ids 0,1] "
        "[--distributed.timeout-s S]; process 0 writes the run folder."
    )
    description += (
        " --grid FIELD=V1,V2 (repeatable) trains the product of the grids over data fields, every "
        "condition and seed in one compiled program (values holding commas, such as schedules, "
        "are separated by |)."
    )
    try:
        config = tyro.cli(TrainConfig, default=default, args=rest, description=description, prog=_prog())
        if known.grid:
            from sociajax.training.config import grid_conditions

            if config.conditions and not known.resume:
                raise ValueError("use either --grid or --conditions, not both")
            grid = grid_conditions(known.grid)
            if known.resume and config.conditions and grid != config.conditions:
                raise ValueError(f"--resume: --grid gives conditions {grid}, the run has {config.conditions}")
            config = dataclasses.replace(config, conditions=grid)
    except ValueError as err:  # validation of the combined config
        raise SystemExit(f"error: {err}") from None
    return config, known.resume


def _prog() -> str:
    """The command as the user typed it: the console script or ``python -m``."""
    return "sociajax-train" if Path(sys.argv[0]).name == "sociajax-train" else "python -m sociajax.train"


def main(argv: Optional[Sequence[str]] = None) -> int:
    from sociajax.training import distributed

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cluster, argv = distributed.parse(argv)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    distributed.initialize(cluster)  # before any other JAX call (config validation makes envs)
    if cluster.enabled:
        print(f"multi-host: {distributed.describe()}", file=sys.stderr)
    config, resume = parse_args(argv)
    from sociajax.training.run import train

    try:
        result = train(config, resume=resume)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    status = "interrupted (checkpoint saved; continue with --resume)" if result.interrupted else "done"
    per_seed = ", ".join(f"{s:,}" for s in result.env_steps)
    lines = [
        f"{status}: {result.updates} updates, env steps per run [{per_seed}], "
        f"{result.wall_s:.0f} s wall ({result.compile_s:.0f} s compiling)"
    ]
    for name, returns in result.late_return.items():
        label = "return over the last 10% of updates" + ("" if name == "base" else f", {name}")
        lines.append(
            f"{label}: " + ", ".join(
                f"{i} ({a.role}) " + ("absent" if math.isnan(r) else f"{r:+.3f}")
                for i, (a, r) in enumerate(zip(config.agents, returns))
            )
        )
    lines.append(f"run folder: {result.run_dir} (metrics.csv, learning_curve.png, checkpoints/)")
    if distributed.is_primary():
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
