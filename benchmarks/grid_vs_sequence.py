"""A grid of conditions x seeds as one compiled program against the same runs one by one.

    python -m benchmarks.grid_vs_sequence [--num-envs 16] [--max-steps 64] [--seeds 3]
                                          [--updates 2] [--rounds 3]
                                          [--programs grid sequence seeds shared]
                                          [--out benchmarks/results]

Four conditions in the shape of the paper's Figure 4 (a novice with the PRED loss, with REC,
without an auxiliary loss, and PRED with the experts absent), each with ``--seeds`` seeds,
beside two scripted oracles in GoalCycle-3, the social-scripted PPO schedule. Programs:

- ``grid``: the C x S runs as one program;
- ``sequence``: each of the C x S runs alone (1 seed, 1 condition); they differ only in data
  and so share one compiled program;
- ``seeds``: C x S seeds of the first condition in one program, i.e. the grid without its
  conditions, which tells what conditions cost apart from what many runs cost;
- ``shared``: one run with C x S times the envs (and minibatch segments), the same frames per
  update as the grid but one set of weights, which tells what the runs' separate weights cost.

Everything is compiled first (compile time and programs compiled are reported); then every
round times ``--updates`` updates of each program in turns (the sequence: of each of its runs),
so a shared machine's changing load falls on all alike. Reported: env steps per second per
program (median over rounds; an env step moves all agents of one run) and the median over
rounds of each program's speed over the sequence's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import jax

from benchmarks.env_throughput import machine_info
from sociajax.agents.ppo import PPOConfig
from sociajax.training import AgentConfig, EnvConfig, TrainConfig, make_train
from sociajax.training.config import condition_configs
from sociajax.training import trainer as trainer_module

CONDITIONS = (
    "pred: agents.0.aux_target=next",
    "rec: agents.0.aux_target=current",
    "vanilla: agents.0.aux=false",
    "solo: agents.1.presence=0 agents.2.presence=0",
)
PROGRAMS = ("grid", "sequence", "seeds", "shared")


def base_config(num_envs: int, max_steps: int, seeds: int, segments_scale: int = 1) -> TrainConfig:
    oracle = AgentConfig(role="scripted", policy="oracle")
    segments = min(32, num_envs * max_steps // 16 // segments_scale) * segments_scale
    return TrainConfig(
        env=EnvConfig("GoalCycle-3", max_steps=max_steps, penalty=0.0),
        agents=(AgentConfig(lr=3e-4), oracle, oracle),
        ppo=PPOConfig(num_envs=num_envs, num_minibatches=8, minibatch_segments=segments),
        num_seeds=seeds,
        updates_per_chunk=1,
        progress=False,
        baseline_episodes=0,
    )


def program_configs(program: str, num_envs: int, max_steps: int, seeds: int) -> list[TrainConfig]:
    """The configs one timing of ``program`` trains, one after another (several only for the
    sequence)."""
    base = base_config(num_envs, max_steps, seeds)
    grid = dataclasses.replace(base, conditions=CONDITIONS, run_dir="runs/bench-grid")
    runs = len(CONDITIONS) * seeds
    if program == "grid":
        return [grid]
    if program == "sequence":
        return [
            dataclasses.replace(condition, seed=seed, num_seeds=1, run_dir=f"runs/bench-{name}-{seed}")
            for name, condition in condition_configs(grid)
            for seed in range(seeds)
        ]
    if program == "seeds":
        return [dataclasses.replace(condition_configs(grid)[0][1], num_seeds=runs, run_dir="runs/bench-seeds")]
    if program == "shared":
        wide = base_config(num_envs * runs, max_steps, 1, segments_scale=runs)
        return [dataclasses.replace(wide, run_dir="runs/bench-shared")]
    raise ValueError(f"programs must be among {PROGRAMS}, got {program!r}")


class Timed:
    """One config compiled and initialised, stepped update by update."""

    def __init__(self, config: TrainConfig) -> None:
        trainer = make_train(config)
        self.state = trainer.place(trainer.init(trainer.seed_keys()))
        before = len(trainer_module._COMPILED)
        tick = time.perf_counter()
        self.chunk: Callable[..., Any] = trainer.compiled_chunk(self.state)
        self.compile_s = time.perf_counter() - tick
        self.programs_compiled = len(trainer_module._COMPILED) - before
        self.step()  # warm-up

    def step(self) -> int:
        """One update (blocking); returns the env steps it ran, summed over runs."""
        self.state, metrics = self.chunk(self.state)
        return int(jax.device_get(metrics["env_steps"]).sum())


def measure(programs: list[str], num_envs: int, max_steps: int, seeds: int, updates: int, rounds: int) -> dict[str, Any]:
    for name, value, least in (("updates", updates, 1), ("rounds", rounds, 1), ("seeds", seeds, 1)):
        if value < least:
            raise ValueError(f"{name} must be >= {least}, got {name}={value}")
    if "sequence" not in programs:
        raise ValueError(f"programs must include 'sequence' (the reference), got programs={programs}")
    timed = {p: [Timed(c) for c in program_configs(p, num_envs, max_steps, seeds)] for p in programs}
    rates: dict[str, list[float]] = {p: [] for p in programs}
    for _ in range(rounds):
        for program, parts in timed.items():
            steps, tick = 0, time.perf_counter()
            for part in parts:
                steps += sum(part.step() for _ in range(updates))
            rates[program].append(steps / (time.perf_counter() - tick))
    result: dict[str, Any] = {}
    for program, parts in timed.items():
        over = [r / s for r, s in zip(rates[program], rates["sequence"])]
        result[program] = {
            "programs_compiled": sum(p.programs_compiled for p in parts),
            "compile_s": sum(p.compile_s for p in parts),
            "env_steps_per_s_median": statistics.median(rates[program]),
            "env_steps_per_s_rounds": rates[program],
            "over_sequence_median": statistics.median(over),
            "over_sequence_range": [min(over), max(over)],
        }
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--max-steps", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=2, help="updates per program (per run of the sequence) per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--programs", nargs="+", choices=PROGRAMS, default=list(PROGRAMS))
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)

    result = {"machine": machine_info(), "args": vars(args), "conditions": list(CONDITIONS)}
    result.update(measure(args.programs, args.num_envs, args.max_steps, args.seeds, args.updates, args.rounds))
    print(f"{'':<10}{'programs':>10}{'compile s':>11}{'env-steps/s':>13}{'/ sequence':>12}  rounds")
    for program in args.programs:
        r = result[program]
        low, high = r["over_sequence_range"]
        print(
            f"{program:<10}{r['programs_compiled']:>10}{r['compile_s']:>11.1f}"
            f"{r['env_steps_per_s_median']:>13,.0f}{r['over_sequence_median']:>12.2f}  {low:.2f}-{high:.2f}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"grid_vs_sequence_{jax.default_backend()}_{time.strftime('%Y-%m-%d')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
