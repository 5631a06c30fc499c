"""Multi-host overhead on CPU: the same runs on the same number of devices, as one process
or as several local processes joined by ``jax.distributed``.

    python -m benchmarks.multihost_overhead [--devices 2] [--num-seeds 2] [--updates 12]
                                            [--repeats 1] [--out benchmarks/results]

Each layout trains the smoke preset (``--num-seeds`` seeds, ``--updates`` updates of one
update per chunk) through the CLI: ``one``: 1 process with ``--devices`` host devices;
``multi``: ``--devices`` processes of 1 device each (coordinator on 127.0.0.1). The time
of an update is the step of ``metrics.csv``'s ``wall_s`` between consecutive updates, so it
holds everything the host loop does per chunk (the compiled chunk, fetching (all-gathering)
metrics, agreeing on a stop, writing rows); the first ``--warmup`` updates are left out and
the median of the rest is reported. Compiles are not timed (a persistent compilation cache
shared by the runs keeps repeats short). Layouts alternate over ``--repeats`` so they share
the machine's load alike; overhead = median multi / median one - 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from sociajax.host import cpu_model

ROOT = Path(__file__).resolve().parents[1]


def _env(devices: int, cache: str) -> dict[str, str]:
    return dict(
        os.environ,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        JAX_PLATFORMS="cpu",
        JAX_COMPILATION_CACHE_DIR=cache,
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )


def _train_args(run_dir: Path, num_seeds: int, updates: int) -> list[str]:
    # smoke: 4 episodes of 32 steps per update and seed
    return [
        sys.executable, "-m", "sociajax.train", "--preset", "smoke", "--run-dir", str(run_dir),
        "--num-seeds", str(num_seeds), "--total-env-steps", str(updates * 4 * 32), "--checkpoint-every", "100000",
        "--no-progress",
    ]


def _update_seconds(run_dir: Path, warmup: int) -> tuple[list[float], list[float]]:
    """Per update after ``warmup`` (one update per chunk): the seconds between consecutive
    updates' rows, and the seconds of the compiled chunk plus fetching its metrics (from the
    ``sps`` column: the chunk's env steps of all runs over that time)."""
    from sociajax.training.logging import read_metrics

    wall, chunk, steps = {}, {}, {}
    for row in read_metrics(run_dir / "metrics.csv"):
        update = int(row["update"])
        wall[update], chunk[update] = float(row["wall_s"]), float(row["sps"])
        steps.setdefault(update, {})[row["seed"], row["condition"]] = int(row["env_steps"])
    updates = [u for u in sorted(wall) if u - 1 in wall and u > warmup]
    per_chunk = {u: sum(steps[u].values()) - sum(steps[u - 1].values()) for u in updates}
    return [wall[u] - wall[u - 1] for u in updates], [per_chunk[u] / chunk[u] for u in updates]


def run_layout(
    layout: str, devices: int, num_seeds: int, updates: int, work: Path, cache: str, pin: bool = False
) -> float:
    """Wall seconds of the whole launch; the run folder is ``work/layout``. ``pin``: each
    process of ``multi`` on its own core (``taskset``), as on separate hosts, so the
    processes' thread pools do not fight over the same cores."""
    run_dir = work / layout
    tick = time.perf_counter()
    if layout == "one":
        result = subprocess.run(_train_args(run_dir, num_seeds, updates), env=_env(devices, cache),
                                capture_output=True, text=True, cwd=ROOT)
        if result.returncode:
            raise RuntimeError(result.stderr[-3000:])
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        logs = [open(work / f"{layout}-{i}.log", "w") for i in range(devices)]
        procs = [
            subprocess.Popen(
                (["taskset", "-c", str(i % (os.cpu_count() or 1))] if pin else [])
                + _train_args(run_dir, num_seeds, updates) + [
                    "--distributed.coordinator", f"127.0.0.1:{port}", "--distributed.num-processes", str(devices),
                    "--distributed.process-id", str(i),
                ],
                env=_env(1, cache), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            )
            for i, log in enumerate(logs)
        ]
        codes = [p.wait() for p in procs]
        for log in logs:
            log.close()
        if any(codes):
            raise RuntimeError(f"multi-process run failed ({codes}); logs in {work}")
    return time.perf_counter() - tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--num-seeds", type=int, default=2)
    parser.add_argument("--updates", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--note", default="")
    parser.add_argument("--pin", action="store_true", help="pin each multi process to its own core (taskset)")
    args = parser.parse_args()

    samples: dict[str, list[float]] = {"one": [], "multi": []}
    chunks: dict[str, list[float]] = {"one": [], "multi": []}
    launches: dict[str, list[float]] = {"one": [], "multi": []}
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for layout in ("one", "multi"):
                work = Path(tmp) / f"r{repeat}"
                work.mkdir(exist_ok=True)
                launches[layout].append(
                    run_layout(layout, args.devices, args.num_seeds, args.updates, work, cache, args.pin)
                )
                update_s, chunk_s = _update_seconds(work / layout, args.warmup)
                samples[layout] += update_s
                chunks[layout] += chunk_s
                print(f"repeat {repeat} {layout}: median update {np.median(samples[layout]):.3f} s", flush=True)

    median = {k: float(np.median(v)) for k, v in samples.items()}
    model, avx512 = cpu_model()
    record: dict[str, Any] = {
        "benchmark": "multihost_overhead",
        "machine": {
            "platform": "cpu", "cpu_count": os.cpu_count(), "cpu_model": model, "avx512": avx512,
            "python": sys.version.split()[0], "date": dt.date.today().isoformat(),
        },
        "config": {
            "preset": "smoke", "num_seeds": args.num_seeds, "updates": args.updates, "warmup": args.warmup,
            "repeats": args.repeats, "devices": args.devices, "pin": args.pin,
        },
        "layouts": {
            "one": f"1 process x {args.devices} host devices",
            "multi": f"{args.devices} processes x 1 host device (jax.distributed, gloo, 127.0.0.1)",
        },
        "update_s_median": median,
        "update_s_all": samples,
        "chunk_and_fetch_s_median": {k: float(np.median(v)) for k, v in chunks.items()},
        "launch_wall_s": launches,
        "overhead": median["multi"] / median["one"] - 1,
        "note": args.note,
    }
    import jax

    record["machine"]["jax"] = jax.__version__
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "_pinned" if args.pin else ""
    path = args.out / f"multihost_overhead_cpu_{record['machine']['date']}{suffix}.json"
    path.write_text(json.dumps(record, indent=2))
    print(json.dumps({k: record[k] for k in ("update_s_median", "chunk_and_fetch_s_median", "overhead")}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
