"""How to spend a CPU's cores on training: one process on all of them, one pinned process per
core, or one process with a host device per core.

    python -m benchmarks.core_split [--schedule mini] [--num-runs 4] [--cores 0 1]
                                    [--layouts one_process pinned pinned_map devices] [--learners 1]
                                    [--updates 3] [--rounds 2]
                                    [--out benchmarks/results/core_split_cpu_DATE.json]

XLA's CPU matmuls on the small operands of one update (512-frame minibatches, 21x21 views)
gain little from a second thread, so several single-threaded programs side by side may train
more env steps per second than one program on every core. Each layout trains ``--num-runs``
runs of the trainer's update at the chosen ``update_profile`` schedule (``mini``: the
miniature's novice beside two scripted oracles), each process the way :mod:`benchmarks.cpu_flags`
times a candidate (compiled ahead of time, one warm-up update, the median of ``--updates``):

* ``one_process``: one process, every run, XLA's default threads over every core;
* ``pinned``: one process per core of ``--cores``, each pinned to its core
  (``sched_setaffinity``) with Eigen single-threaded, ``--num-runs / cores`` runs each, all
  started together; the throughput is their sum. This is a figure's parts run side by side
  (experiments/README.md, "A figure in parts");
* ``pinned_map``: the same, each process stepping its runs one after another
  (``TrainConfig.run_loop="map"``) instead of batching them;
* ``devices``: one process with one XLA host device per core and Eigen single-threaded; the
  trainer shards the runs over the devices (when the run count divides by them).

Layouts take turns within each round, so the machine's drift falls on all of them alike. The
parameters after two updates are compared with ``one_process``'s for the runs both hold (the
first process's, for ``pinned``): another thread count sums in another order, so they agree
to float rounding, which two Adam steps on zero-initialised biases can magnify.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

from benchmarks.records import write_record

LAYOUTS = ("one_process", "pinned", "pinned_map", "devices")
SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false"


def _child(args: argparse.Namespace, num_runs: int, params_out: Path, flags: str = "",
           core: Optional[int] = None, run_loop: str = "vmap") -> subprocess.Popen:
    """Start :func:`benchmarks.cpu_flags.child` in a fresh process (XLA reads its flags once)."""
    env = dict(os.environ, XLA_FLAGS=" ".join(filter(None, [os.environ.get("XLA_FLAGS", ""), flags])))
    command = [sys.executable, "-m", "benchmarks.cpu_flags", "--child", "--schedule", args.schedule,
               "--num-seeds", str(num_runs), "--updates", str(args.updates), "--params-out", str(params_out),
               "--run-loop", run_loop, "--learners", str(args.learners)]
    pin = None if core is None else (lambda: os.sched_setaffinity(0, {core}))
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=pin)


def _result(process: subprocess.Popen) -> dict[str, Any]:
    out, err = process.communicate()
    if process.returncode:
        raise RuntimeError(f"a benchmark process failed ({process.returncode}): {err.strip().splitlines()[-1:]}")
    return json.loads(out.strip().splitlines()[-1])


def run_layout(layout: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """One timing of ``layout``: its processes, their summed env-steps/s, the params file of
    the runs it shares with ``one_process``."""
    cores = list(args.cores)
    params = tmp / f"{layout}.npz"
    if layout in ("pinned", "pinned_map"):
        per_process = args.num_runs // len(cores)
        files = [params] + [tmp / f"{layout}_{i}.npz" for i in range(1, len(cores))]
        run_loop = "map" if layout == "pinned_map" else "vmap"
        processes = [_child(args, per_process, f, SINGLE_THREAD, core, run_loop) for f, core in zip(files, cores)]
    else:
        flags = "" if layout == "one_process" else (
            f"--xla_force_host_platform_device_count={len(cores)} {SINGLE_THREAD}")
        processes = [_child(args, args.num_runs, params, flags)]
    parts = [_result(p) for p in processes]
    return {"layout": layout, "processes": parts,
            "env_steps_per_s": round(sum(p["env_steps_per_s"] for p in parts), 1),
            "update_s": max(p["update_s"] for p in parts), "compile_s": max(p["compile_s"] for p in parts)}


def relative_difference(a: Path, b: Path) -> float:
    """Largest |x - y| / max|y| over the leaves, on the runs ``a`` holds (the leading axis)."""
    import numpy as np

    with np.load(a) as x, np.load(b) as y:
        return max(float(np.max(np.abs(x[k] - y[k][: len(x[k])])) / max(float(np.max(np.abs(y[k][: len(x[k])]))), 1e-12))
                   for k in y.files)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedule", default="mini", choices=("mini", "main", "tiny"))
    parser.add_argument("--num-runs", type=int, default=4, help="runs in all, split evenly over the pinned processes")
    parser.add_argument("--cores", type=int, nargs="+", default=None,
                        help="the cores to use (default: every core this process may run on)")
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    parser.add_argument("--learners", type=int, default=1, choices=(1, 2, 3),
                        help="learners of each run's three agents (the others scripted oracles)")
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    allowed = sorted(os.sched_getaffinity(0))
    args.cores = args.cores or allowed
    for name, value in (("--num-runs", args.num_runs), ("--updates", args.updates), ("--rounds", args.rounds)):
        if value < 1:
            raise SystemExit(f"error: {name} must be positive, got {value}")
    if args.num_runs % len(args.cores):
        raise SystemExit(f"error: --num-runs ({args.num_runs}) must divide evenly over the {len(args.cores)} --cores")
    if any(c not in allowed for c in args.cores) or len(set(args.cores)) != len(args.cores):
        raise SystemExit(f"error: --cores must be distinct cores of {allowed}, got {args.cores}")
    layouts = ["one_process"] + [name for name in args.layouts if name != "one_process"]

    from sociajax.host import cpu_label, cpu_model

    rounds = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for index in range(args.rounds):
            results = [run_layout(layout, args, tmp) for layout in layouts]
            for result in results:
                result["param_rel_diff_vs_one_process"] = relative_difference(
                    tmp / f"{result['layout']}.npz", tmp / "one_process.npz")
                print(json.dumps({"round": index, **{k: v for k, v in result.items() if k != "processes"}}), flush=True)
            rounds.append(results)
    summary = {}
    for i, layout in enumerate(layouts):
        rates = [r[i]["env_steps_per_s"] for r in rounds]
        ratios = [r[i]["env_steps_per_s"] / r[0]["env_steps_per_s"] for r in rounds]
        summary[layout] = {"env_steps_per_s_median": round(statistics.median(rates), 1),
                           "vs_one_process_median": round(statistics.median(ratios), 3),
                           "vs_one_process_range": [round(min(ratios), 3), round(max(ratios), 3)]}
    model, avx512 = cpu_model()
    record = {"date": datetime.date.today().isoformat(), "cpu": model, "avx512": avx512, "cores": args.cores,
              "schedule": args.schedule, "learners": args.learners, "num_runs": args.num_runs, "updates": args.updates, "rounds": rounds,
              "summary": summary}
    for layout, numbers in summary.items():
        print(f"{layout}: {numbers['env_steps_per_s_median']:,.0f} env-steps/s, "
              f"{numbers['vs_one_process_median']}x one process, {cpu_label()}")
    write_record(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
