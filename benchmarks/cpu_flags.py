"""Which XLA CPU flags train fastest on this host, and whether they change any number.

    python -m benchmarks.cpu_flags [--candidates default xnn_dot ...] [--schedule mini]
                                   [--num-seeds 4] [--updates 3] [--out benchmarks/results/cpu_flags_cpu_DATE.json]

XLA reads its flags once, when the backend starts, so each candidate (:data:`CANDIDATES`: a
name and an ``XLA_FLAGS`` string) runs in a fresh process: the trainer's update of the chosen
``update_profile`` schedule (``mini``: the miniature search's setting, a novice beside two
scripted oracles, ``--num-seeds`` runs in one program), compiled ahead of time, one warm-up
update, then ``--updates`` timed ones (median). The candidate's numbers are compared with the
default's: the largest relative difference over every learner parameter after the warm-up
update and the first timed one (a flag that changes results beyond float rounding is reported
as such and never chosen). The fastest candidate within float rounding of the default, if it
is faster by at least ``--min-gain``, is what :mod:`sociajax.cpu` should set on this host kind.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from benchmarks.records import write_record

CANDIDATES: dict[str, str] = {
    "default": "",
    "xnn_dot": "--xla_cpu_experimental_xnn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT",
    "xnnpack": "--xla_cpu_use_xnnpack=true",
    "onednn": "--xla_cpu_use_onednn=true",
    "vector_512": "--xla_cpu_prefer_vector_width=512",
    "concurrency_scheduler": "--xla_cpu_enable_concurrency_optimized_scheduler=true",
    "single_thread_eigen": "--xla_cpu_multi_thread_eigen=false",
}
ROUNDING = 1e-3  # largest relative parameter difference still called float rounding after two updates


def child(schedule: str, num_seeds: int, updates: int, params_out: Path, run_loop: str = "vmap",
          learners: int = 1) -> dict[str, Any]:
    """Time the update in this process (its XLA_FLAGS already set; ``run_loop`` as
    ``TrainConfig.run_loop``; ``learners`` of the three agents learn) and save the learners'
    parameters after two updates for the comparison."""
    import jax
    import numpy as np

    from benchmarks.update_profile import schedule_config
    from sociajax.training.trainer import make_train

    config = dataclasses.replace(schedule_config(schedule, num_seeds, learners), run_loop=run_loop)
    trainer = make_train(config)
    state = trainer.place(trainer.init(trainer.seed_keys()))
    tick = time.perf_counter()
    chunk = trainer.compiled_chunk(state)
    compile_s = time.perf_counter() - tick
    times = []
    for i in range(updates + 1):
        tick = time.perf_counter()
        state, metrics = chunk(state)
        jax.block_until_ready((state, metrics))
        times.append(time.perf_counter() - tick)
        if i == 1:
            leaves = [np.asarray(x) for x in jax.tree.leaves(state.population.learners.params)]
            np.savez(params_out, *leaves)
    seconds = float(np.median(times[1:]))
    env_steps = config.ppo.num_envs * trainer.episode_steps * trainer.num_runs
    return {"compile_s": round(compile_s, 1), "update_s": round(seconds, 3), "update_times": [round(t, 3) for t in times],
            "env_steps_per_s": round(env_steps / seconds, 1)}


def relative_difference(a: Path, b: Path) -> float:
    """Largest |x - y| / (|y| max-norm of the leaf) over the saved parameter leaves."""
    import numpy as np

    with np.load(a) as x, np.load(b) as y:
        return max(float(np.max(np.abs(x[k] - y[k])) / max(float(np.max(np.abs(y[k]))), 1e-12)) for k in y.files)


def run_candidate(name: str, flags: str, args: argparse.Namespace, params_out: Path) -> dict[str, Any]:
    env = dict(os.environ, XLA_FLAGS=" ".join(filter(None, [os.environ.get("XLA_FLAGS", ""), flags])))
    command = [sys.executable, "-m", "benchmarks.cpu_flags", "--child", "--schedule", args.schedule,
               "--num-seeds", str(args.num_seeds), "--updates", str(args.updates), "--params-out", str(params_out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        return {"name": name, "flags": flags, "error": done.stderr.strip().splitlines()[-1:] or [str(done.returncode)]}
    return {"name": name, "flags": flags, **json.loads(done.stdout.strip().splitlines()[-1])}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--schedule", default="mini", choices=("mini", "main", "tiny"))
    parser.add_argument("--num-seeds", type=int, default=4)
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--min-gain", type=float, default=1.05, help="speed-up a candidate needs to be chosen")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--params-out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--run-loop", default="vmap", choices=("vmap", "map"), help=argparse.SUPPRESS)
    parser.add_argument("--learners", type=int, default=1, choices=(1, 2, 3), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.num_seeds < 1 or args.updates < 1:
        raise SystemExit(f"error: --num-seeds and --updates must be positive, got {args.num_seeds}, {args.updates}")
    if args.child:
        print(json.dumps(child(args.schedule, args.num_seeds, args.updates, args.params_out, args.run_loop,
                               args.learners)))
        return 0

    import tempfile

    from sociajax.host import cpu_model

    names = ["default"] + [n for n in args.candidates if n != "default"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            params = Path(tmp) / f"{name}.npz"
            result = run_candidate(name, CANDIDATES[name], args, params)
            if "error" not in result:
                result["param_rel_diff_vs_default"] = 0.0 if name == "default" else relative_difference(
                    params, Path(tmp) / "default.npz")
            results.append(result)
            print(json.dumps(result), flush=True)
    base = next((r for r in results if r["name"] == "default" and "error" not in r), None)
    if base is None:
        raise SystemExit("error: the default flags failed; nothing to compare")
    for r in results:
        if "error" not in r:
            r["speedup_vs_default"] = round(base["update_s"] / r["update_s"], 3)
            r["within_rounding"] = r["param_rel_diff_vs_default"] <= ROUNDING
    eligible = [r for r in results if "error" not in r and r["within_rounding"] and r["speedup_vs_default"] >= args.min_gain]
    best = max(eligible, key=lambda r: r["speedup_vs_default"], default=base)
    model, avx512 = cpu_model()
    record = {"date": datetime.date.today().isoformat(), "cpu": model, "avx512": avx512, "schedule": args.schedule,
              "num_seeds": args.num_seeds, "updates": args.updates, "min_gain": args.min_gain, "results": results,
              "chosen": best["name"]}
    print(f"chosen on {model} ({'AVX-512' if avx512 else 'no AVX-512'}): {best['name']} "
          f"({best.get('speedup_vs_default', 1.0)}x the default)")
    write_record(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
