"""``python -m sociajax.evaluate --run-dir DIR [--env FourRooms] [--episodes N] [--gif PATH]``

Loads a run folder's last checkpoint, plays ``episodes`` fresh episodes per seed (and per
condition, for a grid), prints each condition's agents' mean returns with 95% confidence
intervals, writes them to ``DIR/eval/<world>.json`` and one recorded episode (seed 0) to
``DIR/eval/<world>.gif``, where ``<world>`` is the env id, followed by ``-<size>x<size>``,
``-w<n_walls>`` and ``-t<max_steps>`` when those flags are given. With ``--env`` another
world, the run's first learner is tested zero-shot beside that world's scripted experts
(``--partner none`` for solo; ``--partner seeker,random,random`` for an expert with two
distractors; ``--partner frozen:RUN_DIR[:AGENT]`` for a trained agent of another run, kept
frozen and matched by seed index). In the training world, ``--agent``, ``--partner``,
``--num-partners``, ``--size``, ``--n-walls`` or ``--max-steps`` replace its population the
same way (the first learner beside the world's experts, at the world's default penalty):
only the run's own world, unchanged, replays its population under its own schedules.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Optional, Sequence


@dataclasses.dataclass(frozen=True)
class EvalArgs:
    """Evaluate a trained run."""

    run_dir: str
    env: Optional[str] = None  # world to test in (default: the training world and population)
    episodes: int = 128  # fresh episodes per seed
    gif: Optional[str] = None  # default: RUN_DIR/eval/<world>.gif
    no_gif: bool = False
    greedy: bool = False  # most likely action instead of sampling
    agent: Optional[int] = None  # transfer: which learned agent of the run (default: first learner)
    # transfer: partner policy (oracle/explorer/seeker/random/none), or a comma-separated list whose
    # entries are policies or trained agents of another run kept frozen (frozen:RUN_DIR[:AGENT])
    partner: Optional[str] = None
    num_partners: Optional[int] = None
    # the evaluation world's shape (default: the run's own in its world id, the world's default in another)
    size: Optional[int] = None
    n_walls: Optional[int] = None
    max_steps: Optional[int] = None  # episode length of the evaluation world (default as the shape)
    seed: int = 0  # evaluation randomness (layouts, sampled actions)


def evaluate(args: EvalArgs) -> dict:
    """Run the evaluation ``args`` describes; returns what is written to the JSON file."""
    import jax
    import numpy as np

    from sociajax.eval.learned import episode_returns, evaluation_setup, record_episode_frames, summarize
    from sociajax.training.checkpoint import load_run
    from sociajax.viz.episodes import frames_with_views, save_gif

    if args.episodes < 1:
        raise ValueError(f"episodes must be a positive integer, got {args.episodes!r}")
    run = load_run(args.run_dir)
    setup, env, env_params, params = evaluation_setup(
        run, args.env, args.agent, args.partner, args.num_partners, size=args.size, n_walls=args.n_walls,
        max_steps=args.max_steps,
    )
    # A world's own name, with its shape when one is asked for (GoalCycle-4-7x7-w0).
    world = setup.env_id + (f"-{env.height}x{env.width}" if args.size is not None else "") + (
        f"-w{args.n_walls}" if args.n_walls is not None else ""
    ) + (f"-t{args.max_steps}" if args.max_steps is not None else "")
    key_returns, key_gif = jax.random.split(jax.random.PRNGKey(args.seed))
    returns = episode_returns(setup, env, env_params, params, args.episodes, key_returns, args.greedy)
    from sociajax.training.trainer import make_train

    conditions = make_train(run.config).run_conditions()
    report = {
        "run_dir": str(args.run_dir),
        "env": setup.env_id,
        "world": {"size": env.height, "n_walls": getattr(env, "n_walls", None), "max_steps": int(env_params.max_steps.max())},
        "updates": run.meta["update"],
        "env_steps": run.meta["env_steps"],
        "episodes_per_seed": args.episodes,
        "num_seeds": run.config.num_seeds,
        "conditions": list(dict.fromkeys(conditions)),
        "greedy": args.greedy,
        "agents": summarize(returns, setup.roles, conditions),
    }
    out_dir = Path(args.run_dir) / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    if not args.no_gif:
        first_seed = jax.tree.map(lambda x: x[0], params)
        first_params = jax.tree.map(lambda x: x[0], env_params)
        first_epsilon = setup.run_epsilon(len(conditions))[0]
        episode = record_episode_frames(setup, env, first_params, first_seed, key_gif, args.greedy, epsilon=first_epsilon)
        gif = args.gif or str(out_dir / f"{world}.gif")
        report["gif"] = save_gif(gif, frames_with_views(episode["frames"], episode["views"]))
        report["gif_episode_return"] = np.asarray(episode["rewards"]).sum(0).tolist()
    (out_dir / f"{world}.json").write_text(json.dumps(report, indent=2))
    return report


def _prog() -> str:
    """The command as the user typed it: the console script or ``python -m``."""
    return "sociajax-evaluate" if Path(sys.argv[0]).name == "sociajax-evaluate" else "python -m sociajax.evaluate"


def main(argv: Optional[Sequence[str]] = None) -> int:
    import tyro

    args = tyro.cli(EvalArgs, args=argv, prog=_prog())
    try:
        report = evaluate(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{report['env']}: {report['episodes_per_seed']} episodes x {report['num_seeds']} seed(s), "
          f"after {report['updates']} updates")
    for row in report["agents"]:
        label = "" if row["condition"] == "base" else f"[{row['condition']}] "
        print(f"  {label}agent {row['agent']} {row['role']:<24} return {row['mean_return']:+7.3f} "
              f"± {row['ci95']:.3f} (95% CI over {row['ci_over']}); positive in {row['positive_share']:.0%}")
    if "gif" in report:
        print(f"GIF: {report['gif']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
