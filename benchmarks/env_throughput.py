"""Environment throughput: sociajax beside peer gridworld libraries, in one run.

    python -m benchmarks.env_throughput [--num-envs 64 256 1024 4096 16384] [--num-steps 100]
                                        [--occlusion original minigrid]
                                        [--peers xminigrid navix minigrid] [--out benchmarks/results]

Random-action rollouts under ``jit`` + ``lax.scan``; observations are summed into a checksum so
XLA cannot skip rendering them; compile time is reported apart from run time. Each sociajax
env is timed under every line-of-sight rule given (the original's, the default, and
MiniGrid's), compiled first and then run in turns (best of three each), so the rules share the
machine's load and compare fairly. Writes a JSON
record (with the machine) and a scaling plot to ``--out``. Peers need
``pip install -r benchmarks/requirements-peers.txt``; a peer that is not installed is listed
as unavailable rather than failing the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
from typing import Any, Sequence

import jax

from sociajax.envs import rendering
from sociajax.eval import rollout_throughputs
from sociajax.host import cpu_model

OURS = ("GoalCycle-3", "FourRooms", "Maze")


def machine_info() -> dict[str, Any]:
    device = jax.devices()[0]
    model, avx512 = cpu_model()
    return {
        "platform": device.platform,
        "device": getattr(device, "device_kind", str(device)),
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "avx512": avx512,
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "date": dt.date.today().isoformat(),
    }


def bench_sociajax(
    env_id: str, num_envs: int, num_steps: int, batched: str = "VecEnv", occlusions: Sequence[str] = ("original",)
) -> list[dict[str, Any]]:
    """One record per line-of-sight rule; the rules' runs alternate, so they share the load."""
    records = rollout_throughputs(env_id, num_envs, num_steps, occlusions, batching=batched, repeats=3)
    return [
        {"library": "sociajax", **r, "notes": f"egocentric RGB views, {r['occlusion']} line of sight, every agent"}
        for r in records
    ]


def bench_peers(names: list[str], num_envs: int, num_steps: int) -> list[dict[str, Any]]:
    try:
        from benchmarks import peers
    except ImportError as error:  # the peers module itself needs nothing extra to import
        return [{"peer": name, "unavailable": str(error)} for name in names]
    available = peers.available_peers()
    runners = {
        "xminigrid": peers.bench_xminigrid_fourrooms_rgb,
        "navix": peers.bench_navix_fourrooms,
        "minigrid": peers.bench_minigrid_numpy_fourrooms,
    }
    out = []
    for name in names:
        if available.get(name) is not None:
            out.append({"peer": name, "num_envs": num_envs, "unavailable": available[name]})
            continue
        record = runners[name](num_envs, num_steps)
        record["library"] = name
        out.append(record)
    return out


def plot(records: list[dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        if "agent_steps_per_s" not in r:
            continue
        label = f"{r['library']} {r.get('env', '')} {r.get('batching', '')} {r.get('occlusion', '')}".strip()
        series.setdefault(label, []).append((r["num_envs"], r["agent_steps_per_s"]))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in sorted(series.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("parallel environments")
    ax.set_ylabel("agent-steps / s (one RGB view each)")
    ax.set_title(f"Environment throughput ({records[0]['machine']['device']})" if records else "")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, nargs="+", default=[64, 256, 1024, 4096, 16384])
    parser.add_argument("--num-steps", type=int, default=100)
    parser.add_argument("--envs", nargs="+", default=list(OURS))
    parser.add_argument(
        "--occlusion", nargs="+", default=["original", "minigrid"], help="line-of-sight rules (make's occlusion)"
    )
    parser.add_argument("--vmap-baseline", action="store_true", help="also time jax.vmap(env.step)")
    parser.add_argument("--peers", nargs="*", default=["xminigrid", "navix", "minigrid"])
    parser.add_argument("--out", default=os.path.join("benchmarks", "results"))
    parser.add_argument("--tag", default="", help="suffix for the output file names")
    args = parser.parse_args()
    for n in args.num_envs:
        if n < 1:
            raise ValueError(f"--num-envs values must be >= 1, got {n}")
    for rule in args.occlusion:
        if rule not in rendering.OCCLUSION_RULES:
            raise ValueError(f"--occlusion values must be in {sorted(rendering.OCCLUSION_RULES)}, got {rule!r}")

    machine = machine_info()
    records: list[dict[str, Any]] = []
    print(f"machine: {machine}")
    header = f"{'library':10s} {'env':14s} {'batching':8s} {'sight':8s} {'envs':>6s}"
    print(f"{header} {'agent-steps/s':>14s} {'compile s':>9s}")
    for num_envs in args.num_envs:
        runs = [r for e in args.envs for r in bench_sociajax(e, num_envs, args.num_steps, occlusions=args.occlusion)]
        if args.vmap_baseline:
            runs += [
                r
                for e in args.envs
                for r in bench_sociajax(e, num_envs, args.num_steps, batched="vmap", occlusions=args.occlusion)
            ]
        runs += bench_peers(args.peers, num_envs, args.num_steps)
        for r in runs:
            r["machine"] = machine
            records.append(r)
            if "unavailable" in r:
                print(f"{r.get('peer', r.get('library')):10s} unavailable: {r['unavailable']}")
                continue
            print(
                f"{r['library']:10s} {r.get('env', ''):14s} {r.get('batching', ''):8s} {r.get('occlusion', ''):8s} "
                f"{r['num_envs']:6d} "
                f"{r['agent_steps_per_s']:14,.0f} {r['compile_s']:9.1f}"
            )
    speeds = {
        (r["env"], r["batching"], r["num_envs"], r["occlusion"]): r["agent_steps_per_s"]
        for r in records
        if r.get("library") == "sociajax"
    }
    if {"original", "minigrid"} <= set(args.occlusion):
        print("original's line of sight against MiniGrid's (speed ratio):")
        for (env_id, batching, num_envs, rule), speed in speeds.items():
            if rule == "original":
                ratio = speed / speeds[env_id, batching, num_envs, "minigrid"]
                print(f"  {env_id:14s} {batching:8s} {num_envs:6d} {ratio:.3f}")
    os.makedirs(args.out, exist_ok=True)
    stem = f"env_throughput_{machine['platform']}_{machine['date']}{('_' + args.tag) if args.tag else ''}"
    with open(os.path.join(args.out, stem + ".json"), "w") as f:
        json.dump(records, f, indent=1)
    plot(records, os.path.join(args.out, stem + ".png"))
    print(f"wrote {os.path.join(args.out, stem)}.json and .png")


if __name__ == "__main__":
    main()
