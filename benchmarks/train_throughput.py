"""Training throughput: whole updates (rollout + PPO) of a 3-agent population.

    python -m benchmarks.train_throughput [--num-envs 32 64 128] [--schedule paper|small|tiny]
                                          [--learners 2] [--num-seeds 1 8] [--updates 2]
                                          [--dtype float32 bfloat16] [--max-steps 250]
                                          [--lstm-unroll default 1 8] [--minibatch-loop auto]
                                          [--out benchmarks/results]

Each point builds the trainer of GoalCycle-3 with ``--learners`` learners (aux loss on; 2 by
default) and scripted oracles in the other seats, compiles one update ahead of time (compile
time reported apart), runs one warm-up update and times ``--updates`` more. ``paper`` is the
paper's schedule (20 minibatches of 512 16-step segments, recompute every 2); ``small`` is the
social-scripted preset's (8 x 32); ``tiny`` (2 x 4) with ``--max-steps 32`` and 4 envs runs the
whole benchmark on a CPU in seconds, to test it (``TINY=1 benchmarks/gpu_suite.sh``).

Reported per point: env steps per second (an env step moves all 3 agents; episodes of 250
steps, ``num_envs`` per update and seed, summed over the vmapped seeds), the model FLOPs one
env step costs (counted from XLA's cost analysis of one network forward without and with the
decoder, times the samples each phase processes; a backward pass counted as 2 forwards), the
achieved FLOP/s, and the utilisation against this machine's measured float32 matmul peak.
``--lstm-unroll`` and ``--minibatch-loop`` list speed settings to compare (``default``: the
backend's choice, see ``NetworkConfig`` and ``PPOConfig.minibatch_loop``); every combination
is one more point; so is every ``--dtype`` (the network's matmul precision, ``NetworkConfig.dtype``).

Also per point: the compiled update's memory (XLA's ``memory_analysis``: arguments, outputs,
temporaries, its peak) and the device's ``peak_bytes_in_use`` (``memory_stats``; None on CPU),
both per seed. The device figure is the process's high-water mark since it started, so
points run in increasing size (as ``--num-seeds 1 16 64`` does) read as each point's own peak.
And the projected wall time of the paper's Figure 4 (:data:`FIGURE4`) at the point's speed.
A point that fails (out of memory, say) is recorded with its error and the run goes on.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any, Optional

import jax
import jax.numpy as jnp

from benchmarks.env_throughput import machine_info
from sociajax.agents.network import DTYPES, OBS_SHAPE, SocialNet, default_lstm_unroll, init_params
from sociajax.agents.ppo import MINIBATCH_LOOPS, PPOConfig
from sociajax.training import AgentConfig, EnvConfig, NetworkConfig, TrainConfig, make_train

# Environment variables that decide how much GPU memory JAX takes (docs/benchmarks.md, "The GPU suite").
XLA_ENV = ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_ALLOCATOR", "XLA_FLAGS")

SCHEDULES = {
    "paper": {},
    "small": {"num_minibatches": 8, "minibatch_segments": 32},
    "tiny": {"num_minibatches": 2, "minibatch_segments": 4},  # for tests of the benchmark itself
}
# The paper's Figure 4 at full scale: 5 conditions x 5 seeds, each run 1.5M episodes of 250 steps.
FIGURE4 = {"conditions": 5, "seeds": 5, "episodes_per_run": 1_500_000, "episode_steps": 250}


def figure4_projection(env_steps_per_s_per_seed: float, num_seeds: int, compile_s: float) -> dict[str, Any]:
    """Wall time of Figure 4 at paper scale if its runs go ``num_seeds`` at a time (one program
    per batch of runs, batches one after another) at this point's speed per seed, plus one
    compile per batch. With more seeds than runs the last batch is padded, which is pessimistic:
    fewer runs per program would not run slower per run."""
    runs = FIGURE4["conditions"] * FIGURE4["seeds"]
    steps_per_run = FIGURE4["episodes_per_run"] * FIGURE4["episode_steps"]
    batches = -(-runs // num_seeds)
    wall = batches * (steps_per_run / env_steps_per_s_per_seed + compile_s)
    return {
        **FIGURE4,
        "runs": runs,
        "total_env_steps": runs * steps_per_run,
        "runs_per_program": num_seeds,
        "programs": batches,
        "wall_s": round(wall),
        "wall_h": round(wall / 3600, 2),
    }


def device_peak_bytes() -> Optional[int]:
    """The first device's ``peak_bytes_in_use`` (the allocator's high-water mark since the
    process started), or None where the backend keeps no statistics (CPU)."""
    stats = jax.devices()[0].memory_stats()
    return None if not stats else stats.get("peak_bytes_in_use")


def compiled_memory(compiled: Any) -> dict[str, Optional[int]]:
    """Bytes the compiled program needs (XLA's buffer assignment), or Nones if not reported."""
    fields = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes", "temp_size_in_bytes",
              "peak_memory_in_bytes")
    try:
        analysis = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend implements it
        analysis = None
    return {f: (None if analysis is None else getattr(analysis, f, None)) for f in fields}


def matmul_peak(size: int | None = None, repeats: int = 10, dtype: str = "float32") -> float:
    """Best FLOP/s of a jitted square matmul in ``dtype`` (XLA's default precision, so TF32
    for float32 on NVIDIA GPUs, which is also what the network's float32 matmuls get): the
    practical peak."""
    size = size or (8192 if jax.default_backend() == "gpu" else 2048)
    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32).astype(dtype)
    mm = jax.jit(lambda x: x @ x)
    mm(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        tick = time.perf_counter()
        mm(a).block_until_ready()
        best = min(best, time.perf_counter() - tick)
    return 2 * size**3 / best


def _flops(compiled: Any) -> float:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    return float(analysis.get("flops", float("nan")))


def forward_flops(batch: int = 256) -> dict[str, float]:
    """FLOPs of one network step per sample: acting (no decoder) and with the decoder.
    Unchunked: XLA's cost analysis counts a loop's body once, and chunking changes no FLOPs."""
    net = SocialNet(chunk=0)
    params = init_params(net, jax.random.PRNGKey(0))
    obs = jnp.zeros((batch,) + OBS_SHAPE, jnp.uint8)
    starts = jnp.zeros((batch,), bool)
    carry = net.initial_carry(batch)
    actions = jnp.zeros((batch,), jnp.int32)
    act = jax.jit(lambda p: net.apply({"params": p}, carry, obs, starts, method=SocialNet.step))
    full = jax.jit(lambda p: net.apply({"params": p}, carry, obs, starts, actions, method=SocialNet.step))
    return {
        "act": _flops(act.lower(params).compile()) / batch,
        "with_decoder": _flops(full.lower(params).compile()) / batch,
    }


def model_flops_per_update(config: TrainConfig, rollout_steps: int, fwd: dict[str, float]) -> float:
    """Network FLOPs of one update of one seed (all learned agents)."""
    from sociajax.training.config import static_config

    ppo = static_config(config).ppo  # the program's: reuse_rollout is off where a condition clones
    learners = sum(a.role == "learner" for a in config.agents)
    learned = sum(a.role in ("learner", "frozen") for a in config.agents)
    samples = ppo.num_envs * rollout_steps
    acting = learned * samples * fwd["act"]
    recomputes = ppo.recomputes_per_update()
    recompute = learners * recomputes * samples * fwd["act"]
    minibatch = learners * ppo.num_minibatches * ppo.minibatch_segments * ppo.segment_len * 3 * fwd["with_decoder"]
    return acting + recompute + minibatch


def benchmark_config(learners: int, ppo: PPOConfig, network: NetworkConfig, **fields: Any) -> TrainConfig:
    """GoalCycle-3 with ``learners`` learners (aux loss) and scripted oracles in the other
    seats, one update per compiled call; ``fields`` set further TrainConfig fields."""
    oracle = AgentConfig(role="scripted", policy="oracle")
    fields.setdefault("env", EnvConfig("GoalCycle-3"))
    return TrainConfig(
        agents=(AgentConfig(),) * learners + (oracle,) * (3 - learners),
        ppo=ppo,
        network=network,
        updates_per_chunk=1,
        run_dir="unused",
        progress=False,
        **fields,
    )


def bench_point(
    num_envs: int,
    schedule: str,
    updates: int,
    num_seeds: int,
    learners: int,
    fwd: dict[str, float],
    lstm_unroll: Optional[int] = None,
    minibatch_loop: str = "auto",
    dtype: str = "float32",
    max_steps: Optional[int] = None,
) -> dict[str, Any]:
    """Compile, warm up and time one setting (fields in the module doc)."""
    config = benchmark_config(
        learners,
        PPOConfig(num_envs=num_envs, minibatch_loop=minibatch_loop, **SCHEDULES[schedule]),
        NetworkConfig(lstm_unroll=lstm_unroll, dtype=dtype),
        env=EnvConfig("GoalCycle-3", max_steps=max_steps),
        total_env_steps=num_envs * (max_steps or 250) * (updates + 1),
        num_seeds=num_seeds,
    )
    trainer = make_train(config)
    state = trainer.place(trainer.init(trainer.seed_keys()))
    tick = time.perf_counter()
    chunk = trainer.compiled_chunk(state)
    compile_s = time.perf_counter() - tick
    state, metrics = chunk(state)  # warm-up
    jax.block_until_ready(metrics)
    tick = time.perf_counter()
    for _ in range(updates):
        state, metrics = chunk(state)
        jax.block_until_ready(metrics)
    seconds = (time.perf_counter() - tick) / updates
    env_steps = num_envs * trainer.episode_steps * num_seeds
    flops = model_flops_per_update(config, trainer.rollout_steps, fwd) * num_seeds
    memory = compiled_memory(chunk)
    peak = device_peak_bytes()
    per_seed = env_steps / seconds / num_seeds
    return {
        "num_envs": num_envs,
        "num_seeds": num_seeds,
        "learners": learners,
        "schedule": schedule,
        "ppo": dataclasses.asdict(config.ppo),
        "dtype": dtype,
        "episode_steps": trainer.episode_steps,
        "lstm_unroll": default_lstm_unroll() if lstm_unroll is None else lstm_unroll,
        "minibatch_groups_scanned": config.ppo.scans_minibatches(),
        "compile_s": round(compile_s, 2),
        "update_s": round(seconds, 3),
        "env_steps_per_update": env_steps,
        "env_steps_per_s": round(env_steps / seconds, 1),
        "env_steps_per_s_per_seed": round(per_seed, 1),
        "model_flops_per_env_step": round(flops / env_steps),
        "achieved_flops_per_s": flops / seconds,
        "compiled_memory": memory,
        "compiled_peak_bytes_per_seed": None if memory["peak_memory_in_bytes"] is None
        else round(memory["peak_memory_in_bytes"] / num_seeds),
        "device_peak_bytes": peak,
        "device_peak_bytes_per_seed": None if peak is None else round(peak / num_seeds),
        "figure4_projection": figure4_projection(per_seed, num_seeds, compile_s),
    }


def summarize(out: Path, tag: str, suite_seconds: Optional[float] = None) -> Path:
    """Merge today's ``train_throughput_*_{tag}_*.json`` in ``out`` (the steps of one
    ``gpu_suite.sh`` run) into ``gpu_suite_{tag}.json``: every point with its step, and per
    seed count bfloat16's speed over float32's. Why: one file answers the lease's questions."""
    info = machine_info()
    steps = {}
    for path in sorted(out.glob(f"train_throughput_{info['platform']}_{info['date']}_{tag}_*.json")):
        steps[path.stem.split(f"_{tag}_", 1)[1]] = json.loads(path.read_text())
    points = [dict(point, step=step) for step, record in steps.items() for point in record["points"]]
    speed = {(p["num_seeds"], p["dtype"]): p["env_steps_per_s"] for p in points
             if "error" not in p and p["step"] in ("f32", "bf16")}
    bf16_speedup = {
        str(seeds): round(speed[(seeds, "bfloat16")] / speed[(seeds, "float32")], 3)
        for seeds, dtype in speed if dtype == "float32" and (seeds, "bfloat16") in speed
    }
    timed = [p for p in points if "error" not in p]
    best = min(timed, key=lambda p: p["figure4_projection"]["wall_s"], default=None)
    summary = {
        "benchmark": "gpu_suite",
        "machine": info,
        "tag": tag,
        "suite_seconds": suite_seconds,
        "xla_env": {k: os.environ.get(k) for k in XLA_ENV},
        "steps": sorted(steps),
        "points": points,
        "failed_points": [p for p in points if "error" in p],
        "bf16_speedup_by_seeds": bf16_speedup,
        "figure4_best": None if best is None else {
            "step": best["step"], "num_seeds": best["num_seeds"], "dtype": best["dtype"],
            **best["figure4_projection"],
        },
    }
    path = out / f"gpu_suite_{tag}.json"
    path.write_text(json.dumps(summary, indent=2))
    print(f"wrote {path}: {len(points)} points from steps {sorted(steps)}; bf16/f32 speed by seeds "
          f"{bf16_speedup}; Figure 4 at best {summary['figure4_best'] and summary['figure4_best']['wall_h']} h")
    return path


def _unroll(text: str) -> Optional[int]:
    return None if text == "default" else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-envs", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--schedule", choices=sorted(SCHEDULES), default="paper")
    parser.add_argument("--updates", type=int, default=2)
    parser.add_argument("--num-seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--learners", type=int, choices=(1, 2, 3), default=2)
    parser.add_argument("--lstm-unroll", type=_unroll, nargs="+", default=[None],
                        help="LSTM steps per loop iteration to compare ('default': the backend's)")
    parser.add_argument("--minibatch-loop", choices=MINIBATCH_LOOPS, nargs="+", default=["auto"])
    parser.add_argument("--dtype", choices=DTYPES, nargs="+", default=["float32"],
                        help="the network's matmul precision (NetworkConfig.dtype); each is a point")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="episode length (default: Goal Cycle's 250; small only to test the benchmark)")
    parser.add_argument("--matmul-size", type=int, default=None,
                        help="side of the peak-FLOP/s matmul (default 8192 on GPU, 2048 elsewhere)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--tag", default="")
    parser.add_argument("--summarize", metavar="DIR", default=None,
                        help="only merge today's JSONs of --tag's steps in DIR into gpu_suite_TAG.json")
    parser.add_argument("--suite-seconds", type=float, default=None, help="(with --summarize) the suite's wall time")
    args = parser.parse_args()
    if args.summarize:
        summarize(Path(args.summarize), args.tag, args.suite_seconds)
        return

    peaks = {dtype: matmul_peak(args.matmul_size, dtype=dtype) for dtype in args.dtype}
    peak = peaks.get("float32", next(iter(peaks.values())))
    fwd = forward_flops()
    print(f"matmul peak {', '.join(f'{d} {p / 1e9:.0f}' for d, p in peaks.items())} GFLOP/s; forward "
          f"FLOPs/sample: act {fwd['act'] / 1e6:.2f} M, with decoder {fwd['with_decoder'] / 1e6:.2f} M")
    info = machine_info()
    record = {
        "benchmark": "train_throughput",
        "machine": info,
        "matmul_peak_flops_per_s": peak,
        "matmul_peak_flops_per_s_by_dtype": peaks,
        "forward_flops_per_sample": fwd,
        "figure4": FIGURE4,
        "xla_env": {k: os.environ.get(k) for k in XLA_ENV},
        "population": f"GoalCycle-3: {args.learners} learners (aux loss) + {3 - args.learners} scripted oracles",
        "points": [],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"train_throughput_{info['platform']}_{info['date']}{'_' + args.tag if args.tag else ''}.json"
    settings = itertools.product(args.num_seeds, args.num_envs, args.lstm_unroll, args.minibatch_loop, args.dtype)
    for num_seeds, num_envs, unroll, loop, dtype in settings:
        label = (f"seeds {num_seeds:3d} num_envs {num_envs:5d} lstm_unroll {unroll or 'default'} "
                 f"minibatch_loop {loop} {dtype}")
        try:
            point = bench_point(num_envs, args.schedule, args.updates, num_seeds, args.learners, fwd, unroll, loop,
                                dtype, args.max_steps)
        except Exception as err:  # noqa: BLE001 - e.g. out of device memory: record it, go on
            record["points"].append({"num_envs": num_envs, "num_seeds": num_seeds, "dtype": dtype,
                                     "lstm_unroll": unroll, "minibatch_loop": loop,
                                     "error": f"{type(err).__name__}: {str(err)[:2000]}"})
            print(f"{label}: FAILED {type(err).__name__}: {str(err)[:300]}", flush=True)
            (out / name).write_text(json.dumps(record, indent=2))
            continue
        point["utilization"] = round(point["achieved_flops_per_s"] / peaks[dtype], 4)
        record["points"].append(point)
        memory = point["device_peak_bytes_per_seed"] or point["compiled_peak_bytes_per_seed"]
        print(f"{label}: {point['env_steps_per_s']:>10,.0f} env-steps/s, "
              f"update {point['update_s']:.2f} s, compile {point['compile_s']:.0f} s, "
              f"{point['model_flops_per_env_step'] / 1e6:.1f} MFLOP/env-step, "
              f"{point['achieved_flops_per_s'] / 1e9:.1f} GFLOP/s = {point['utilization']:.1%} of {dtype} peak, "
              f"{(memory or 0) / 2**20:.0f} MiB/seed, Figure 4 in {point['figure4_projection']['wall_h']:.1f} h",
              flush=True)
        # written after every point, so a run cut short keeps what it measured
        (out / name).write_text(json.dumps(record, indent=2))
    print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
