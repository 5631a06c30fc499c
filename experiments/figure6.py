"""Paper Figures 6 and 10: zero-shot transfer of Goal Cycle 3 agents to new worlds with new experts.

    python experiments/figure6.py --scale tiny|mini|small|paper [--experts scripted|trained]
                                  [--figure4-dir DIR] [--out-dir DIR] [--episodes N] [--seed S]
                                  [--native-experts scripted|trained] [--native-experts-dir WORLD=DIR]
                                  [--no-gifs] [--replot]
    python experiments/figure6.py --merge PART_DIR PART_DIR ... --out-dir DIR

Trains nothing: it loads the last checkpoint of a figure4.py run folder (by default the one
figure4.py writes for ``--scale`` and ``--experts``, or ``--figure4-dir``) and puts each
trained agent, without further training, as agent 0 into

* ``GoalCycle-4`` beside two experts,
* ``FourRooms`` beside one expert,
* ``Maze`` beside one expert,
* ``Maze`` beside the expert and two distractors taking random moves (Figure 10, app. 7.3),

each at the world's defaults (GoalCycle-4: penalty -1.5, 250 steps), or at ``--scale mini`` in
the scale's smaller worlds with 64-step episodes. The agents are Figure
4's novices of ``solo_pred``, ``sociapl`` and ``il`` (every seed), and, when that run's
experts were trained (learners), its 3-goal experts themselves (agent 1 of ``sociapl``).
Scripted experts are not transferable agents, so with them that bar is left out.

The experts in the new worlds are native to them, as in the paper (``--native-experts``):

* ``scripted`` (default): the world's scripted expert, acting from the world's state: two
  oracles in GoalCycle-4, the shortest-path goal seeker in Four Rooms and Maze;
* ``trained``: RL experts trained in that world and kept frozen, the last checkpoint of
  ``experts.py --env WORLD --scale S`` (its default folder ``runs/figures/experts-WORLD-S``,
  or ``--native-experts-dir WORLD=DIR``, repeatable), condition 0 (the curriculum in
  GoalCycle-4), matched by seed index; both GoalCycle-4 seats take the same network.

Also written: ``figure6_FourRooms.gif`` and ``figure6_Maze.gif``, one episode of SociAPL
seed 0 beside the native expert (``--no-gifs`` to skip).

Writes to ``--out-dir`` (default: the figure4 folder): ``figure6.png`` (a panel per world:
bars of the seed means with 95% t-intervals over seeds, each seed an x), ``figure6.csv``
(one row per agent, seed and world: ``condition, seed, env, partners, episodes, return``
= mean return over the episodes) and ``figure6.json`` (means, intervals, and the paper's
claims checked). ``--merge`` pools the figure6.csv of parts (figure4.py runs on disjoint
seeds, each transferred here) into ``--out-dir`` (experiments/parts.py).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from sociajax.training import results
from sociajax.viz import figures

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script

import cli  # noqa: E402
import parts  # noqa: E402
import scales  # noqa: E402

# panel -> (world, partners): the paper's "with experts" transfer tests (Figure 6) and the
# Maze test with two distractors taking random moves beside the expert (Figure 10, app. 7.3)
# with the scripted native experts; native_partners swaps in trained ones
WORLDS: dict[str, tuple[str, str]] = {
    "GoalCycle-4": ("GoalCycle-4", "oracle,oracle"),
    "FourRooms": ("FourRooms", "seeker"),
    "Maze": ("Maze", "seeker"),
    "Maze + 2 distractors": ("Maze", "seeker,random,random"),
}
NATIVE_EXPERTS = ("scripted", "trained")
GIF_PANELS = ("FourRooms", "Maze")  # SociAPL following an expert, recorded
# bar -> (figure4 condition, agent evaluated)
AGENTS: dict[str, tuple[str, int]] = {
    "solo_pred": ("solo_pred", 0),
    "sociapl": ("sociapl", 0),
    "il": ("il", 0),
    "experts": ("sociapl", 1),
}
LABELS = {"solo_pred": "SOLO + PRED", "sociapl": "SociAPL", "il": "IL", "experts": "3-goal experts"}


def native_dirs(scale: str, overrides: Sequence[str], worlds: Mapping[str, tuple[str, str]] = WORLDS) -> dict[str, Path]:
    """Each world's trained-experts folder: ``experts.py --env WORLD``'s default for
    ``scale``, or a ``WORLD=DIR`` of ``overrides``; every folder checked up front."""
    names = dict.fromkeys(world for world, _ in worlds.values())
    dirs = {world: Path(f"runs/figures/experts-{world}-{scale}") for world in names}
    for item in overrides:
        world, eq, folder = item.partition("=")
        if not eq or not folder or world not in dirs:
            raise ValueError(f"--native-experts-dir {item!r} is not WORLD=DIR with WORLD one of {list(dirs)}")
        dirs[world] = Path(folder)
    for world, folder in dirs.items():
        if not (folder / "config.json").exists():
            raise FileNotFoundError(
                f"--native-experts trained: {str(folder)!r} holds no experts.py run for {world} (no config.json); "
                f"run `python experiments/experts.py --env {world} --scale {scale}` or pass --native-experts-dir {world}=DIR"
            )
    return dirs


def native_partners(worlds: Mapping[str, tuple[str, str]], native: str,
                    dirs: Optional[Mapping[str, Path]] = None) -> dict[str, tuple[str, str]]:
    """``worlds`` (scripted experts) as they are (``native='scripted'``), or with each of a
    world's scripted experts (``world_experts``: oracle, seeker) replaced by the frozen
    trained agent of ``dirs[world]``; other partners (random movers) stay."""
    from sociajax.eval.learned import FROZEN_PREFIX, world_experts

    if native not in NATIVE_EXPERTS:
        raise ValueError(f"--native-experts must be one of {NATIVE_EXPERTS}, got {native!r}")
    if native == "scripted":
        return dict(worlds)
    out = {}
    for panel, (world, partners) in worlds.items():
        scripted = world_experts(world)[0]
        trained = f"{FROZEN_PREFIX}{dirs[world]}"
        out[panel] = (world, ",".join(trained if p == scripted else p for p in partners.split(",")))
    return out


def describe_partners(partners: str) -> str:
    """Short words for a partner list: ``oracle x2``, ``trained expert + random x2``."""
    from sociajax.eval.learned import FROZEN_PREFIX

    if partners == "none":
        return "no one"
    names = ["trained expert" if p.startswith(FROZEN_PREFIX) else p for p in partners.split(",")]
    return " + ".join(f"{n} x{names.count(n)}" if names.count(n) > 1 else n for n in dict.fromkeys(names))


def record_gifs(run: Any, out_dir: Path, worlds: Mapping[str, tuple[str, str]], seed: int,
                condition: str = "sociapl", panels: Sequence[str] = GIF_PANELS,
                scale: Optional[scales.Scale] = None) -> dict[str, dict[str, Any]]:
    """One episode per panel of ``panels``: ``condition``'s seed-0 novice (agent 0) beside
    the panel's partners, drawn with every agent's view, as ``figure6_<panel>.gif``; none
    when the run has no such condition."""
    import jax

    from sociajax.eval.learned import evaluation_setup, record_episode_frames
    from sociajax.training.trainer import make_train
    from sociajax.viz.episodes import frames_with_views, save_gif

    conditions = make_train(run.config).run_conditions()
    if condition not in conditions:
        return {}
    run_index = conditions.index(condition)
    pick = lambda x: x[run_index]  # noqa: E731
    out = {}
    for panel in panels:
        world, partners = worlds[panel]
        setup, env, env_params, params = evaluation_setup(run, world, 0, partners, **scales.world_shape(scale, world))
        episode = record_episode_frames(setup, env, jax.tree.map(pick, env_params), jax.tree.map(pick, params),
                                        jax.random.PRNGKey(seed))
        path = save_gif(out_dir / f"figure6_{panel.replace(' ', '_')}.gif",
                        frames_with_views(episode["frames"], episode["views"]))
        returns = np.asarray(episode["rewards"]).sum(0)
        out[panel] = {"gif": path, "steps": int(len(episode["rewards"])), "returns": returns.tolist()}
    return out


def check_scale_of_run(scale: scales.Scale, config: Any) -> None:
    """Refuse a ``--scale`` whose world is not the one the run trained in: the transfer
    worlds are scaled with the training world, so a mini run read at another scale would be
    tested in worlds of the wrong size."""
    from sociajax.training.config import shape_overrides

    trained = {**shape_overrides(config.env), "max_steps": config.env.max_steps}
    expected = {"size": None, "n_walls": None, "max_steps": scale.max_steps, **scale.world(config.env.env_id)}
    if {k: trained.get(k) for k in expected} != expected:
        raise ValueError(
            f"--scale {scale.name}: its world {expected} is not the run's ({trained}); pass the --scale the "
            "figure4 run was trained at"
        )


def transfer_returns(run: Any, episodes: int, seed: int, agents: Mapping[str, tuple[str, int]] = AGENTS,
                     worlds: Mapping[str, tuple[str, str]] = WORLDS,
                     scale: Optional[scales.Scale] = None) -> list[dict[str, Any]]:
    """One row per bar of ``agents`` (bar -> (condition, agent)), seed and panel of
    ``worlds`` (panel -> (world, partners)): the agent's mean return over ``episodes`` fresh
    episodes there as agent 0 beside the partners, parameters untouched, and
    ``expert_return``, the first partner's (the expert's) mean return in the same episodes
    (NaN alone): what following it could be worth."""
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
        returns = {  # agent -> [R, E, 1 + partners]: one evaluation of that agent of every run
            agent: episode_returns(
                *evaluation_setup(run, world, agent, partners, **scales.world_shape(scale, world)), episodes, key
            )
            for agent in sorted({a for _, a in agents.values() if a in learned})  # scripted experts don't transfer
        }
        for bar, (condition, agent) in agents.items():
            if agent not in returns:
                continue
            for r in (i for i, c in enumerate(conditions) if c == condition):
                played = returns[agent][r]  # [E, 1 + partners]
                expert = float(np.nanmean(played[:, 1])) if played.shape[1] > 1 else float("nan")
                rows.append({"condition": bar, "seed": int(seeds[r]), "env": panel, "partners": partners,
                             "episodes": episodes, "return": float(np.mean(played[:, 0])), "expert_return": expert})
    return rows


def bar_stats(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per world and bar: the seed means, their mean and its 95% t-interval half-width
    (``None`` for one seed, which has no interval)."""
    from sociajax.viz.curves import mean_ci

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for world in dict.fromkeys(r["env"] for r in rows):
        out[world] = {}
        for bar in dict.fromkeys(r["condition"] for r in rows if r["env"] == world):
            values = np.array([r["return"] for r in rows if r["env"] == world and r["condition"] == bar])
            mean, half = mean_ci(values)
            ci95 = float(half) if len(values) > 1 else None
            out[world][bar] = {"mean": float(mean), "ci95": ci95, "per_seed": values.tolist()}
    return out


def expert_levels(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Per world: the expert's mean return beside every agent evaluated there (NaN where it
    plays alone or the CSV predates the column)."""
    out = {}
    for world in dict.fromkeys(r["env"] for r in rows):
        values = [r.get("expert_return", math.nan) for r in rows if r["env"] == world]
        finite = [v for v in values if math.isfinite(v)]
        out[world] = float(np.mean(finite)) if finite else math.nan
    return out


def _finite_or_none(values: Mapping[str, float]) -> dict[str, Optional[float]]:
    """JSON has no NaN: a world where no expert played gets None."""
    return {k: v if math.isfinite(v) else None for k, v in values.items()}


RECOMPUTED = ("stats", "expert_levels", "claims")  # what figure6.json reads from the rows


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

    rows = results.read_long_csv(out_dir / f"{name}.csv", text_columns=("condition", "env", "partners"))
    stats = bar_stats(rows)
    experts_level = expert_levels(rows)
    fig, axes = figures.figure_panels(len(stats), 3.2, 4.0)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (world, bars) in zip(axes, stats.items()):
        for i, (bar, s) in enumerate(bars.items()):
            colour = colours[list(labels).index(bar) % len(colours)]
            ax.bar(i, s["mean"], yerr=s["ci95"] or 0.0, color=colour, alpha=0.6, capsize=4)
            ax.scatter(np.full(len(s["per_seed"]), i), s["per_seed"], marker="x", color="black", zorder=3, s=22)
        ax.set_xticks(range(len(bars)), [labels[b] for b in bars], rotation=25, ha="right", fontsize=8)
        ax.axhline(0, color="gray", linewidth=0.8)
        if math.isfinite(experts_level.get(world, math.nan)):
            ax.axhline(experts_level[world], color="black", linestyle="--", linewidth=1,
                       label=f"expert beside them ({experts_level[world]:.2f})")
            ax.legend(fontsize=7, loc="best")
        ax.set_title(f"{world}\nbeside {describe_partners(worlds[world][1])}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("return per episode (seed means, 95% CI)")
    fig.suptitle(title, fontsize=9)
    return figures.save_figure(fig, out_dir / f"{name}.png")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = cli.figure4_reader_parser(__doc__)
    parser.add_argument("--episodes", type=cli.positive_int, default=None,
                        help="episodes per agent, seed and world (default: the scale's eval_episodes)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the evaluation episodes (default 0)")
    parser.add_argument("--native-experts", choices=NATIVE_EXPERTS, default="scripted",
                        help="the new worlds' experts: scripted (default), or RL experts trained there (experts.py --env), frozen")
    parser.add_argument("--native-experts-dir", action="append", default=[], metavar="WORLD=DIR",
                        help="a world's trained experts (default runs/figures/experts-WORLD-SCALE); repeatable")
    parser.add_argument("--no-gifs", action="store_true", help="skip the GIFs of SociAPL beside the experts")
    parser.add_argument("--replot", action="store_true", help="redraw the figure from the out dir's CSV")
    cli.add_merge_flag(parser)
    args = parser.parse_args(argv)
    source = cli.figure4_dir_of(args)
    out_dir = Path(args.out_dir) if args.out_dir else source
    title_of = lambda s: (f"Figure 6: zero-shot transfer of {s['source'] or 'the merged parts'}'s agents ({s['experts']} 3-goal experts), "  # noqa: E731
                          f"{s.get('native_experts', 'scripted')} native experts, {s['episodes_per_seed']} episodes per seed")
    if args.replot:
        summary = json.loads((out_dir / "figure6.json").read_text())
        worlds = {panel: (w["env"], w["partners"]) for panel, w in summary["worlds"].items()}
        print(write_figure(out_dir, title_of(summary), worlds=worlds))
        return 0
    cli.check_merge(args)
    if args.merge:
        rows, summary = parts.merge(args.merge, "figure6.csv", out_dir, recomputed=RECOMPUTED,
                                    summary_name="figure6.json", text_columns=("condition", "env", "partners"))
        worlds = {panel: (w["env"], w["partners"]) for panel, w in summary["worlds"].items()}
        stats = bar_stats(rows)
        summary.update(stats=stats, expert_levels=_finite_or_none(expert_levels(rows)), claims=claims(stats))
        (out_dir / "figure6.json").write_text(json.dumps(summary, indent=2))
        print(write_figure(out_dir, title_of(summary), worlds=worlds))
        return 0
    cli.check_seed(args.seed)
    args.seed = 0 if args.seed is None else args.seed
    if args.native_experts_dir and args.native_experts != "trained":
        raise ValueError("--native-experts-dir is only for --native-experts trained")
    dirs = native_dirs(args.scale, args.native_experts_dir) if args.native_experts == "trained" else None
    worlds = native_partners(WORLDS, args.native_experts, dirs)
    if not (source / "config.json").exists():
        raise FileNotFoundError(
            f"{source} holds no figure4.py run (no config.json); run experiments/figure4.py --scale {args.scale} first"
        )
    from sociajax.training.checkpoint import load_run

    scale = scales.get_scale(args.scale, "figure4")
    episodes = args.episodes or scale.eval_episodes
    start = time.perf_counter()
    run = load_run(source)
    check_scale_of_run(scale, run.config)
    rows = transfer_returns(run, episodes, args.seed, worlds=worlds, scale=scale)
    out_dir.mkdir(parents=True, exist_ok=True)
    gifs = {} if args.no_gifs else record_gifs(run, out_dir, worlds, args.seed, scale=scale)
    results.write_csv(rows, out_dir / "figure6.csv")
    stats = bar_stats(rows)
    summary = {
        "figure": "6",
        "source": str(source),
        "source_update": int(run.meta["update"]),
        "experts": "scripted" if run.config.agents[1].role == "scripted" else "trained",
        "native_experts": args.native_experts,
        "worlds": {panel: {"env": world, "partners": partners, "shape": scale.world(world)}
                   for panel, (world, partners) in worlds.items()},
        "episodes_per_seed": episodes,
        "eval_seed": args.seed,
        "wall_s": round(time.perf_counter() - start, 1),
        "stats": stats,
        "expert_levels": _finite_or_none(expert_levels(rows)),
        "claims": claims(stats),
        "gifs": gifs,
    }
    (out_dir / "figure6.json").write_text(json.dumps(summary, indent=2))
    print(write_figure(out_dir, title_of(summary), worlds=worlds))
    for panel, gif in gifs.items():
        print(f"{gif['gif']}: SociAPL seed 0 in {panel}, {gif['steps']} steps, returns {gif['returns']}")
    print(f"{out_dir / 'figure6.csv'}\nzero-shot return, mean over seeds ± 95% CI ({episodes} episodes per seed;"
          " one seed has no interval):")
    for world, bars in stats.items():
        cells = (f"{LABELS[b]} {s['mean']:+.2f}" + ("" if s["ci95"] is None else f"±{s['ci95']:.2f}")
                 for b, s in bars.items())
        print(f"  {world:<12} " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_or_exit(main))
