"""Paper Figure 5: SociAPL novices learning from near-optimal and from imperfect experts, beside solo.

    python experiments/figure5.py --scale tiny|mini|small|paper [--num-seeds N] [--out-dir DIR]
                                  [--experts scripted|trained] [--experts-dir DIR]
                                  [--epsilon E] [--imperfect-update U]
                                  [--episodes N] [--seed S] [--resume] [--replot]
    python experiments/figure5.py --merge PART_DIR PART_DIR ... --out-dir DIR

Agent 0 is the novice with the auxiliary prediction loss (the scale's lr), agents 1 and 2
the experts. Three conditions that differ only in data, one compiled program:

* ``solo``        SOLO PPO + AUX PRED: the experts at presence 0;
* ``sociapl``     SociAPL beside near-optimal experts;
* ``sociapl_ie``  SociAPL beside imperfect experts (the paper's SociAPL-IE).

What "imperfect" means (the paper does not define it; **ours**):

* ``--experts scripted`` (default): the near-optimal experts are scripted oracles; the
  imperfect ones are the same oracles that, with probability ``--epsilon`` (default 0.5)
  per step, take a random move (left, right or forward) instead. At 0.5 three such
  oracles score about 9 per 250-step episode against the oracles' 25.6 (experiments/README.md
  has the measurement). ``epsilon`` is a data field, so all three conditions stay one program.
* ``--experts trained``: experts loaded seed-matched from an experts.py run folder; the
  near-optimal ones are its last checkpoint and keep learning at lr 1e-5 (paper 7.8); the
  imperfect ones are an earlier checkpoint of the same curriculum (``--imperfect-update``,
  default the last one kept at or before half its updates), kept frozen (lr 0) as the
  paper kept its imperfect experts (7.8).

Writes to the out dir (the run folder): ``figure5.png`` (novice return per condition, seeds
faded, mean bold, both experts' levels as lines), ``figure5.csv`` (one row per condition,
seed and update: ``condition, seed, update, episodes, env_steps, return`` = the novice's,
then ``expert_return`` = mean of the present experts', ``penalty, entropy, aux_loss``) and
``summary.json`` (the levels from the last 10% of updates, per seed, and the paper's claims
checked seed by seed). ``--merge`` pools parts run on disjoint seeds (experiments/parts.py).
"""

from __future__ import annotations

import json
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

FIGURE = "figure5"
DEFAULT_EPSILON = 0.5
LABELS = {
    "solo": "SOLO PPO + AUX PRED",
    "sociapl": "SociAPL, near-optimal experts",
    "sociapl_ie": "SociAPL, imperfect experts",
}
CONDITIONS = tuple(LABELS)


def imperfect_update(experts_dir: Path, requested: Optional[int]) -> int:
    """The experts.py checkpoint the imperfect experts load: ``requested`` if kept, else the
    last one kept at or before half the run's last update."""
    kept = runs.kept_checkpoints(experts_dir)
    if not kept:
        raise FileNotFoundError(f"--experts-dir {str(experts_dir)!r} holds no checkpoint")
    if requested is not None:
        if requested not in kept:
            raise ValueError(f"--imperfect-update={requested}: {str(experts_dir)!r} keeps checkpoints {kept}")
        return requested
    early = [u for u in kept if u <= kept[-1] // 2]
    if not early:
        raise ValueError(
            f"--experts-dir {str(experts_dir)!r} keeps no checkpoint at or before half its training (kept: {kept}); "
            "pass --imperfect-update"
        )
    return early[-1]


def condition_fields(experts: str, epsilon: float, update: Optional[int]) -> dict[str, str]:
    """Each condition's data fields: the experts' presence, and what makes them imperfect."""
    if experts == "scripted":
        imperfect = f"agents.1.epsilon={epsilon} agents.2.epsilon={epsilon}"
    else:
        imperfect = " ".join(f"agents.{a}.load_update={update} agents.{a}.lr=0" for a in (1, 2))
    return {
        "solo": "agents.1.presence=0 agents.2.presence=0",
        "sociapl": "agents.0.aux_target=next",
        "sociapl_ie": imperfect,
    }


def build_config(scale: scales.Scale, num_seeds: int, seed: int, run_dir: Path, experts: str,
                 experts_dir: Optional[Path], epsilon: float, update: Optional[int], progress: bool):
    """Figure 5's TrainConfig: a SociAPL novice + two experts, the three conditions as data."""
    from sociajax.training.config import AgentConfig

    if not 0.0 < epsilon <= 1.0:
        raise ValueError(f"--epsilon must be in (0, 1], got {epsilon!r}")
    novice = AgentConfig(role="learner", lr=scale.novice_lr, aux=True, aux_target="next")
    experts_seats = configs.expert_agents(experts, experts_dir, num_seeds, scale, seed)
    fields = condition_fields(experts, epsilon, update)
    conditions = tuple(f"{name}: {fields[name]}" for name in CONDITIONS)
    return configs.figure_config(scale, (novice, *experts_seats), conditions, seed, num_seeds, run_dir, progress)


def levels(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Each kind of expert's late return beside the novice (``expert_return``)."""
    return {"near_optimal": results.late_mean(rows, "sociapl", "expert_return"),
            "imperfect": results.late_mean(rows, "sociapl_ie", "expert_return")}


def claims(rows: list[dict[str, Any]], level: dict[str, float]) -> dict[str, Any]:
    """The paper's Figure 5 claims, seed by seed (seeds are matched across conditions)."""
    per_seed = {c: results.per_seed_late_means(rows, c) for c in CONDITIONS}
    solo = per_seed["solo"]
    above_solo = {c: sum(v > solo[s] for s, v in per_seed[c].items()) for c in ("sociapl", "sociapl_ie")}
    mean = {c: results.late_mean(rows, c) for c in CONDITIONS}
    return {
        "late_return_per_seed": per_seed,
        "seeds_above_solo": above_solo,
        "mean_above_solo": {c: mean[c] > mean["solo"] for c in ("sociapl", "sociapl_ie")},
        "imperfect_below_near_optimal": mean["sociapl_ie"] < mean["sociapl"],
        "seeds_above_own_experts": {
            "sociapl": sum(v > level["near_optimal"] for v in per_seed["sociapl"].values()),
            "sociapl_ie": sum(v > level["imperfect"] for v in per_seed["sociapl_ie"].values()),
        },
    }


def write_figure(out_dir: Path, summary: dict[str, Any]) -> tuple[Path, Path]:
    """Figure 5 from ``figure5.csv`` alone (the experts' levels are read from it too)."""
    csv_path = out_dir / "figure5.csv"
    rows = results.read_long_csv(csv_path)
    level = levels(rows)
    source = f" from {summary['experts_dir']}" if summary.get("experts_dir") else ""
    title = (f"Figure 5: SociAPL novice in GoalCycle-3 with {summary['experts']} experts{source}\n"
             f"imperfect: {summary['imperfect']}; scale {summary['scale']}, penalty {summary['penalty']}")
    png = figures.plot_seeds_and_means(
        rows, out_dir / "figure5.png", CONDITIONS, title, labels=LABELS,
        references={"near-optimal experts (late)": level["near_optimal"], "imperfect experts (late)": level["imperfect"]},
    )
    return png, csv_path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = cli.make_parser(__doc__)
    cli.add_experts_flags(parser)
    cli.add_merge_flag(parser)
    parser.add_argument("--epsilon", type=float, default=None,
                        help="scripted imperfect experts: chance per step of a random move (default 0.5)")
    parser.add_argument("--imperfect-update", type=int, default=None,
                        help="trained imperfect experts: the experts.py checkpoint to load, frozen (default: the last "
                             "kept at or before half its training)")
    args = parser.parse_args(argv)
    figure = FIGURE + ("-trained" if args.experts == "trained" else "")
    out_dir = cli.out_dir_of(args, figure)
    if args.replot:
        for path in write_figure(out_dir, json.loads((out_dir / "summary.json").read_text())):
            print(path)
        return 0
    cli.check_merge(args)
    if args.merge:
        rows, summary = parts.merge(args.merge, "figure5.csv", out_dir, recomputed=("levels", "claims"))
    else:
        rows, summary = train(args, figure, out_dir)
    level = levels(rows)
    summary.update(levels=level, claims=claims(rows, level))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    for path in write_figure(out_dir, summary):
        print(path)
    runs.print_late_returns(LABELS, summary)
    print(f"  near-optimal experts {level['near_optimal']:+.2f}, imperfect experts ({summary['imperfect']}) "
          f"{level['imperfect']:+.2f}")
    return 0


def train(args: Any, figure: str, out_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train the figure's conditions x seeds as one program; its rows (``figure5.csv``,
    written) and the summary's fields other than the levels and claims."""
    cli.check_seed(args.seed)
    if args.experts == "scripted" and args.imperfect_update is not None:
        raise ValueError("--imperfect-update is only for --experts trained")
    if args.experts == "trained" and args.epsilon is not None:
        raise ValueError("--epsilon is only for --experts scripted (trained imperfect experts are an earlier checkpoint)")
    epsilon = DEFAULT_EPSILON if args.epsilon is None else args.epsilon
    scale = cli.scale_of(args, figure)
    num_seeds = args.num_seeds or scale.num_seeds
    experts_dir = cli.experts_dir_of(args)
    update = imperfect_update(experts_dir, args.imperfect_update) if args.experts == "trained" and experts_dir else None
    config = build_config(scale, num_seeds, args.seed, out_dir, args.experts, experts_dir, epsilon, update,
                          args.progress)
    config = cli.with_run_loop(config, args)
    runs.check_one_program(config)

    start = time.perf_counter()
    result, compiled = runs.train_as_one_program(config, args.resume)
    rows = results.long_rows(out_dir / "metrics.csv", runs.NOVICE_COLUMNS)
    results.write_csv(rows, out_dir / "figure5.csv")
    imperfect = (f"oracles taking a random move with probability {epsilon}" if args.experts == "scripted"
                 else f"checkpoint at update {update}, frozen")
    summary = {
        "figure": "5",
        "scale": scale.name,
        "scale_measured": scale.measured,
        **configs.experts_summary(args.experts, experts_dir),
        "imperfect": imperfect,
        "epsilon": epsilon if args.experts == "scripted" else None,
        "imperfect_update": update,
        "penalty": scale.penalty,
        "conditions": {name: {"label": LABELS[name], "fields": f} for name, f in
                       condition_fields(args.experts, epsilon, update).items()},
        **runs.run_summary(scale, config, CONDITIONS, result, compiled, start, rows),
    }
    return rows, summary


if __name__ == "__main__":
    sys.exit(cli.run_or_exit(main))
