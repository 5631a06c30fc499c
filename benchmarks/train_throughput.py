"""Training throughput: whole updates (rollout + PPO) of a 3-agent population.

    python -m benchmarks.train_throughput [--num-envs 32 64 128] [--schedule paper|small]
                                          [--learners 2] [--num-seeds 1 8] [--updates 2]
                                          [--lstm-unroll default 1 8] [--minibatch-loop auto]
                                          [--out benchmarks/results]

Each point builds the trainer of GoalCycle-3 with ``--learners`` learners (aux loss on; 2 by
default) and scripted oracles in the other seats, compiles one update ahead of time (compile
time reported apart), runs one warm-up update and times ``--updates`` more. ``paper`` is the
paper's schedule (20 minibatches of 512 16-step segments, recompute every 2); ``small`` is the
social-scripted preset's (8 x 32).

Reported per point: env steps per second (an env step moves all 3 agents; episodes of 250
steps, ``num_envs`` per update and seed, summed over the vmapped seeds), the model FLOPs one
env step costs (counted from XLA's cost analysis of one network forward without and with the
decoder, times the samples each phase processes; a backward pass counted as 2 forwards), the
achieved FLOP/s, and the utilisation against this machine's measured float32 matmul peak.
``--lstm-unroll`` and ``--minibatch-loop`` list speed settings to compare (``default``: the
backend's choice, see ``NetworkConfig`` and ``PPOConfig.minibatch_loop``); every combination
is one more point.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import time
from pathlib import Path
from typing import Any, Optional

import jax
import jax.numpy as jnp

from benchmarks.env_throughput import machine_info
from sociajax.agents.network import OBS_SHAPE, SocialNet, default_lstm_unroll, init_params
from sociajax.agents.ppo import MINIBATCH_LOOPS, PPOConfig
from sociajax.training import AgentConfig, EnvConfig, NetworkConfig, TrainConfig, make_train

SCHEDULES = {
    "paper": {},
    "small": {"num_minibatches": 8, "minibatch_segments": 32},
}


def matmul_peak(size: int | None = None, repeats: int = 10) -> float:
    """Best float32 FLOP/s of a jitted square matmul (XLA's default precision, so TF32 on
    NVIDIA GPUs, which is also what the network's float32 matmuls get): the practical peak."""
    size = size or (8192 if jax.default_backend() == "gpu" else 2048)
    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
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
    ppo = config.ppo
    learners = sum(a.role == "learner" for a in config.agents)
    learned = sum(a.role in ("learner", "frozen") for a in config.agents)
    samples = ppo.num_envs * rollout_steps
    acting = learned * samples * fwd["act"]
    recomputes = -(-ppo.num_minibatches // ppo.recompute_every) + 1
    recompute = learners * recomputes * samples * fwd["act"]
    minibatch = learners * ppo.num_minibatches * ppo.minibatch_segments * ppo.segment_len * 3 * fwd["with_decoder"]
    return acting + recompute + minibatch


def benchmark_config(learners: int, ppo: PPOConfig, network: NetworkConfig, **fields: Any) -> TrainConfig:
    """GoalCycle-3 with ``learners`` learners (aux loss) and scripted oracles in the other
    seats, one update per compiled call; ``fields`` set further TrainConfig fields."""
    oracle = AgentConfig(role="scripted", policy="oracle")
    return TrainConfig(
        env=EnvConfig("GoalCycle-3"),
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
) -> dict[str, Any]:
    config = benchmark_config(
        learners,
        PPOConfig(num_envs=num_envs, minibatch_loop=minibatch_loop, **SCHEDULES[schedule]),
        NetworkConfig(lstm_unroll=lstm_unroll),
        total_env_steps=num_envs * 250 * (updates + 1),
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
    return {
        "num_envs": num_envs,
        "num_seeds": num_seeds,
        "learners": learners,
        "schedule": schedule,
        "ppo": dataclasses.asdict(config.ppo),
        "lstm_unroll": default_lstm_unroll() if lstm_unroll is None else lstm_unroll,
        "minibatch_groups_scanned": config.ppo.scans_minibatches(),
        "compile_s": round(compile_s, 2),
        "update_s": round(seconds, 3),
        "env_steps_per_update": env_steps,
        "env_steps_per_s": round(env_steps / seconds, 1),
        "env_steps_per_s_per_seed": round(env_steps / seconds / num_seeds, 1),
        "model_flops_per_env_step": round(flops / env_steps),
        "achieved_flops_per_s": flops / seconds,
    }


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
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()

    peak = matmul_peak()
    fwd = forward_flops()
    print(f"matmul peak {peak / 1e9:.0f} GFLOP/s; forward FLOPs/sample: act {fwd['act'] / 1e6:.2f} M, "
          f"with decoder {fwd['with_decoder'] / 1e6:.2f} M")
    info = machine_info()
    record = {
        "benchmark": "train_throughput",
        "machine": info,
        "matmul_peak_flops_per_s": peak,
        "forward_flops_per_sample": fwd,
        "population": f"GoalCycle-3: {args.learners} learners (aux loss) + {3 - args.learners} scripted oracles",
        "points": [],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"train_throughput_{info['platform']}_{info['date']}{'_' + args.tag if args.tag else ''}.json"
    settings = itertools.product(args.num_seeds, args.num_envs, args.lstm_unroll, args.minibatch_loop)
    for num_seeds, num_envs, unroll, loop in settings:
        point = bench_point(num_envs, args.schedule, args.updates, num_seeds, args.learners, fwd, unroll, loop)
        point["utilization"] = round(point["achieved_flops_per_s"] / peak, 4)
        record["points"].append(point)
        print(f"seeds {num_seeds:3d} num_envs {num_envs:5d} lstm_unroll {point['lstm_unroll']} "
              f"minibatch_loop {loop}: {point['env_steps_per_s']:>10,.0f} env-steps/s, "
              f"update {point['update_s']:.2f} s, compile {point['compile_s']:.0f} s, "
              f"{point['model_flops_per_env_step'] / 1e6:.1f} MFLOP/env-step, "
              f"{point['achieved_flops_per_s'] / 1e9:.1f} GFLOP/s = {point['utilization']:.1%} of peak",
              flush=True)
        # written after every point, so a run cut short keeps what it measured
        (out / name).write_text(json.dumps(record, indent=2))
    print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
