"""A grid of conditions x seeds as one compiled program against the same runs one by one.

    python -m benchmarks.grid_vs_sequence [--num-envs 16] [--max-steps 64] [--seeds 3]
                                          [--updates 3] [--out benchmarks/results]

Four conditions in the shape of the paper's Figure 4 (a novice with the PRED loss, with REC,
without an auxiliary loss, and PRED with the experts absent), each with ``--seeds`` seeds,
beside two scripted oracles in GoalCycle-3, the social-scripted PPO schedule. The grid is one
program over C x S runs; the sequence trains each of the C x S runs alone (1 seed, 1
condition), all of which differ only in data and so share one compiled program. Reported:
compile time and number of programs compiled, and env steps per second over ``--updates``
timed updates after one warm-up (an env step moves all agents of one run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax

from benchmarks.env_throughput import machine_info
from sociajax.agents.ppo import PPOConfig
from sociajax.training import AgentConfig, EnvConfig, TrainConfig, make_train
from sociajax.training.conditions import condition_configs
from sociajax.training import trainer as trainer_module

CONDITIONS = (
    "pred: agents.0.aux_target=next",
    "rec: agents.0.aux_target=current",
    "vanilla: agents.0.aux=false",
    "solo: agents.1.presence=0 agents.2.presence=0",
)


def base_config(num_envs: int, max_steps: int, seeds: int) -> TrainConfig:
    oracle = AgentConfig(role="scripted", policy="oracle")
    return TrainConfig(
        env=EnvConfig("GoalCycle-3", max_steps=max_steps, penalty=0.0),
        agents=(AgentConfig(lr=3e-4), oracle, oracle),
        ppo=PPOConfig(num_envs=num_envs, num_minibatches=8, minibatch_segments=min(32, num_envs * max_steps // 16)),
        num_seeds=seeds,
        updates_per_chunk=1,
        progress=False,
        baseline_episodes=0,
    )


def time_updates(config: TrainConfig, updates: int) -> dict[str, float]:
    """Compile (if not yet compiled for this program), warm up, then time ``updates`` chunks."""
    trainer = make_train(config)
    state = trainer.place(trainer.init(trainer.seed_keys()))
    before = len(trainer_module._COMPILED)
    tick = time.perf_counter()
    chunk = trainer.compiled_chunk(state)
    compile_s = time.perf_counter() - tick
    compiled = len(trainer_module._COMPILED) - before
    state, metrics = chunk(state)
    jax.block_until_ready(metrics)
    steps = 0
    tick = time.perf_counter()
    for _ in range(updates):
        state, metrics = chunk(state)
        steps += int(jax.device_get(metrics["env_steps"]).sum())
    seconds = time.perf_counter() - tick
    return {"compile_s": compile_s, "programs_compiled": compiled, "seconds": seconds, "env_steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--max-steps", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()

    base = base_config(args.num_envs, args.max_steps, args.seeds)
    grid = dataclasses.replace(base, conditions=CONDITIONS, run_dir="runs/bench-grid")
    result = {"machine": machine_info(), "args": vars(args), "conditions": list(CONDITIONS)}
    result["grid"] = time_updates(grid, args.updates)
    sequence = {"compile_s": 0.0, "programs_compiled": 0, "seconds": 0.0, "env_steps": 0}
    for name, condition in condition_configs(grid):
        for seed in range(args.seeds):
            alone = dataclasses.replace(condition, seed=seed, num_seeds=1, run_dir=f"runs/bench-{name}-{seed}")
            point = time_updates(alone, args.updates)
            for key in sequence:
                sequence[key] += point[key]
    result["sequence"] = sequence
    for part in ("grid", "sequence"):
        result[part]["env_steps_per_s"] = result[part]["env_steps"] / result[part]["seconds"]
    result["grid_over_sequence_speed"] = result["grid"]["env_steps_per_s"] / sequence["env_steps_per_s"]
    print(f"{'':<10}{'programs':>10}{'compile s':>11}{'env-steps/s':>13}")
    for part in ("grid", "sequence"):
        r = result[part]
        print(f"{part:<10}{r['programs_compiled']:>10}{r['compile_s']:>11.1f}{r['env_steps_per_s']:>13,.0f}")
    print(f"grid / sequence speed: {result['grid_over_sequence_speed']:.2f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d")
    path = out / f"grid_vs_sequence_{jax.default_backend()}_{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
