"""What resets cost in large batches: pooled resets, resetting every env, and no resets at all.

    python -m benchmarks.reset_cost [--envs FourRooms Maze] [--num-envs 256 4096]
                                    [--num-steps 250] [--rounds 7] [--out benchmarks/results]

Each env id and batch size is compiled three ways:

- ``pooled``: ``VecEnv`` as shipped (fresh layouts for a small pool of envs per step);
- ``all``: ``VecEnv(reset_pool=num_envs)``, every env's layout rebuilt whenever any episode
  ends (the behaviour before pooling);
- ``none``: the same random-action steps and views with no resets at all, the floor a reset
  scheme can reach.

All programs are compiled first; then every round times each of them in turns, so a shared
machine's changing load falls on all alike; the small batch runs ``large // small`` times per
timing, so both sizes are timed over the same number of env steps. Per round we take the ratio of the large
batch's rate to the small one's, and report the median over rounds. Comparing the ``pooled``
ratio with the ``none`` ratio separates what resets cost from what a large batch costs
anyway (cache and memory traffic).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import jax

from benchmarks.env_throughput import machine_info
from sociajax.envs.registry import make
from sociajax.eval.throughput import random_rollout

RESETS = ("pooled", "all", "none")


def compiled_rollout(env_id: str, num_envs: int, num_steps: int, resets: str) -> Callable[[jax.Array], jax.Array]:
    """Compiled ``key -> checksum of every view`` of a random-action rollout."""
    if resets not in RESETS:
        raise ValueError(f"resets must be one of {RESETS}, got resets={resets!r}")
    env, params = make(env_id)
    rollout = random_rollout(
        env, params, num_envs, num_steps,
        batching="none" if resets == "none" else "VecEnv",
        reset_pool=num_envs if resets == "all" else None,
    )
    return jax.jit(rollout).lower(jax.random.PRNGKey(0)).compile()


def measure(env_ids: list[str], sizes: list[int], num_steps: int, rounds: int) -> list[dict[str, Any]]:
    if len(sizes) != 2 or sizes[0] >= sizes[1]:
        raise ValueError(f"num_envs must be two sizes, small then large, got num_envs={sizes}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got rounds={rounds}")
    programs = {
        (env_id, n, resets): compiled_rollout(env_id, n, num_steps, resets)
        for env_id in env_ids
        for n in sizes
        for resets in RESETS
    }
    for compiled in programs.values():
        jax.block_until_ready(compiled(jax.random.PRNGKey(1)))  # warm-up
    small, large = sizes
    rates: dict[tuple, list[float]] = {name: [] for name in programs}
    for round_index in range(rounds):
        for (env_id, n, resets), compiled in programs.items():
            calls = large // n  # the same env steps per timing at both sizes: equal exposure to noise
            start = time.perf_counter()
            for call in range(calls):
                jax.block_until_ready(compiled(jax.random.PRNGKey(1000 * round_index + call + 2)))
            rates[(env_id, n, resets)].append(calls * n * num_steps / (time.perf_counter() - start))
    records = []
    for env_id in env_ids:
        n_agents = make(env_id)[0].n_agents
        for resets in RESETS:
            ratios = [b / a for a, b in zip(rates[(env_id, small, resets)], rates[(env_id, large, resets)])]
            records.append(
                {
                    "env": env_id,
                    "resets": resets,
                    "num_steps": num_steps,
                    "rounds": rounds,
                    **{
                        f"agent_steps_per_s_{n}_median": statistics.median(rates[(env_id, n, resets)]) * n_agents
                        for n in sizes
                    },
                    f"ratio_{large}_to_{small}_median": statistics.median(ratios),
                    f"ratio_{large}_to_{small}_range": [min(ratios), max(ratios)],
                }
            )
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=["FourRooms", "Maze"])
    parser.add_argument("--num-envs", nargs=2, type=int, default=[256, 4096])
    parser.add_argument("--num-steps", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--tag", default="", help="suffix for the JSON file name")
    args = parser.parse_args(argv)
    records = measure(args.envs, args.num_envs, args.num_steps, args.rounds)
    machine = machine_info()
    small, large = args.num_envs
    for r in records:
        print(
            f"{r['env']:10s} {r['resets']:7s} {small}: {r[f'agent_steps_per_s_{small}_median']:>10,.0f}  "
            f"{large}: {r[f'agent_steps_per_s_{large}_median']:>10,.0f} agent-steps/s  "
            f"ratio {r[f'ratio_{large}_to_{small}_median']:.3f} "
            f"(rounds {r[f'ratio_{large}_to_{small}_range'][0]:.3f}-{r[f'ratio_{large}_to_{small}_range'][1]:.3f})"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = f"_{args.tag}" if args.tag else ""
    path = args.out / f"reset_cost_{machine['platform']}_{machine['date']}{suffix}.json"
    path.write_text(json.dumps({"machine": machine, "records": records}, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
