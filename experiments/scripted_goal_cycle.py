"""Main job until the trainer lands: a scripted Goal Cycle episode as a GIF, plus env speed.

    python experiments/scripted_goal_cycle.py [--out outputs] [--num-envs 1024]

Agents: 0 an oracle expert (knows the cycle), 1 an explorer expert (finds it by trial),
2 a random distractor. Their colours in each other's views show prestige: blue after
rewards, red after penalties.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import sociajax
from sociajax.agents import make_policy
from sociajax.eval import record_episode, scripted_returns
from sociajax.viz import frames_with_views, save_gif


def env_throughput(env_id: str, num_envs: int, num_steps: int, seed: int = 0) -> dict[str, float]:
    """Random-action VecEnv rollout: compile seconds apart from steady-state steps/s."""
    env, params = sociajax.make(env_id)
    venv = sociajax.VecEnv(env, num_envs)

    @jax.jit
    def rollout(key):
        _, state = venv.reset(key, params)

        def body(carry, key):
            state, checksum = carry
            key_act, key_step = jax.random.split(key)
            actions = jax.random.randint(key_act, (num_envs, env.n_agents), 0, 3)
            obs, state, _, _, _ = venv.step(key_step, state, actions, params)
            # Consume the observations so XLA cannot skip rendering them.
            return (state, checksum + obs.astype(jnp.uint32).sum()), None

        (_, checksum), _ = jax.lax.scan(body, (state, jnp.uint32(0)), jax.random.split(key, num_steps))
        return checksum

    start = time.perf_counter()
    compiled = rollout.lower(jax.random.PRNGKey(seed)).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(jax.random.PRNGKey(seed)))  # warm-up
    start = time.perf_counter()
    jax.block_until_ready(compiled(jax.random.PRNGKey(seed + 1)))
    run_s = time.perf_counter() - start
    env_steps = num_envs * num_steps / run_s
    return {"compile_s": compile_s, "env_steps_per_s": env_steps, "agent_steps_per_s": env_steps * env.n_agents}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="outputs", help="folder for the GIF")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-envs", type=int, default=1024, help="batch size for the speed test")
    parser.add_argument("--num-steps", type=int, default=250, help="steps per speed-test rollout")
    args = parser.parse_args()

    env, params = sociajax.make("GoalCycle-3")
    policies = [make_policy("oracle"), make_policy("explorer"), make_policy("random")]
    names = ["oracle expert", "explorer expert", "random distractor"]
    print(f"{env} on {jax.devices()[0].platform}, jax {jax.__version__}")

    episode = record_episode(env, params, policies, jax.random.PRNGKey(args.seed))
    gif = save_gif(
        os.path.join(args.out, "goal_cycle_scripted.gif"),
        frames_with_views(episode["frames"], episode["views"]),
        fps=10,
    )
    print(f"episode GIF: {gif} ({len(episode['frames'])} frames)")
    for name, total in zip(names, episode["rewards"].sum(0)):
        print(f"  {name:18s} return {total:7.2f}")

    returns = np.asarray(scripted_returns(env, params, policies, jax.random.PRNGKey(args.seed + 1), num_envs=256))
    print("mean return over 256 episodes:")
    for name, mean, std in zip(names, returns.mean(0), returns.std(0)):
        print(f"  {name:18s} {mean:7.2f} +- {std:.2f}")

    speed = env_throughput("GoalCycle-3", args.num_envs, args.num_steps, args.seed)
    print(
        f"GoalCycle-3 random rollout, {args.num_envs} envs: {speed['env_steps_per_s']:,.0f} env-steps/s "
        f"({speed['agent_steps_per_s']:,.0f} agent-steps/s, 3 views each), compile {speed['compile_s']:.1f}s"
    )


if __name__ == "__main__":
    main()
