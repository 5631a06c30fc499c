"""Main job until the trainer lands: a scripted Goal Cycle episode as a GIF, plus env speed.

    python experiments/scripted_goal_cycle.py [--out outputs] [--num-envs 1024]

Agents: 0 an oracle expert (knows the cycle), 1 an explorer expert (finds it by trial),
2 a random distractor. Their colours in each other's views show prestige: blue after
rewards, red after penalties.
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

import sociajax
from sociajax.agents import make_policy
from sociajax.eval import record_episode, rollout_throughput, scripted_returns
from sociajax.viz import frames_with_views, save_gif


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

    speed = rollout_throughput("GoalCycle-3", args.num_envs, args.num_steps, seed=args.seed)
    print(
        f"GoalCycle-3 random rollout, {args.num_envs} envs: {speed['env_steps_per_s']:,.0f} env-steps/s "
        f"({speed['agent_steps_per_s']:,.0f} agent-steps/s, 3 views each), compile {speed['compile_s']:.1f}s"
    )


if __name__ == "__main__":
    main()
