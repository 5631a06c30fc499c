"""Paper Figure 7: a SociAPL novice evaluated through training, and solo/social mixing.

    python experiments/figure7.py --scale tiny|mini|small|paper [--num-seeds N] [--out-dir DIR]
                                  [--experts scripted|trained] [--experts-dir DIR]
                                  [--switch-fraction F] [--eval-episodes N]
                                  [--episodes N] [--seed S] [--resume] [--replot]
    python experiments/figure7.py --merge PART_DIR PART_DIR ... --out-dir DIR

Trains a SociAPL novice (agent 0, auxiliary prediction loss) beside two experts in
GoalCycle-3 under three conditions that differ only in the experts' presence schedule, one
compiled program:

* ``social``: the experts in every episode all along (the paper's orange line);
* ``mixed``:  the same until ``--switch-fraction`` of the episode budget (default 0.5; the
  paper switched after about 500k episodes), then the experts in 25% of episodes, both
  together, and the novice alone in 75% (green);
* ``solo``:   the experts never there (the paper's agents trained only solo).

Every checkpoint is kept (about ten over the run), and each is then evaluated, parameters
untouched, with the novice as agent 0 of fresh episodes (``--eval-episodes`` per seed, default
the scale's) in three settings, each at the world's defaults (penalty -1.5, 250 steps; at ``--scale mini`` its 7x7 worlds and
64-step episodes):

* ``3-goal with experts``: GoalCycle-3 beside two scripted oracles;
* ``3-goal solo``: GoalCycle-3 alone;
* ``4-goal with experts``: GoalCycle-4 beside two scripted oracles.

The experts of the evaluations are scripted oracles whatever ``--experts`` trained beside
the novice (trained experts keep learning at lr 1e-5, as in Figure 4).

Writes to the out dir (the run folder): ``figure7.png`` (a panel per setting: each condition's
seeds faded and mean bold against episodes trained, the switch as a dotted line),
``figure7.csv`` (one row per condition, seed, checkpoint and setting: ``condition, seed,
update, episodes, env_steps, setting, return``) and ``summary.json`` (the paper's claims read
from the curves). ``--merge`` pools parts run on disjoint seeds (experiments/parts.py).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from sociajax.training import results
from sociajax.viz import figures

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script

import cli  # noqa: E402
import configs  # noqa: E402
import parts  # noqa: E402
import runs  # noqa: E402
import scales  # noqa: E402

FIGURE = "figure7"
MIXED_PRESENCE = 0.25  # after the switch: 25% social episodes, 75% solo
EVAL_POINTS = 10  # checkpoints over a run, about
LABELS = {"social": "100% social", "mixed": "switched to 75% solo / 25% social", "solo": "solo only"}
CONDITIONS = tuple(LABELS)
# setting -> (world, partners of the evaluated novice)
SETTINGS: dict[str, tuple[str, str]] = {
    "3-goal with experts": ("GoalCycle-3", "oracle,oracle"),
    "3-goal solo": ("GoalCycle-3", "none"),
    "4-goal with experts": ("GoalCycle-4", "oracle,oracle"),
}


def switch_episode(scale: scales.Scale, fraction: float) -> int:
    """The episode at which ``mixed`` switches: ``fraction`` of the budget, on a whole update."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"--switch-fraction must be in (0, 1), got {fraction!r}")
    update = round(fraction * scale.num_updates)
    if not 0 < update < scale.num_updates:
        raise ValueError(f"--switch-fraction={fraction}: {scale.num_updates} updates leave no update on one side of it")
    return update * scale.ppo.num_envs


def condition_fields(switch: int) -> dict[str, str]:
    mixed = f"1,{MIXED_PRESENCE}@{switch}"
    return {
        "social": "agents.1.presence=1 agents.2.presence=1",
        "mixed": f"agents.1.presence={mixed} agents.2.presence={mixed}",
        "solo": "agents.1.presence=0 agents.2.presence=0",
    }


def build_config(scale: scales.Scale, num_seeds: int, seed: int, run_dir: Path, experts: str,
                 experts_dir: Optional[Path], switch: int, progress: bool):
    """Figure 7's TrainConfig: SociAPL novice + two experts, the presence schedules as data,
    a checkpoint about every tenth of the run, all kept."""
    from sociajax.training.config import AgentConfig

    novice = AgentConfig(role="learner", lr=scale.novice_lr, aux=True, aux_target="next")
    fields = condition_fields(switch)
    conditions = tuple(f"{name}: {fields[name]}" for name in CONDITIONS)
    chunks = -(-scale.num_updates // scale.updates_per_chunk)
    scale = dataclasses.replace(scale, checkpoint_every=max(1, chunks // EVAL_POINTS))
    keep = chunks // scale.checkpoint_every + 2
    return configs.figure_config(scale, (novice, *configs.expert_agents(experts, experts_dir, num_seeds, scale, seed)), conditions,
                                 seed, num_seeds, run_dir, progress, keep)


def evaluate_checkpoints(run_dir: Path, episodes: int, seed: int,
                         scale: Optional[scales.Scale] = None) -> list[dict[str, Any]]:
    """One row per condition, seed, kept checkpoint and setting: the novice's mean return
    over ``episodes`` fresh episodes (the same layouts at every checkpoint)."""
    import jax

    from sociajax.eval.learned import episode_returns, evaluation_setup
    from sociajax.training.checkpoint import load_run
    from sociajax.training.trainer import make_train

    rows = []
    for update in runs.kept_checkpoints(run_dir):
        run = load_run(run_dir, update)
        trainer = make_train(run.config)
        conditions, seeds = trainer.run_conditions(), trainer.run_seeds()
        env_steps = np.asarray(run.meta["env_steps"])
        for s, (setting, (world, partners)) in enumerate(SETTINGS.items()):
            key = jax.random.fold_in(jax.random.PRNGKey(seed), s)
            shape = scales.world_shape(scale, world)
            returns = episode_returns(*evaluation_setup(run, world, 0, partners, **shape), episodes, key)[:, :, 0]
            for r in range(trainer.num_runs):
                rows.append({
                    "condition": conditions[r], "seed": int(seeds[r]), "update": update,
                    "episodes": update * run.config.ppo.num_envs, "env_steps": int(env_steps[r]),
                    "setting": setting, "return": float(np.mean(returns[r])),
                })
    return rows


def claims(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The paper's Figure 7 claims from the seed means at each checkpoint: orange's solo
    return rises and then falls; green keeps it and beats the solo-only agents there; green
    stays comparable to orange with experts."""
    def curve(condition: str, setting: str) -> tuple[list[int], np.ndarray]:
        picked = [r for r in rows if r["condition"] == condition and r["setting"] == setting]
        updates = sorted({r["update"] for r in picked})
        return updates, np.array([np.mean([r["return"] for r in picked if r["update"] == u]) for u in updates])

    final = {s: {c: float(curve(c, s)[1][-1]) for c in CONDITIONS} for s in SETTINGS}
    updates, social_solo = curve("social", "3-goal solo")
    peak = int(np.argmax(social_solo))
    drop = float(social_solo[peak] - social_solo[-1])
    # a fall, not noise: after an earlier peak, by more than the seeds' spread at the end
    spread = float(np.std([r["return"] for r in rows if r["condition"] == "social" and r["setting"] == "3-goal solo"
                           and r["update"] == updates[-1]]))
    return {
        "final": final,
        "social_solo_peak": float(social_solo[peak]),
        "social_solo_peak_update": updates[peak],
        "social_solo_drop_after_peak": drop,
        "social_solo_falls_after_peak": bool(peak < len(updates) - 1 and drop > spread),
        "mixed_keeps_solo_skill": final["3-goal solo"]["mixed"] >= final["3-goal solo"]["social"],
        "mixed_beats_solo_only_alone": final["3-goal solo"]["mixed"] > final["3-goal solo"]["solo"],
        "mixed_minus_social_with_experts": {
            s: final[s]["mixed"] - final[s]["social"] for s in ("3-goal with experts", "4-goal with experts")
        },
    }


def write_figure(out_dir: Path, summary: dict[str, Any]) -> Path:
    """Figure 7 from ``figure7.csv`` alone (and the switch in ``summary``)."""
    rows = results.read_long_csv(out_dir / "figure7.csv", text_columns=("condition", "setting"))
    fig, axes = figures.figure_panels(len(SETTINGS), 5.2, 4.3, dpi=110)
    for ax, setting in zip(axes, SETTINGS):
        picked = [r for r in rows if r["setting"] == setting]
        figures.draw_seeds_and_means(ax, picked, CONDITIONS, setting, labels=LABELS, smooth=1,
                                     vlines=(summary["switch_episode"],))
    fig.suptitle(f"Figure 7: SociAPL novice evaluated through training ({summary['experts']} experts in training, "
                 f"scripted oracles in evaluation), scale {summary['scale']}; dotted: the switch", fontsize=9)
    return figures.save_figure(fig, out_dir / "figure7.png")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = cli.make_parser(__doc__)
    cli.add_experts_flags(parser)
    cli.add_merge_flag(parser)
    parser.add_argument("--switch-fraction", type=float, default=0.5,
                        help="share of the budget after which 'mixed' trains 75%% solo (default 0.5)")
    parser.add_argument("--eval-episodes", type=cli.positive_int, default=None,
                        help="episodes per seed, checkpoint and setting (default: the scale's)")
    args = parser.parse_args(argv)
    figure = FIGURE + ("-trained" if args.experts == "trained" else "")
    out_dir = cli.out_dir_of(args, figure)
    if args.replot:
        print(write_figure(out_dir, json.loads((out_dir / "summary.json").read_text())))
        return 0
    cli.check_merge(args)
    if args.merge:
        rows, summary = parts.merge(args.merge, "figure7.csv", out_dir, recomputed=("claims",),
                                    text_columns=("condition", "setting"))
    else:
        rows, summary = train_and_evaluate(args, figure, out_dir)
    summary["claims"] = claims(rows)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(write_figure(out_dir, summary))
    print(f"{out_dir / 'figure7.csv'}\nthe novice at its last checkpoint, mean over seeds "
          f"({summary['eval_episodes_per_seed']} episodes per seed):")
    for setting, values in summary["claims"]["final"].items():
        print(f"  {setting:<22} " + "  ".join(f"{c} {v:+.2f}" for c, v in values.items()))
    return 0


def train_and_evaluate(args: Any, figure: str, out_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train the figure's conditions x seeds as one program and evaluate every kept
    checkpoint; the rows (``figure7.csv``, written) and the summary's fields but the claims."""
    cli.check_seed(args.seed)
    scale = cli.scale_of(args, figure)
    num_seeds = args.num_seeds or scale.num_seeds
    switch = switch_episode(scale, args.switch_fraction)
    config = build_config(scale, num_seeds, args.seed, out_dir, args.experts, cli.experts_dir_of(args), switch,
                          args.progress)
    config = cli.with_run_loop(config, args)
    runs.check_one_program(config)

    start = time.perf_counter()
    result, compiled = runs.train_as_one_program(config, args.resume)
    episodes = args.eval_episodes or scale.eval_episodes
    eval_start = time.perf_counter()
    rows = evaluate_checkpoints(out_dir, episodes, args.seed + 1_000, scale)
    results.write_csv(rows, out_dir / "figure7.csv")
    summary = {
        "figure": "7",
        "scale": scale.name,
        "experts": args.experts,
        "experts_dir": args.experts_dir,
        "switch_episode": switch,
        "mixed_presence_after_switch": MIXED_PRESENCE,
        "conditions": {name: {"label": LABELS[name], "fields": f} for name, f in condition_fields(switch).items()},
        "settings": {s: {"env": w, "partners": p} for s, (w, p) in SETTINGS.items()},
        "eval_episodes_per_seed": episodes,
        "checkpoints": runs.kept_checkpoints(out_dir),
        **runs.run_summary(scale, config, CONDITIONS, result, compiled, start,
                           results.long_rows(out_dir / "metrics.csv", {"return": ("return", (0,))})),
        "eval_wall_s": round(time.perf_counter() - eval_start, 1),
    }
    return rows, summary


if __name__ == "__main__":
    sys.exit(cli.run_or_exit(main))
