"""Random-action rollout timing: the one measurement the main job and the benchmark share."""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from sociajax.envs.core import EnvParams, MultiAgentGridEnv
from sociajax.envs.registry import make
from sociajax.envs.vector import VecEnv

BATCHINGS = ("VecEnv", "vmap", "none")


def rollout_throughput(
    env_id: str,
    num_envs: int,
    num_steps: int,
    batching: str = "VecEnv",
    seed: int = 0,
    occlusion: str = "original",
) -> dict[str, Any]:
    """Time a jitted ``lax.scan`` of random actions; compile time apart, best of two runs.

    ``batching`` is "VecEnv" (resets only when an episode ends) or "vmap"
    (``jax.vmap(env.step)``, which builds a reset layout every step). ``occlusion`` is the
    views' line-of-sight rule (see ``make``). Observations are summed into a checksum so XLA
    cannot skip rendering them.
    """
    return rollout_throughputs(env_id, num_envs, num_steps, (occlusion,), batching, seed)[0]


def rollout_throughputs(
    env_id: str,
    num_envs: int,
    num_steps: int,
    occlusions: Sequence[str] = ("original", "minigrid"),
    batching: str = "VecEnv",
    seed: int = 0,
    repeats: int = 2,
) -> list[dict[str, Any]]:
    """:func:`rollout_throughput` for several line-of-sight rules, timed in turns.

    All rules are compiled first, then their runs alternate (best of ``repeats`` each), so a
    shared machine's changing load falls on every rule alike and their ratio is fair.
    """
    if batching not in ("VecEnv", "vmap"):
        raise ValueError(f"batching must be 'VecEnv' or 'vmap', got batching={batching!r}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got repeats={repeats}")
    key = jax.random.PRNGKey(seed)
    built = []
    for occlusion in occlusions:
        env, params = make(env_id, occlusion=occlusion)
        rollout = random_rollout(env, params, num_envs, num_steps, batching)
        start = time.perf_counter()
        compiled = jax.jit(rollout).lower(key).compile()
        compile_s = time.perf_counter() - start
        jax.block_until_ready(compiled(key))  # warm-up
        built.append((occlusion, env, compiled, compile_s))
    run_s = [float("inf")] * len(built)
    for repeat in range(repeats):
        for i, (_, _, compiled, _) in enumerate(built):
            start = time.perf_counter()
            jax.block_until_ready(compiled(jax.random.fold_in(key, repeat + 1)))
            run_s[i] = min(run_s[i], time.perf_counter() - start)
    records = []
    for (occlusion, env, _, compile_s), best in zip(built, run_s):
        env_steps = num_envs * num_steps / best
        records.append(
            {
                "env": env_id,
                "batching": batching,
                "occlusion": occlusion,
                "num_envs": num_envs,
                "num_steps": num_steps,
                "n_agents": env.n_agents,
                "compile_s": compile_s,
                "run_s": best,
                "env_steps_per_s": env_steps,
                "agent_steps_per_s": env_steps * env.n_agents,
                "obs_shape": list(env.obs_shape[1:]),
            }
        )
    return records


def random_rollout(
    env: MultiAgentGridEnv,
    params: EnvParams,
    num_envs: int,
    num_steps: int,
    batching: str,
    reset_pool: int | None = None,
) -> Callable[[jax.Array], jax.Array]:
    """key -> checksum of every observation of a ``num_steps`` random-action rollout.

    ``batching``: "VecEnv" (``VecEnv(env, num_envs, reset_pool)``), "vmap" (``jax.vmap(env.step)``)
    or "none" (the same steps and views with no resets at all: the floor a reset scheme can
    reach, for ``benchmarks.reset_cost``)."""
    if batching not in BATCHINGS:
        raise ValueError(f"batching must be one of {BATCHINGS}, got batching={batching!r}")
    venv = VecEnv(env, num_envs, reset_pool=reset_pool)
    vmapped_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    step_state = jax.vmap(env.step_state, in_axes=(0, 0, None))
    views = jax.vmap(env.get_obs, in_axes=(0, None))

    def rollout(key: jax.Array) -> jax.Array:
        _, state = venv.reset(key, params)

        def body(carry, key):
            state, checksum = carry
            key_act, key_step = jax.random.split(key)
            actions = jax.random.randint(key_act, (num_envs, env.n_agents), 0, 3)
            if batching == "VecEnv":
                obs, state, _, _, _ = venv.step(key_step, state, actions, params)
            elif batching == "vmap":
                obs, state, _, _, _ = vmapped_step(jax.random.split(key_step, num_envs), state, actions, params)
            else:
                state, _, _ = step_state(state, actions, params)
                obs = views(state, params)
            return (state, checksum + obs.astype(jnp.uint32).sum()), None

        (_, checksum), _ = jax.lax.scan(body, (state, jnp.uint32(0)), jax.random.split(key, num_steps))
        return checksum

    return rollout
