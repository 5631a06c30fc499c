"""Paper Figures 6 and 10: zero-shot transfer of Goal Cycle 3 agents to new worlds with new experts.

    python experiments/figure6.py --scale tiny|small|paper [--experts scripted|trained]
                                  [--figure4-dir DIR] [--out-dir DIR] [--episodes N] [--seed S]
                                  [--replot]

Trains nothing: it loads the last checkpoint of a figure4.py run folder (by default the one
figure4.py writes for ``--scale`` and ``--experts``, or ``--figure4-dir``) and puts each
trained agent, without further training, as agent 0 into

* ``GoalCycle-4`` beside two scripted oracles (the world's experts),
* ``FourRooms`` beside one scripted goal seeker,
* ``Maze`` beside one scripted goal seeker,
* ``Maze`` beside the seeker and two distractors taking random moves (Figure 10, app. 7.3),

each at the world's defaults (GoalCycle-4: penalty -1.5, 250 steps). The agents are Figure
4's novices of ``solo_pred``, ``sociapl`` and ``il`` (every seed), and, when that run's
experts were trained (learners), its 3-goal experts themselves (agent 1 of ``sociapl``).
Scripted experts are not transferable agents, so with them that bar is left out.

The experts in the new worlds are scripted (they act from the world's state). The paper
used experts native to each world; trained native experts (RL, frozen) are not offered yet.

Writes to ``--out-dir`` (default: the figure4 folder): ``figure6.png`` (a panel per world:
bars of the seed means with 95% t-intervals over seeds, each seed an x), ``figure6.csv``
(one row per agent, seed and world: ``condition, seed, env, partners, episodes, return``
= mean return over the episodes) and ``figure6.json`` (means, intervals, and the paper's
claims checked).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `common` beside this script

import common  # noqa: E402

# panel -> (world, partners): the paper's "with experts" transfer tests (Figure 6) and the
# Maze test with two distractors taking random moves beside the expert (Figure 10, app. 7.3)
WORLDS: dict[str, tuple[str, str]] = {
    "GoalCycle-4": ("GoalCycle-4", "oracle,oracle"),
    "FourRooms": ("FourRooms", "seeker"),
    "Maze": ("Maze", "seeker"),
    "Maze + 2 distractors": ("Maze", "seeker,random,random"),
}
# bar -> (figure4 condition, agent evaluated)
AGENTS: dict[str, tuple[str, int]] = {
    "solo_pred": ("solo_pred", 0),
    "sociapl": ("sociapl", 0),
    "il": ("il", 0),
    "experts": ("sociapl", 1),
}
LABELS = {"solo_pred": "SOLO + PRED", "sociapl": "SociAPL", "il": "IL", "experts": "3-goal experts"}


def transfer_returns(run: Any, episodes: int, seed: int, agents: Mapping[str, tuple[str, int]] = AGENTS,
                     worlds: Mapping[str, tuple[str, str]] = WORLDS) -> list[dict[str, Any]]:
    """One row per bar of ``agents`` (bar -> (condition, agent)), seed and panel of
    ``worlds`` (panel -> (world, partners)): the agent's mean return over ``episodes`` fresh
    episodes there as agent 0 beside the partners, parameters untouched."""
    import jax

    from sociajax.eval.learned import episode_returns, evaluation_setup
    from sociajax.training.trainer import make_train

    trainer = make_train(run.config)
    conditions, seeds = trainer.run_conditions(), trainer.run_seeds()
    learned = trainer.population.learned_agents
    missing = sorted({c for c, _ in agents.values()} - set(conditions))
    if missing:
        raise ValueError(f"the figure4 run has no condition {missing[0]!r} (conditions {sorted(set(conditions))})")
    rows = []
    for w, (panel, (world, partners)) in enumerate(worlds.items()):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), w)  # every agent meets the same layouts
        returns = {  # agent -> [R, E]: one evaluation of that agent of every run
            agent: episode_returns(*evaluation_setup(run, world, agent, partners), episodes, key)[:, :, 0]
            for agent in sorted({a for _, a in agents.values() if a in learned})  # scripted experts don't transfer
        }
        for bar, (condition, agent) in agents.items():
            if agent not in returns:
                continue
            for r in (i for i, c in enumerate(conditions) if c == condition):
                rows.append({"condition": bar, "seed": int(seeds[r]), "env": panel, "partners": partners,
                             "episodes": episodes, "return": float(np.mean(returns[agent][r]))})
    return rows


def bar_stats(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per world and bar: the seed means, their mean and its 95% t-interval half-width."""
    from sociajax.viz.curves import mean_ci

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for world in dict.fromkeys(r["env"] for r in rows):
        out[world] = {}
        for bar in dict.fromkeys(r["condition"] for r in rows if r["env"] == world):
            values = np.array([r["return"] for r in rows if r["env"] == world and r["condition"] == bar])
            mean, half = mean_ci(values)
            out[world][bar] = {"mean": float(mean), "ci95": float(half), "per_seed": values.tolist()}
    return out


def claims(stats: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """The paper's Figure 6 claims, per world, read from the seed means."""
    out: dict[str, Any] = {"sociapl_best": {}, "il_below_experts": {}}
    for world, bars in stats.items():
        others = [b for b in bars if b != "sociapl"]
        out["sociapl_best"][world] = all(bars["sociapl"]["mean"] > bars[b]["mean"] for b in others)
        if "experts" in bars:
            out["il_below_experts"][world] = bars["il"]["mean"] < bars["experts"]["mean"]
    return out


def write_figure(out_dir: Path, title: str, name: str = "figure6", labels: Mapping[str, str] = LABELS,
                 worlds: Mapping[str, tuple[str, str]] = WORLDS) -> Path:
    """``name``.png from ``name``.csv alone: a panel per world, a bar per agent."""
    import matplotlib.pyplot as plt

    stats = bar_stats(common.read_long_csv(out_dir / f"{name}.csv", text_columns=("condition", "env", "partners")))
    fig, axes = common.figure_panels(len(stats), 3.2, 4.0)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (world, bars) in zip(axes, stats.items()):
        for i, (bar, s) in enumerate(bars.items()):
            colour = colours[list(labels).index(bar) % len(colours)]
            ax.bar(i, s["mean"], yerr=s["ci95"], color=colour, alpha=0.6, capsize=4)
            ax.scatter(np.full(len(s["per_seed"]), i), s["per_seed"], marker="x", color="black", zorder=3, s=22)
        ax.set_xticks(range(len(bars)), [labels[b] for b in bars], rotation=25, ha="right", fontsize=8)
        ax.axhline(0, color="gray", linewidth=0.8)
        ax.set_title(f"{world}: beside {worlds[world][1]}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("return per episode (seed means, 95% CI)")
    fig.suptitle(title, fontsize=9)
    return common.save_figure(fig, out_dir / f"{name}.png")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = common.figure4_reader_parser(__doc__)
    parser.add_argument("--episodes", type=common.positive_int, default=None,
                        help="episodes per agent, seed and world (default: the scale's eval_episodes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes")
    parser.add_argument("--replot", action="store_true", help="redraw the figure from the out dir's CSV")
    args = parser.parse_args(argv)
    source = common.figure4_dir_of(args)
    out_dir = Path(args.out_dir) if args.out_dir else source
    title_of = lambda s: (f"Figure 6: zero-shot transfer of {s['source']}'s agents ({s['experts']} 3-goal experts), "  # noqa: E731
                          f"{s['episodes_per_seed']} episodes per seed")
    if args.replot:
        print(write_figure(out_dir, title_of(json.loads((out_dir / "figure6.json").read_text()))))
        return 0
    common.check_seed(args.seed)
    if not (source / "config.json").exists():
        raise FileNotFoundError(
            f"{source} holds no figure4.py run (no config.json); run experiments/figure4.py --scale {args.scale} first"
        )
    from sociajax.training.checkpoint import load_run

    episodes = args.episodes or common.get_scale(args.scale, "figure4").eval_episodes
    start = time.perf_counter()
    run = load_run(source)
    rows = transfer_returns(run, episodes, args.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    common.write_csv(rows, out_dir / "figure6.csv")
    stats = bar_stats(rows)
    summary = {
        "figure": "6",
        "source": str(source),
        "source_update": int(run.meta["update"]),
        "experts": "scripted" if run.config.agents[1].role == "scripted" else "trained",
        "worlds": {panel: {"env": world, "partners": partners} for panel, (world, partners) in WORLDS.items()},
        "episodes_per_seed": episodes,
        "eval_seed": args.seed,
        "wall_s": round(time.perf_counter() - start, 1),
        "stats": stats,
        "claims": claims(stats),
    }
    (out_dir / "figure6.json").write_text(json.dumps(summary, indent=2))
    print(write_figure(out_dir, title_of(summary)))
    print(f"{out_dir / 'figure6.csv'}\nzero-shot return, mean over seeds ± 95% CI ({episodes} episodes per seed):")
    for world, bars in stats.items():
        print(f"  {world:<12} " + "  ".join(f"{LABELS[b]} {s['mean']:+.2f}±{s['ci95']:.2f}" for b, s in bars.items()))
    return 0


if __name__ == "__main__":
    sys.exit(common.run_or_exit(main))
