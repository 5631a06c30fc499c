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

``--from-run DIR`` times a real run instead: each side gets a copy of DIR's ``config.json``,
``metrics.csv`` and newest checkpoint and continues it with ``--resume`` for ``--updates``
updates (e.g. a Figure 4 part late in training, where PPO's KL early stop is common). Its
training time is read from the new rows of ``metrics.csv`` (``wall_s``), from the end of
the first new update to the end of the last, so compilation and the first update are not
counted. Pin the process and set ``XLA_FLAGS`` as the run itself was (e.g. ``taskset -c 0``,
``--xla_cpu_multi_thread_eigen=false``).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import re
import shutil
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


def resume_once(tree: Path, updates: int, extra: Sequence[str], run_dir: Path, source: Path) -> dict[str, float]:
    """Continue a copy of the run in ``source`` for ``updates`` updates in ``tree``; its
    training seconds after the first new update and env-steps/s."""
    checkpoints = sorted((int(p.name), p) for p in (source / "checkpoints").iterdir() if p.name.isdigit())
    if not checkpoints:
        raise SystemExit(f"error: --from-run {source} has no checkpoint")
    start, newest = checkpoints[-1]
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copytree(newest, run_dir / "checkpoints" / newest.name)
    shutil.copy2(source / "metrics.csv", run_dir / "metrics.csv")
    config = json.loads((source / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps(dict(config, run_dir=str(run_dir)), indent=2))  # the copy's folder
    per_run = config["ppo"]["num_envs"] * config["env"]["max_steps"]  # env steps per run and update, at most
    command = [sys.executable, "-m", "sociajax.train", "--resume", "--run-dir", str(run_dir), "--no-progress",
               "--baseline-episodes", "0", "--total-env-steps", str((start + updates) * per_run), *extra]
    done = subprocess.run(command, cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)), capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"resuming in {tree} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    first, last = start + 1, start + updates
    wall: dict[int, float] = {}
    steps: dict[tuple[int, str, str], int] = {}  # (update, condition, seed): the run's env steps so far
    with open(run_dir / "metrics.csv", newline="") as f:
        for row in csv.DictReader(f):
            if int(row["update"]) in (first, last):
                wall[int(row["update"])] = float(row["wall_s"])
                steps[int(row["update"]), row["condition"], row["seed"]] = int(row["env_steps"])
    seconds = wall[last] - wall[first]
    timed_steps = sum(n for (u, *_), n in steps.items() if u == last) - sum(n for (u, *_), n in steps.items() if u == first)
    return {"from_update": start, "updates": updates, "timed_updates": updates - 1, "train_s": round(seconds, 2),
            "s_per_update": round(seconds / (updates - 1), 3), "env_steps_per_s": round(timed_steps / seconds, 1)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", required=True, help="the commit to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=6)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--from-run", type=Path, default=None, help="continue copies of this run folder instead")
    parser.add_argument("extra", nargs="*", help="more sociajax.train arguments, for both sides (after --)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.updates < 1:
        raise SystemExit(f"error: --rounds and --updates must be positive, got {args.rounds}, {args.updates}")
    if args.from_run is not None and args.updates < 2:
        raise SystemExit(f"error: --updates must be at least 2 with --from-run (the first is not timed), got {args.updates}")
    head = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    sides: dict[str, list[dict[str, float]]] = {"ref": [], "this": []}
    with tempfile.TemporaryDirectory() as tmp:
        ref_tree = Path(tmp) / "ref"
        subprocess.run(["git", "worktree", "add", "--detach", str(ref_tree), args.ref], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            for round_ in range(args.rounds):
                for side, tree in (("ref", ref_tree), ("this", ROOT)):
                    run_dir = Path(tmp) / f"{side}-{round_}"
                    if args.from_run is None:
                        result = train_once(tree, args.updates, args.extra, run_dir)
                    else:
                        result = resume_once(tree, args.updates, args.extra, run_dir, args.from_run.resolve())
                    sides[side].append(result)
                    print(f"round {round_} {side}: {result['train_s']} s training, {result['env_steps_per_s']:,.0f} "
                          f"env-steps/s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(ref_tree)], cwd=ROOT, capture_output=True)
    ratios = [b["env_steps_per_s"] / a["env_steps_per_s"] for a, b in zip(sides["ref"], sides["this"])]
    model, avx512 = cpu_model()
    record = {
        "date": datetime.date.today().isoformat(), "cpu": model, "avx512": avx512, "ref": args.ref, "this": head,
        "train_args": (TRAIN_ARGS if args.from_run is None else ["--resume"]) + list(args.extra),
        "from_run": None if args.from_run is None else str(args.from_run), "updates": args.updates,
        "xla_flags": os.environ.get("XLA_FLAGS"), "cpu_affinity": sorted(os.sched_getaffinity(0)),
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
