"""Paper Figure 9 (appendix 7.2): the no-penalty ablation, compared in zero-shot transfer.

    python experiments/figure9.py --scale tiny|mini|small|paper [--num-seeds N] [--out-dir DIR]
                                  [--experts scripted|trained] [--experts-dir DIR]
                                  [--eval-episodes N] [--episodes N] [--seed S] [--resume] [--replot]
    python experiments/figure9.py --merge PART_DIR PART_DIR ... --out-dir DIR

Trains a SociAPL novice (agent 0, auxiliary prediction loss) beside two experts in
GoalCycle-3 under two conditions that differ only in the wrong-goal penalty, one program:

* ``penalty_0``:   penalty 0 (visiting goals in any order pays);
* ``penalty_1.5``: the paper's -1.5.

Then each seed's novice, untouched, is agent 0 of fresh GoalCycle-4 episodes (penalty -1.5,
250 steps; at ``--scale mini`` 7x7 and 64 steps) beside two scripted oracles and alone. The paper's claim: without a penalty the
novice does not come to rely on the experts, so the experts make less difference to it in
the new world. ``reliance`` = return beside the experts minus return alone, per seed.

Writes to the out dir (the run folder): ``figure9.png`` (a panel per setting, bars of seed
means with 95% t-intervals, each seed an x), ``figure9.csv`` (one row per condition, seed
and setting: ``condition, seed, env, partners, episodes, return``) and ``summary.json``
(late training returns, the transfer bars, reliance per seed, and the claim checked).
``--merge`` pools parts run on disjoint seeds (experiments/parts.py).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from sociajax.training import results

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script

import cli  # noqa: E402
import configs  # noqa: E402
import parts  # noqa: E402
import figure6  # noqa: E402
import runs  # noqa: E402
import scales  # noqa: E402

FIGURE = "figure9"
CONDITIONS = {"penalty_0": "env.penalty=0", "penalty_1.5": "env.penalty=-1.5"}
LABELS = {"penalty_0": "trained at penalty 0", "penalty_1.5": "trained at penalty -1.5"}
AGENTS = {name: (name, 0) for name in CONDITIONS}  # bar -> (condition, agent): the novices
SETTINGS = {"GoalCycle-4 with experts": ("GoalCycle-4", "oracle,oracle"), "GoalCycle-4 alone": ("GoalCycle-4", "none")}


def build_config(scale: scales.Scale, num_seeds: int, seed: int, run_dir: Path, experts: str,
                 experts_dir: Optional[Path], progress: bool):
    """Figure 9's TrainConfig: SociAPL novice + two experts, the penalty as data."""
    from sociajax.training.config import AgentConfig

    novice = AgentConfig(role="learner", lr=scale.novice_lr, aux=True, aux_target="next")
    conditions = tuple(f"{name}: {fields}" for name, fields in CONDITIONS.items())
    return configs.figure_config(scale, (novice, *configs.expert_agents(experts, experts_dir, num_seeds, scale, seed)), conditions,
                                 seed, num_seeds, run_dir, progress)


def reliance(rows: Sequence[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """Per condition and seed: return beside the experts minus return alone (GoalCycle-4)."""
    with_experts, alone = SETTINGS
    value = {(r["condition"], r["seed"], r["env"]): r["return"] for r in rows}
    return {c: {s: value[(c, s, with_experts)] - value[(c, s, alone)]
                for s in sorted({r["seed"] for r in rows if r["condition"] == c})} for c in CONDITIONS}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = cli.make_parser(__doc__)
    cli.add_experts_flags(parser)
    cli.add_merge_flag(parser)
    parser.add_argument("--eval-episodes", type=cli.positive_int, default=None,
                        help="transfer episodes per seed and setting (default: the scale's)")
    args = parser.parse_args(argv)
    figure = FIGURE + ("-trained" if args.experts == "trained" else "")
    out_dir = cli.out_dir_of(args, figure)
    title = "Figure 9: SociAPL novices trained with and without the penalty, zero-shot in GoalCycle-4"
    if args.replot:
        print(figure6.write_figure(out_dir, title, FIGURE, LABELS, SETTINGS))
        return 0
    cli.check_merge(args)
    if args.merge:
        rows, summary = parts.merge(args.merge, "figure9.csv", out_dir, recomputed=RECOMPUTED,
                                    text_columns=("condition", "env", "partners"))
    else:
        rows, summary = train_and_transfer(args, figure, out_dir)
    per_seed = reliance(rows)
    mean_reliance = {c: float(np.mean(list(v.values()))) for c, v in per_seed.items()}
    summary.update(
        transfer=figure6.bar_stats(rows),
        reliance_per_seed=per_seed,
        reliance=mean_reliance,
        claims={"relies_less_without_penalty": mean_reliance["penalty_0"] < mean_reliance["penalty_1.5"]},
    )
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(figure6.write_figure(out_dir, title, FIGURE, LABELS, SETTINGS))
    runs.print_late_returns(LABELS, summary)
    print("reliance on the experts in GoalCycle-4 (with experts minus alone, mean over seeds): "
          + "  ".join(f"{LABELS[c]} {v:+.2f}" for c, v in mean_reliance.items()))
    return 0


RECOMPUTED = ("transfer", "reliance_per_seed", "reliance", "claims")  # read from the rows


def train_and_transfer(args: Any, figure: str, out_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train both penalties x seeds as one program, then put each novice into GoalCycle-4;
    the transfer rows (``figure9.csv``, written) and the summary's fields but those read
    from them (:data:`RECOMPUTED`)."""
    cli.check_seed(args.seed)
    scale = cli.scale_of(args, figure)
    num_seeds = args.num_seeds or scale.num_seeds
    config = build_config(scale, num_seeds, args.seed, out_dir, args.experts, cli.experts_dir_of(args), args.progress)
    config = cli.with_run_loop(config, args)
    runs.check_one_program(config)

    from sociajax.training.checkpoint import load_run

    start = time.perf_counter()
    result, compiled = runs.train_as_one_program(config, args.resume)
    episodes = args.eval_episodes or scale.eval_episodes
    rows = figure6.transfer_returns(load_run(out_dir), episodes, args.seed + 1_000, AGENTS, SETTINGS, scale)
    results.write_csv(rows, out_dir / "figure9.csv")
    summary = {
        "figure": "9 (appendix 7.2)",
        "scale": scale.name,
        "experts": args.experts,
        "conditions": {name: {"label": LABELS[name], "fields": f} for name, f in CONDITIONS.items()},
        "settings": {s: {"env": w, "partners": p} for s, (w, p) in SETTINGS.items()},
        "eval_episodes_per_seed": episodes,
        **runs.run_summary(scale, config, CONDITIONS, result, compiled, start,
                           results.long_rows(out_dir / "metrics.csv", {"return": ("return", (0,))})),
    }
    return rows, summary


if __name__ == "__main__":
    sys.exit(cli.run_or_exit(main))
