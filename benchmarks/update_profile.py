"""Where one update's time goes: each phase compiled and timed on its own, with its FLOPs.

    python -m benchmarks.update_profile [--schedule mini|main|tiny] [--num-seeds 4] [--repeats 5]
                                        [--out benchmarks/results/update_profile_cpu_DATE.json]

One update of a run is: a rollout of whole episodes (env steps, the scripted experts, one
network step per learner per step), then per learner ``num_minibatches / recompute_every``
recomputes (a forward unroll over the whole rollout) each followed by ``recompute_every``
gradient steps (forward and backward of a minibatch, the optimizer), then one final recompute
(the whole-rollout KL); with ``PPOConfig.reuse_rollout`` the first recompute is taken from the
rollout (``PPOConfig.recomputes_per_update``). This script times, for one run of the chosen schedule:

* ``env_and_experts``: the same episodes with every learner's seat acting at random, so
  only the env and the scripted experts run;
* ``rollout``: the real rollout (its network share is ``rollout - env_and_experts``);
* ``recompute``: one forward unroll over the whole rollout (``recomputes_per_update`` of them);
* ``minibatch_step``: one gradient step on one minibatch, the optimizer included;
* ``optimizer``: the optimizer's step alone on gradients of the parameters' shape;
* ``update``: the trainer's whole update for ``--num-seeds`` runs in one program (the
  number the training speed is made of).

Per phase: median seconds over ``--repeats`` calls after compiling, the calls per update
(``recompute`` x recomputes, ``minibatch_step`` x minibatches), their share of the sum, the
model's FLOPs (counted from one unlooped network step, as ``train_throughput`` does: XLA's
cost analysis counts a loop's body once) and the share of this machine's measured float32
matmul peak they reach. Schedules: ``mini`` is the search's 7x7 setting (64 episodes of 64 steps, 8
minibatches of 32 segments), ``main`` the README's main job (16 episodes of 250 steps, 8 x
32), ``tiny`` seconds (for the tests).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sociajax.host import cpu_model
from benchmarks.records import write_record
from benchmarks.train_throughput import forward_flops, matmul_peak

SCHEDULES = ("mini", "main", "tiny")


def schedule_config(name: str, num_seeds: int, learners: int = 1) -> Any:
    """The TrainConfig of schedule ``name``: a novice (aux PRED) beside two scripted oracles,
    or ``learners`` learners and scripted oracles in the other seats."""
    from sociajax.agents.ppo import PPOConfig
    from sociajax.training import AgentConfig, EnvConfig, TrainConfig
    from sociajax.training.presets import get_preset

    oracle = AgentConfig(role="scripted", policy="oracle")
    if learners not in (1, 2, 3):
        raise ValueError(f"learners must be 1, 2 or 3, got {learners!r}")
    if name == "main":
        preset = get_preset("social-scripted")
        agents = (preset.agents[0],) * learners + preset.agents[learners:]
        return dataclasses.replace(preset, agents=agents, conditions=(), num_seeds=num_seeds, progress=False)
    if name == "mini":
        env = EnvConfig("GoalCycle-3", size=7, n_walls=0, max_steps=64, penalty="-1.5")
        ppo = PPOConfig(num_envs=64, num_minibatches=8, minibatch_segments=32, entropy_coef=1e-3)
        lr = 1e-3
    elif name == "tiny":
        env = EnvConfig("GoalCycle-3", size=7, n_walls=0, max_steps=16)
        ppo = PPOConfig(num_envs=2, num_minibatches=2, minibatch_segments=2, recompute_every=1)
        lr = 1e-4
    else:
        raise ValueError(f"--schedule must be one of {SCHEDULES}, got {name!r}")
    return TrainConfig(env=env, agents=(AgentConfig(lr=lr),) * learners + (oracle,) * (3 - learners), ppo=ppo, num_seeds=num_seeds,
                       updates_per_chunk=1, baseline_episodes=0, progress=False)


def timed(fn: Callable, args: tuple, repeats: int) -> tuple[float, float]:
    """(median seconds per call, compile seconds) of jitted ``fn``."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - begin)
    return float(np.median(times)), compile_s


def profile(name: str, num_seeds: int, repeats: int) -> dict[str, Any]:
    """Every phase of one update of schedule ``name`` (see the module doc)."""
    from sociajax.agents.ppo import gather_minibatch, minibatch_update, recompute_targets
    from sociajax.agents.rollouts import scripted_returns
    from sociajax.agents.scripted import RandomPolicy
    from sociajax.training.rollout import ROLLOUT_AXES, collect
    from sociajax.training.run import loaded_params
    from sociajax.training.trainer import make_train

    config = schedule_config(name, num_seeds)
    trainer = make_train(config)
    population, env, ppo = trainer.population, trainer.env, trainer.population.ppo  # the program's (static)
    steps = trainer.rollout_steps
    state = trainer.init(trainer.seed_keys(), loaded_params(trainer))
    one = jax.tree.map(lambda x: x[0], state)  # run 0
    env_params = trainer.env_params_at(one.data, jnp.zeros((), jnp.int32))
    params = population.acting_params(one.population)
    key = jax.random.PRNGKey(1)
    phases: dict[str, dict[str, float]] = {}

    fwd = forward_flops()
    samples = ppo.num_envs * steps
    model_flops = {  # per call: XLA's cost analysis counts a loop's body once, so count the model's
        "rollout": samples * fwd["act"],
        "recompute": samples * fwd["act"],
        "minibatch_step": ppo.minibatch_segments * ppo.segment_len * 3 * fwd["with_decoder"],
    }

    def record(phase: str, fn: Callable, args: tuple, per_update: float) -> None:
        seconds, compile_s = timed(fn, args, repeats)
        phases[phase] = {"seconds": seconds, "compile_s": round(compile_s, 2), "per_update": per_update,
                         "model_gflops": round(model_flops.get(phase, 0.0) / 1e9, 4)}

    policies = [RandomPolicy() if a in population.learned_agents else p for a, p in
                enumerate(_scripted_seats(population))]
    record("env_and_experts", lambda k: scripted_returns(env, env_params, policies, k, num_envs=ppo.num_envs,
                                                         num_steps=steps), (key,), 1)
    segment_len = ppo.segment_len if ppo.reuse_rollout else 0  # as the trainer collects

    def rollout_fn(p: Any, k: jax.Array) -> Any:
        return collect(population, env, env_params, p, k, ppo.num_envs, steps, segment_len=segment_len)[0]

    record("rollout", rollout_fn, (params, key), 1)
    rollout = jax.tree.map(  # learner 0's rollout (ROLLOUT_AXES: where the learner axis is)
        lambda axis, part: jax.tree.map(lambda x: jnp.take(x, 0, axis=axis), part),
        ROLLOUT_AXES, jax.jit(rollout_fn)(params, key),
    )
    learner = jax.tree.map(lambda x: x[0], one.population.learners)
    data = jax.tree.map(lambda x: x[0], one.data.learners)
    recompute = lambda p: recompute_targets(p, learner.apply_fn, rollout, ppo, data)  # noqa: E731
    record("recompute", recompute, (learner.params,), ppo.recomputes_per_update())
    targets = jax.jit(recompute)(learner.params)
    num_segments = ppo.num_envs * (steps // ppo.segment_len)
    segments = jax.random.choice(key, num_segments, (ppo.minibatch_segments,), replace=False)
    batch = gather_minibatch(rollout, targets, segments, ppo)
    record("minibatch_step", lambda s, b: minibatch_update(s, b, ppo, data), (learner, batch), ppo.num_minibatches)
    grads = jax.tree.map(jnp.ones_like, learner.params)
    record("optimizer", lambda s, g: s.tx.update(g, s.opt_state, s.params), (learner, grads), ppo.num_minibatches)

    compiled = trainer.compiled_chunk(state)
    state, _ = compiled(state)  # warm-up
    jax.block_until_ready(state)
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        state, _ = compiled(state)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - begin)
    update_s = float(np.median(times))
    per_run = {k: v["seconds"] * v["per_update"] for k, v in phases.items() if k != "optimizer"}
    per_run["rollout_network"] = max(per_run["rollout"] - per_run["env_and_experts"], 0.0)
    parts = ("env_and_experts", "rollout_network", "recompute", "minibatch_step")
    total = sum(per_run[p] for p in parts)
    peak = matmul_peak()
    update_flops = sum(model_flops[p] * phases[p]["per_update"] for p in model_flops)
    env_steps = config.ppo.num_envs * trainer.episode_steps * trainer.num_runs
    return {
        "schedule": name,
        "num_seeds": num_seeds,
        "rollout_steps": steps,
        "episodes_per_update": config.ppo.num_envs,
        "recomputes_per_update": ppo.recomputes_per_update(),
        "reuse_rollout": ppo.reuse_rollout,
        "minibatches_per_update": ppo.num_minibatches,
        "phases": phases,
        "one_run_seconds_per_update": {p: round(per_run[p], 4) for p in parts},
        "one_run_share": {p: round(per_run[p] / total, 3) for p in parts},
        "optimizer_share_of_minibatch_step": round(phases["optimizer"]["seconds"] / phases["minibatch_step"]["seconds"], 3),
        "update_seconds_all_runs": round(update_s, 4),
        "env_steps_per_s": round(env_steps / update_s, 1),
        "model_gflops_per_update_one_run": round(update_flops / 1e9, 3),
        "matmul_peak_gflops": round(peak / 1e9, 1),
        "utilisation_of_peak": round(update_flops * trainer.num_runs / update_s / peak, 3),
        "phase_utilisation_of_peak": {
            p: round(model_flops[p] / phases[p]["seconds"] / peak, 3) for p in model_flops
        },
    }


def _scripted_seats(population: Any) -> list[Any]:
    """Each agent's scripted policy (its own where scripted; learners get filled in later)."""
    seats: list[Any] = [None] * population.n_agents
    for agent, policy in zip(population.scripted_agents, population.scripted_policies):
        seats[agent] = policy
    return seats


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedule", choices=SCHEDULES, nargs="+", default=["mini", "main"])
    parser.add_argument("--num-seeds", type=int, default=4, help="runs in the whole-update program")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.num_seeds < 1 or args.repeats < 1:
        raise SystemExit(f"error: --num-seeds and --repeats must be positive, got {args.num_seeds}, {args.repeats}")
    model, avx512 = cpu_model()
    record = {"date": datetime.date.today().isoformat(), "cpu": model, "avx512": avx512, "jax": jax.__version__,
              "backend": jax.default_backend(), "profiles": []}
    for name in args.schedule:
        result = profile(name, args.num_seeds, args.repeats)
        record["profiles"].append(result)
        shares = ", ".join(f"{k} {v:.0%}" for k, v in result["one_run_share"].items())
        print(f"{name}: update of {args.num_seeds} runs {result['update_seconds_all_runs']:.3f} s "
              f"({result['env_steps_per_s']:,.0f} env-steps/s), {result['utilisation_of_peak']:.0%} of the matmul peak; "
              f"one run: {shares}", flush=True)
    write_record(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
