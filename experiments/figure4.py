"""Paper Figure 4 (and Figure 11, IL over training): a novice in Goal Cycle 3 under five conditions.

    python experiments/figure4.py --scale tiny|mini|small|paper [--num-seeds N] [--out-dir DIR]
                                  [--experts scripted|trained] [--experts-dir DIR]
                                  [--episodes N] [--seed S] [--resume] [--replot]
    python experiments/figure4.py --merge PART_DIR PART_DIR ... --out-dir DIR

Agent 0 is the novice (the scale's lr, paper 1e-4), agents 1 and 2 the experts. The five
conditions differ only in data, so every condition and seed is one compiled program (the
script checks that training compiled at most one):

* ``solo_pred``      SOLO PPO + AUX PRED: the experts at presence 0;
* ``social_vanilla`` SOCIAL PPO (VANILLA): no auxiliary loss;
* ``social_rec``     SOCIAL PPO + AUX REC: the loss reconstructs the current view;
* ``sociapl``        SOCIAL PPO + AUX PRED (SociAPL): it predicts the next view;
* ``il``             IL: behaviour cloning of expert 1's actions from its views (7.4).

``--experts scripted`` (default): scripted oracles. ``--experts trained``: learners loaded
seed-matched from an experts.py run folder (``--experts-dir``; seed ``i`` of this run gets
the experts of seed ``i`` there, from its condition 0, the curriculum), which keep learning
at lr 1e-5 as in the paper (7.8).

Writes to the out dir (the run folder): ``figure4.png`` (novice return per condition, seeds
faded, mean bold, the experts' and IL's levels as lines), ``figure11.png`` (IL's return over
training), ``figure4.csv`` (one row per condition, seed and update: ``condition, seed,
update, episodes, env_steps, return`` = the novice's, then ``expert_return`` = mean of the
present experts', ``penalty, entropy, aux_loss, bc_loss``) and ``summary.json`` (levels read
from the last 10% of updates, per seed, and the paper's claims checked seed by seed). ``--merge`` pools parts run on disjoint seeds (experiments/parts.py).
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

FIGURE = "figure4"
CONDITIONS: dict[str, str] = {
    "solo_pred": "agents.1.presence=0 agents.2.presence=0",
    "social_vanilla": "agents.0.aux=false",
    "social_rec": "agents.0.aux_target=current",
    "sociapl": "agents.0.aux_target=next",
    "il": "agents.0.objective=bc agents.0.imitate=1",
}
LABELS = {
    "solo_pred": "SOLO PPO + AUX PRED",
    "social_vanilla": "SOCIAL PPO (VANILLA)",
    "social_rec": "SOCIAL PPO + AUX REC",
    "sociapl": "SOCIAL PPO + AUX PRED (SociAPL)",
    "il": "IL (behaviour cloning)",
}
CURVES = ("solo_pred", "social_vanilla", "social_rec", "sociapl")  # IL is a level here, a curve in Figure 11
SOCIAL = ("social_vanilla", "social_rec", "sociapl", "il")  # conditions with the experts present


def build_config(scale: scales.Scale, num_seeds: int, seed: int, run_dir: Path, experts: str,
                 experts_dir: Optional[Path], progress: bool):
    """Figure 4's TrainConfig: novice + two experts, the five conditions as data."""
    from sociajax.training.config import AgentConfig

    novice = AgentConfig(role="learner", lr=scale.novice_lr, aux=True, aux_target="next")
    expert_agents = configs.expert_agents(experts, experts_dir, num_seeds, scale, seed)
    conditions = tuple(f"{name}: {fields}" for name, fields in CONDITIONS.items())
    return configs.figure_config(scale, (novice, *expert_agents), conditions, seed, num_seeds, run_dir, progress)


def levels(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The experts' level (their late return beside the novice in the social conditions)
    and IL's (the IL novice's late return)."""
    expert = [results.late_mean(rows, c, "expert_return") for c in SOCIAL]
    expert = [v for v in expert if not math.isnan(v)]
    return {"experts": float(sum(expert) / len(expert)) if expert else math.nan, "il": results.late_mean(rows, "il")}


def claims(rows: list[dict[str, Any]], level: dict[str, float]) -> dict[str, Any]:
    """The paper's Figure 4 claims, read seed by seed from the late returns."""
    per_seed = {c: results.per_seed_late_means(rows, c) for c in CONDITIONS}
    above = lambda c, x: sum(v > x for v in per_seed[c].values())  # noqa: E731
    return {
        "late_return_per_seed": per_seed,
        "seeds_above_1": {c: above(c, 1.0) for c in CONDITIONS},
        "seeds_above_experts": {c: above(c, level["experts"]) for c in CONDITIONS},
        "pred_above_rec": results.late_mean(rows, "sociapl") > results.late_mean(rows, "social_rec"),
    }


def write_figures(out_dir: Path, summary: dict[str, Any]) -> tuple[Path, Path, Path]:
    """Figures 4 and 11 from ``figure4.csv`` alone (the levels are read from it too)."""
    csv_path = out_dir / "figure4.csv"
    rows = results.read_long_csv(csv_path)
    level = levels(rows)
    which = f"{summary['experts']} experts" + (f" from {summary['experts_dir']}" if summary.get("experts_dir") else "")
    scale = f"scale {summary['scale']}, penalty {summary['penalty']}"
    expert_label = f"{summary['experts']} experts (late)"
    fig4 = figures.plot_seeds_and_means(
        rows, out_dir / "figure4.png", CURVES, f"Figure 4: novice in GoalCycle-3 with {which}\n{scale}",
        references={expert_label: level["experts"], "IL (late)": level["il"]}, labels=LABELS,
    )
    fig11 = figures.plot_seeds_and_means(
        rows, out_dir / "figure11.png", ("il",), f"Figure 11: imitation learning with {which}\n{scale}",
        references={expert_label: level["experts"]}, labels=LABELS,
    )
    return fig4, fig11, csv_path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = cli.make_parser(__doc__)
    cli.add_experts_flags(parser)
    cli.add_merge_flag(parser)
    args = parser.parse_args(argv)
    out_dir = cli.out_dir_of(args, FIGURE + ("-trained" if args.experts == "trained" else ""))
    if args.replot:
        summary = json.loads((out_dir / "summary.json").read_text())
        for path in write_figures(out_dir, summary):
            print(path)
        return 0
    cli.check_merge(args)
    if args.merge:
        rows, summary = parts.merge(args.merge, "figure4.csv", out_dir, recomputed=("levels", "claims"))
    else:
        rows, summary = train(args, out_dir)
    level = levels(rows)
    summary.update(levels=level, claims=claims(rows, level))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    for path in write_figures(out_dir, summary):
        print(path)
    runs.print_late_returns(LABELS, summary)
    print(f"  experts' level {level['experts']:+.2f}, IL's level {level['il']:+.2f}")
    return 0


def train(args: Any, out_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train the figure's conditions x seeds as one program; its rows (``figure4.csv``,
    written) and the summary's fields other than the levels and claims."""
    cli.check_seed(args.seed)
    scale = cli.scale_of(args, FIGURE + ("-trained" if args.experts == "trained" else ""))
    num_seeds = args.num_seeds or scale.num_seeds
    experts_dir = cli.experts_dir_of(args)
    config = build_config(scale, num_seeds, args.seed, out_dir, args.experts, experts_dir, args.progress)
    config = cli.with_run_loop(config, args)
    runs.check_one_program(config)

    start = time.perf_counter()
    result, compiled = runs.train_as_one_program(config, args.resume)
    rows = results.long_rows(
        out_dir / "metrics.csv",
        {**runs.NOVICE_COLUMNS, "bc_loss": ("bc_loss", (0,))},
    )
    results.write_csv(rows, out_dir / "figure4.csv")
    summary = {
        "figure": "4 (and 11)",
        "scale": scale.name,
        "scale_measured": scale.measured,
        **configs.experts_summary(args.experts, experts_dir),
        "penalty": scale.penalty,
        "conditions": {name: {"label": LABELS[name], "fields": CONDITIONS[name]} for name in CONDITIONS},
        **runs.run_summary(scale, config, CONDITIONS, result, compiled, start, rows),
    }
    return rows, summary


if __name__ == "__main__":
    sys.exit(cli.run_or_exit(main))
