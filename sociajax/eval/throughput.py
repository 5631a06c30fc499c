"""Random-action rollout timing: the one measurement the main job and the benchmark share."""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp

from sociajax.envs.registry import make
from sociajax.envs.vector import VecEnv


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
    if batching not in ("VecEnv", "vmap"):
        raise ValueError(f"batching must be 'VecEnv' or 'vmap', got batching={batching!r}")
    env, params = make(env_id, occlusion=occlusion)
    venv = VecEnv(env, num_envs)
    vmapped_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def rollout(key: jax.Array) -> jax.Array:
        _, state = venv.reset(key, params)

        def body(carry, key):
            state, checksum = carry
            key_act, key_step = jax.random.split(key)
            actions = jax.random.randint(key_act, (num_envs, env.n_agents), 0, 3)
            if batching == "VecEnv":
                obs, state, _, _, _ = venv.step(key_step, state, actions, params)
            else:
                obs, state, _, _, _ = vmapped_step(jax.random.split(key_step, num_envs), state, actions, params)
            return (state, checksum + obs.astype(jnp.uint32).sum()), None

        (_, checksum), _ = jax.lax.scan(body, (state, jnp.uint32(0)), jax.random.split(key, num_steps))
        return checksum

    key = jax.random.PRNGKey(seed)
    start = time.perf_counter()
    compiled = jax.jit(rollout).lower(key).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(key))  # warm-up
    run_s = float("inf")
    for repeat in range(2):
        start = time.perf_counter()
        jax.block_until_ready(compiled(jax.random.fold_in(key, repeat + 1)))
        run_s = min(run_s, time.perf_counter() - start)
    env_steps = num_envs * num_steps / run_s
    return {
        "env": env_id,
        "batching": batching,
        "occlusion": occlusion,
        "num_envs": num_envs,
        "num_steps": num_steps,
        "n_agents": env.n_agents,
        "compile_s": compile_s,
        "run_s": run_s,
        "env_steps_per_s": env_steps,
        "agent_steps_per_s": env_steps * env.n_agents,
        "obs_shape": list(env.obs_shape[1:]),
    }
