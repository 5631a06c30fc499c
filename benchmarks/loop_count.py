"""Sequential loop iterations of one compiled training update, counted on any machine.

    python -m benchmarks.loop_count [--learners 3] [--lstm-unroll 1 8] [--out benchmarks/results]

On a GPU a small recurrent program is bound by latency, not FLOPs. XLA:GPU runs each iteration
of a ``while`` loop as its own kernel launches plus a synchronisation with the host, so the
number of loop iterations one update runs bounds its time from below, whatever the batch size.
That number is a property of the program, so a CPU can count it: this script compiles one
update of the paper's schedule (GoalCycle-3, 256-step rollouts, 20 minibatches of 16 steps,
recompute every 2) with the GPU's network settings (``chunk`` 0, ``lstm_unroll`` as given),
reads XLA's optimised HLO and adds up, through nested loops, calls and conditionals (the
costlier branch), the iterations of every loop with a static trip count. Loops whose trip
count depends on data (layout generation's redraws and flood fills) are reported apart as
the number of times the update enters them.

The count runs with the ``unsafe_rbg`` PRNG: on CPU, jax lowers threefry with a 5-iteration
loop per random call, which its GPU lowering does not have, and which would swamp the count.
Batch size does not change loop counts, so a few envs suffice and the compile takes seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path
from typing import Optional

_COMPUTATION = re.compile(r"^(ENTRY )?%?([\w.\-]+) .*\{$")
_TRIP_COUNT = re.compile(r'known_trip_count":\{"n":"(\d+)"')


@dataclasses.dataclass(frozen=True)
class LoopCount:
    """``iterations``: loop iterations with static trip counts, nested ones multiplied out.
    ``dynamic_entries``: how often loops with data-dependent trip counts are entered."""

    iterations: int
    dynamic_entries: int


def _target(line: str, field: str) -> str:
    return re.search(field + r"=%?([\w.\-]+)", line).group(1)


def count_loops(hlo_text: str) -> LoopCount:
    """Loop iterations of the ENTRY computation of an optimised HLO module (``as_text()`` of a
    compiled jax function); see the module doc."""
    calls: dict[str, list[tuple[str, list[str], Optional[int]]]] = {}
    entry, current = None, None
    for line in hlo_text.splitlines():
        header = _COMPUTATION.match(line)
        if header and not line.startswith(" "):
            current = header.group(2)
            calls[current] = []
            entry = current if header.group(1) else entry
        elif current is None:
            continue
        elif " while(" in line:
            trip = _TRIP_COUNT.search(line)
            calls[current].append(("while", [_target(line, "body")], int(trip.group(1)) if trip else None))
        elif " conditional(" in line:
            branches = re.search(r"branch_computations=\{([^}]*)\}", line)
            if branches:
                names = [name.strip().lstrip("%") for name in branches.group(1).split(",")]
            else:
                names = [_target(line, "true_computation"), _target(line, "false_computation")]
            calls[current].append(("conditional", names, None))
        elif " call(" in line:
            calls[current].append(("call", [_target(line, "to_apply")], None))
    if entry is None:
        raise ValueError("no ENTRY computation in the HLO text")

    def count(name: str) -> LoopCount:
        iterations = dynamic = 0
        for kind, targets, trip in calls.get(name, []):
            inner = [count(target) for target in targets]
            if kind == "while" and trip is None:
                iterations += inner[0].iterations
                dynamic += 1 + inner[0].dynamic_entries
            elif kind == "while":
                iterations += trip * (1 + inner[0].iterations)
                dynamic += trip * inner[0].dynamic_entries
            elif kind == "call":
                iterations += inner[0].iterations
                dynamic += inner[0].dynamic_entries
            else:
                iterations += max(c.iterations for c in inner)
                dynamic += max(c.dynamic_entries for c in inner)
        return LoopCount(iterations, dynamic)

    return count(entry)


def update_loops(learners: int, lstm_unroll: int, num_envs: int = 8) -> LoopCount:
    """Loops of one paper-schedule update of GoalCycle-3 with ``learners`` learners and
    scripted oracles in the other seats, at the GPU's network settings."""
    import jax

    from benchmarks.train_throughput import benchmark_config
    from sociajax.agents.ppo import PPOConfig
    from sociajax.training import NetworkConfig, make_train

    config = benchmark_config(
        learners,
        PPOConfig(num_envs=num_envs, minibatch_segments=num_envs * 16 // 2),
        NetworkConfig(chunk=0, lstm_unroll=lstm_unroll),
        total_env_steps=num_envs * 250,
    )
    previous = jax.config.jax_default_prng_impl
    jax.config.update("jax_default_prng_impl", "unsafe_rbg")
    try:
        trainer = make_train(config)
        state = trainer.init(trainer.seed_keys())
        return count_loops(trainer.chunk.lower(state).compile().as_text())
    finally:
        jax.config.update("jax_default_prng_impl", previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, nargs="+", choices=(1, 2, 3), default=[3, 1])
    parser.add_argument("--lstm-unroll", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()

    from benchmarks.env_throughput import machine_info

    info = machine_info()
    record = {"benchmark": "loop_count", "machine": info, "schedule": "paper", "points": []}
    for learners in args.learners:
        for unroll in args.lstm_unroll:
            loops = update_loops(learners, unroll)
            record["points"].append({"learners": learners, "lstm_unroll": unroll, **dataclasses.asdict(loops)})
            print(f"{learners} learner(s) + {3 - learners} oracle(s), lstm_unroll {unroll}: "
                  f"{loops.iterations:,} loop iterations per update, "
                  f"{loops.dynamic_entries} entries into data-dependent loops", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"loop_count_{info['date']}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
