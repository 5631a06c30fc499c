"""Training speed of another commit against this checkout's, whole runs in turns on one host.

    python -m benchmarks.train_ab --ref 3816527 [--rounds 3] [--updates 6] [--out benchmarks/results/X.json]
                                  [-- EXTRA TRAIN ARGS]

Each round trains the same config once at ``--ref`` (checked out with ``git worktree`` into a
temporary folder) and once in this checkout, one after the other, so a drift in the machine's
speed falls on both. A run is ``python -m sociajax.train`` with :data:`TRAIN_ARGS` (the speed
issue's workload: the smoke preset grown to 128-step episodes, 64 episodes per update, 8
minibatches of 64 segments, a learner beside 2 scripted oracles, 4 runs in one program) for
``--updates`` updates; its training time is what it reports as wall time less compile time
(so compilation is not counted). Reports per side the median env-steps/s and the median of
the per-round ratios (this checkout / ``--ref``), with the CPU model and the XLA_FLAGS in force.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from benchmarks.records import write_record
from sociajax.host import cpu_model

ROOT = Path(__file__).resolve().parents[1]
TRAIN_ARGS = ["--preset", "smoke", "--env.max-steps", "128", "--ppo.num-envs", "64", "--ppo.num-minibatches", "8",
              "--ppo.minibatch-segments", "64", "--num-seeds", "4", "--no-progress"]
ENV_STEPS_PER_UPDATE = 64 * 128 * 4  # episodes x steps x runs
_REPORT = re.compile(r"(\d+) updates, .* (\d+) s wall \((\d+) s compiling\)")


def train_once(tree: Path, updates: int, extra: Sequence[str], run_dir: Path) -> dict[str, float]:
    """One training run in ``tree``; its training seconds (wall less compile) and env-steps/s."""
    command = [sys.executable, "-m", "sociajax.train", *TRAIN_ARGS, "--total-env-steps",
               str(updates * 64 * 128), "--run-dir", str(run_dir), *extra]
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    match = _REPORT.search(done.stdout)
    if done.returncode or not match:
        raise RuntimeError(f"training in {tree} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    ran, wall, compiling = (int(g) for g in match.groups())
    seconds = wall - compiling
    return {"updates": ran, "wall_s": wall, "compile_s": compiling, "train_s": seconds,
            "env_steps_per_s": round(ran * ENV_STEPS_PER_UPDATE / max(seconds, 1), 1)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", required=True, help="the commit to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=6)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("extra", nargs="*", help="more sociajax.train arguments, for both sides (after --)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.updates < 1:
        raise SystemExit(f"error: --rounds and --updates must be positive, got {args.rounds}, {args.updates}")
    head = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    sides: dict[str, list[dict[str, float]]] = {"ref": [], "this": []}
    with tempfile.TemporaryDirectory() as tmp:
        ref_tree = Path(tmp) / "ref"
        subprocess.run(["git", "worktree", "add", "--detach", str(ref_tree), args.ref], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            for round_ in range(args.rounds):
                for side, tree in (("ref", ref_tree), ("this", ROOT)):
                    result = train_once(tree, args.updates, args.extra, Path(tmp) / f"{side}-{round_}")
                    sides[side].append(result)
                    print(f"round {round_} {side}: {result['train_s']} s training, {result['env_steps_per_s']:,.0f} "
                          f"env-steps/s ({result['compile_s']} s compiling)", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(ref_tree)], cwd=ROOT, capture_output=True)
    ratios = [b["env_steps_per_s"] / a["env_steps_per_s"] for a, b in zip(sides["ref"], sides["this"])]
    model, avx512 = cpu_model()
    record = {
        "date": datetime.date.today().isoformat(), "cpu": model, "avx512": avx512, "ref": args.ref, "this": head,
        "train_args": TRAIN_ARGS + list(args.extra), "updates": args.updates, "xla_flags": os.environ.get("XLA_FLAGS"),
        "ref_runs": sides["ref"], "this_runs": sides["this"],
        "ref_median_env_steps_per_s": statistics.median(r["env_steps_per_s"] for r in sides["ref"]),
        "this_median_env_steps_per_s": statistics.median(r["env_steps_per_s"] for r in sides["this"]),
        "median_ratio": round(statistics.median(ratios), 3),
    }
    print(f"{args.ref}: {record['ref_median_env_steps_per_s']:,.0f} env-steps/s; {head}: "
          f"{record['this_median_env_steps_per_s']:,.0f}; median ratio {record['median_ratio']} "
          f"on {model} ({'AVX-512' if avx512 else 'no AVX-512'})")
    write_record(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
