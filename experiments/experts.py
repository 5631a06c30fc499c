"""Paper Figure 12 (appendix 7.5): RL experts in Goal Cycle 3 trained with a penalty curriculum.

    python experiments/experts.py --scale tiny|mini|small|paper [--num-seeds N] [--out-dir DIR]
                                  [--learners 1|2|3] [--env WORLD] [--episodes N] [--resume] [--replot]
    python experiments/experts.py --merge PART_DIR PART_DIR ... --out-dir DIR

Two conditions in one compiled program (the penalty schedule is data):

* ``curriculum``: penalty -0.5 for the first quarter of the episode budget, -1.0 for the
  second, then the target -1.5 (paper: 81,920 episodes at 0.5, then 1.0; the last stage and
  the stage lengths as fractions of the budget are ours; at paper scale the switches fall at
  81,920 and 163,840 episodes of 327,680).
* ``direct``: -1.5 from the start, the control the paper says fails.

Condition 0 is the curriculum because ``load_from`` loads condition 0 of a run: figure4.py
(``--experts trained --experts-dir DIR``) takes seed ``i``'s experts from seed ``i`` here.

``--env`` trains experts native to another world (``GoalCycle-4``, ``FourRooms``, ``Maze``)
for figure6.py's ``--native-experts trained``; its out dir is ``experts-<WORLD>-<scale>``.
A world without a penalty (Four Rooms, Maze: one goal) has no curriculum: its one
condition is ``direct``.

Who learns: ``--learners 1`` (default) trains one agent alone per run, as Figure 12's
caption describes ("an agent trained for 81920 episodes"), at a third of the cost of three;
both expert seats of figure4.py then start from that one network (and diverge as they keep
learning at lr 1e-5). ``--learners 3`` trains three learners together in one world, as the
paper's compute section describes its runs; figure4.py then loads two different ones.

Writes to the out dir (the run folder, see ``cli``): ``figure12.png``, ``figure12.csv``
(one row per condition, seed and update: ``condition, seed, update, episodes, env_steps,
return`` = mean over the learners, then ``penalty, entropy, aux_loss``) and
``summary.json`` with the experts' returns evaluated at the final penalty beside the
scripted oracle's. ``--merge`` pools parts run on disjoint seeds (experiments/parts.py); a
merged folder is a record of the figure, not a run folder: figure4.py's ``--experts-dir``
still takes a part (its checkpoints).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from sociajax.training import results
from sociajax.viz import figures

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script

import cli  # noqa: E402
import configs  # noqa: E402
import parts  # noqa: E402
import runs  # noqa: E402
import scales  # noqa: E402

FIGURE = "experts"
DEFAULT_ENV = "GoalCycle-3"
CONDITIONS = ("curriculum", "direct")
LABELS = {"curriculum": "curriculum -0.5 -> -1.0 -> -1.5", "direct": "direct at -1.5"}
CURRICULUM_VALUES = (-0.5, -1.0, -1.5)
SWITCH_FRACTIONS = (0.25, 0.5)  # of the episode budget, where each later stage begins


def curriculum_schedule(episodes: int, num_envs: int, final_penalty: float = -1.5) -> str:
    """The curriculum as a schedule string: stages begin at :data:`SWITCH_FRACTIONS` of
    ``episodes``, rounded to whole updates of ``num_envs`` episodes (a stage is in force
    for whole updates), each stage at least one update long."""
    values = CURRICULUM_VALUES[:-1] + (final_penalty,)
    updates = max(1, -(-episodes // num_envs))
    if updates < len(values):
        raise ValueError(
            f"--episodes={episodes}: the curriculum's {len(values)} stages need at least {len(values)} updates "
            f"of {num_envs} episodes, got {updates}"
        )
    starts, previous = [0], 0
    for fraction in SWITCH_FRACTIONS:
        update = max(previous + 1, round(fraction * updates))
        starts.append(update)
        previous = update
    if starts[-1] >= updates:
        raise ValueError(f"--episodes={episodes}: too few updates ({updates}) for the curriculum's stages")
    return ",".join([f"{values[0]}"] + [f"{v}@{s * num_envs}" for v, s in zip(values[1:], starts[1:])])


def conditions_of(env_id: str) -> tuple[str, ...]:
    """The conditions trained in ``env_id``: the curriculum and its control where the world
    has a penalty, ``direct`` alone where it has none."""
    return CONDITIONS if configs.has_penalty(env_id) else ("direct",)


def out_dir_of(args: Any) -> Path:
    """``experts-<scale>`` in Goal Cycle 3 (what figure4.py and the rest load), else
    ``experts-<WORLD>-<scale>`` (what figure6.py's native trained experts load)."""
    env = args.env or DEFAULT_ENV
    return cli.out_dir_of(args, FIGURE if env == DEFAULT_ENV else f"{FIGURE}-{env}")


def build_config(scale: scales.Scale, num_seeds: int, seed: int, run_dir: Path, learners: int, progress: bool,
                 env_id: str = DEFAULT_ENV):
    """The experts' TrainConfig: ``learners`` learners (paper network, aux PRED, the scale's
    lr) in ``env_id``, the conditions (:func:`conditions_of`) as data."""
    from sociajax.training.config import AgentConfig

    if learners not in (1, 2, 3):
        raise ValueError(f"--learners must be 1, 2 or 3, got {learners!r}")
    agent = AgentConfig(role="learner", lr=scale.novice_lr, aux=True, aux_target="next")
    if configs.has_penalty(env_id):
        schedule = curriculum_schedule(scale.episodes, scale.ppo.num_envs, scale.penalty)
        conditions = (f"curriculum: env.penalty={schedule}", f"direct: env.penalty={scale.penalty}")
    else:
        conditions = ("direct:",)
    # Every checkpoint is kept: an earlier one of the curriculum is figure5.py's imperfect expert.
    keep = scale.num_updates // (scale.updates_per_chunk * scale.checkpoint_every) + 2
    return configs.figure_config(scale, (agent,) * learners, conditions, seed, num_seeds, run_dir, progress, keep, env_id)


def evaluate_experts(run_dir: Path, penalty: float, episodes: int, seed: int) -> dict[str, Any]:
    """The trained learners' mean return per condition and seed over ``episodes`` fresh
    episodes at ``penalty`` (every condition at the final one, whatever its schedule; worlds
    with a penalty), and the world's scripted expert's (oracle, or seeker in Four Rooms and
    Maze) in the same world with as many agents."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import sociajax
    from sociajax.agents.scripted import make_policy
    from sociajax.eval.learned import episode_returns, evaluation_setup, world_experts
    from sociajax.eval.scripted import scripted_returns
    from sociajax.training.checkpoint import load_run
    from sociajax.training.config import shape_overrides
    from sociajax.training.trainer import make_train

    run = load_run(run_dir)
    config = run.config
    setup, env, env_params, params = evaluation_setup(run)
    world_has_penalty = hasattr(env_params, "penalty")
    if world_has_penalty:
        env_params = env_params.replace(penalty=jnp.full_like(env_params.penalty, penalty))
    key_learned, key_oracle = jax.random.split(jax.random.PRNGKey(seed))
    returns = episode_returns(setup, env, env_params, params, episodes, key_learned)  # [R, E, A]
    learners = list(setup.population.learner_agents)
    per_run = np.nanmean(returns[:, :, learners], axis=(1, 2))  # [R]
    conditions = make_train(config).run_conditions()
    seeds = make_train(config).run_seeds()
    per_condition = {}
    for name in dict.fromkeys(conditions):
        values = {int(s): float(v) for s, v, c in zip(seeds, per_run, conditions) if c == name}
        per_condition[name] = {"mean": float(np.mean(list(values.values()))), "per_seed": values}
    overrides = {"penalty": penalty} if world_has_penalty else {}
    oracle_env, oracle_params = sociajax.make(
        config.env.env_id, n_agents=len(config.agents), max_steps=int(env_params.max_steps[0]),
        **shape_overrides(config.env), **overrides,
    )
    policy = world_experts(config.env.env_id)[0]
    oracle = np.asarray(
        scripted_returns(oracle_env, oracle_params, [make_policy(policy)] * len(config.agents), key_oracle, num_envs=episodes)
    )
    return {
        "env": config.env.env_id,
        "penalty": penalty if world_has_penalty else None,
        "scripted_policy": policy,
        "episodes_per_seed": episodes,
        "experts": per_condition,
        "oracle": float(oracle.mean()),
        "updates": int(run.meta["update"]),
    }


def write_figure(out_dir: Path, summary: dict[str, Any]) -> tuple[Path, Path]:
    """Figure 12 from ``figure12.csv`` and the scripted expert's level in ``summary``."""
    csv_path = out_dir / "figure12.csv"
    rows = results.read_long_csv(csv_path)
    evaluation = summary.get("evaluation", {})
    oracle = evaluation.get("oracle", math.nan)
    env_id = summary.get("env", DEFAULT_ENV)
    curriculum = summary["curriculum"]
    starts = [int(part.split("@")[1]) for part in curriculum.split(",")[1:]] if curriculum else []
    learners = f"{summary['learners']} learner{'s' if summary['learners'] > 1 else ''} per run"
    if curriculum:
        title = (f"Figure 12: experts in {env_id} ({learners}), scale {summary['scale']}\n"
                 f"curriculum -0.5 -> -1.0 -> -1.5, switching at episodes {', '.join(map(str, starts))}")
        reference = f"scripted oracle at penalty {summary['final_penalty']}"
    else:
        title = f"experts native to {env_id} ({learners}), scale {summary['scale']}"
        reference = f"scripted {evaluation.get('scripted_policy', 'seeker')}"
    png = figures.plot_seeds_and_means(
        rows, out_dir / "figure12.png", summary["conditions"], title,
        references={reference: oracle}, labels=LABELS if curriculum else {"direct": f"learners in {env_id}"}, vlines=starts,
    )
    return png, csv_path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = cli.make_parser(__doc__)
    cli.add_merge_flag(parser)
    parser.add_argument("--learners", type=int, choices=(1, 2, 3), default=None,
                        help="learners per world (default 1: an agent alone)")
    parser.add_argument("--env", default=None,
                        help="world the experts learn in (default GoalCycle-3; GoalCycle-4, FourRooms, Maze: figure6.py's native experts)")
    args = parser.parse_args(argv)
    out_dir = out_dir_of(args)
    if args.replot:
        summary = json.loads((out_dir / "summary.json").read_text())
        png, csv_path = write_figure(out_dir, summary)
        print(f"redrew {png} from {csv_path}")
        return 0
    cli.check_merge(args)
    if args.merge:
        rows, summary = parts.merge(args.merge, "figure12.csv", out_dir, recomputed=RECOMPUTED)
        summary["evaluation"] = merge_evaluations(args.merge)
    else:
        rows, summary = train(args, out_dir)
    conditions = summary["conditions"]
    summary["late_return_per_seed"] = {c: results.per_seed_late_means(rows, c) for c in conditions}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    png, csv_path = write_figure(out_dir, summary)
    print(f"{png}\n{csv_path}\n{out_dir / 'summary.json'}")
    evaluation = summary["evaluation"]
    at = f"at penalty {evaluation['penalty']} " if evaluation["penalty"] is not None else ""
    print(f"evaluated {at}({evaluation['episodes_per_seed']} episodes per seed): "
          f"scripted {evaluation['scripted_policy']} {evaluation['oracle']:+.2f}")
    for name in conditions:
        seeds = " ".join(f"{v:+.2f}" for v in evaluation["experts"][name]["per_seed"].values())
        print(f"  {name:<10} mean {evaluation['experts'][name]['mean']:+.2f}  per seed {seeds}")
    return 0


RECOMPUTED = ("late_return_per_seed", "evaluation")  # read from the rows, or pooled over the parts


def train(args: Any, out_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train the conditions x seeds as one program and evaluate the experts; the rows
    (``figure12.csv``, written) and the summary but its per-seed late returns."""
    cli.check_seed(args.seed)
    learners, env_id = args.learners or 1, args.env or DEFAULT_ENV
    scale = cli.scale_of(args, FIGURE)
    num_seeds = args.num_seeds or scale.num_seeds
    try:
        conditions = conditions_of(env_id)
    except ValueError as err:
        raise ValueError(f"--env: {err}") from None
    config = build_config(scale, num_seeds, args.seed, out_dir, learners, args.progress, env_id)
    config = cli.with_run_loop(config, args)

    from sociajax.training.run import train as train_run

    compiled_before = runs.compiled_programs()
    start = time.perf_counter()
    result = train_run(config, resume=args.resume)
    compiled = runs.compiled_programs() - compiled_before
    rows = results.long_rows(
        out_dir / "metrics.csv",
        {
            "return": ("return", range(learners)),
            "penalty": ("penalty", (0,)),
            "entropy": ("entropy", range(learners)),
            "aux_loss": ("aux_loss", range(learners)),
        },
    )
    results.write_csv(rows, out_dir / "figure12.csv")
    summary = {
        "figure": "12 (appendix 7.5)",
        "scale": scale.name,
        "scale_measured": scale.measured,
        "learners": learners,
        "env": env_id,
        "conditions": list(conditions),
        "curriculum": curriculum_schedule(scale.episodes, scale.ppo.num_envs, scale.penalty) if len(conditions) > 1 else None,
        "final_penalty": scale.penalty if len(conditions) > 1 else None,
        **runs.run_summary(scale, config, conditions, result, compiled, start, rows),
        "evaluation": evaluate_experts(out_dir, scale.penalty, scale.eval_episodes, args.seed + 1_000),
    }
    return rows, summary


def merge_evaluations(part_dirs: Sequence[Path]) -> dict[str, Any]:
    """The parts' evaluations as one: each part evaluated its own seeds, so the per-seed
    values pool and every mean is over all seeds, each seed weighing the same (the
    oracle's too: each part played it on fresh layouts of its own)."""
    evaluations = [json.loads((Path(d) / "summary.json").read_text())["evaluation"] for d in part_dirs]
    first = evaluations[0]
    for part, evaluation in zip(part_dirs[1:], evaluations[1:]):
        for key in ("env", "penalty", "scripted_policy", "episodes_per_seed", "updates"):
            if evaluation.get(key) != first.get(key):
                raise ValueError(f"--merge parts {str(part_dirs[0])!r} and {str(part)!r} were evaluated apart: "
                                 f"evaluation {key!r} is {first.get(key)!r} there and {evaluation.get(key)!r} here")
    experts = {}
    for name in first["experts"]:
        per_seed = {str(s): v for e in evaluations for s, v in e["experts"][name]["per_seed"].items()}
        experts[name] = {"mean": sum(per_seed.values()) / len(per_seed), "per_seed": per_seed}
    weights = [len(next(iter(e["experts"].values()))["per_seed"]) for e in evaluations]
    oracle = sum(w * e["oracle"] for w, e in zip(weights, evaluations)) / sum(weights)
    return {**first, "experts": experts, "oracle": oracle}


if __name__ == "__main__":
    sys.exit(cli.run_or_exit(main))
