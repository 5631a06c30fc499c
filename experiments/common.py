"""What the figure scripts share: scales, the command line, the long-format CSV, the plot.

Each figure script is ``python experiments/<name>.py --scale tiny|small|paper
[--num-seeds N] [--out-dir DIR]``. Its out dir is the engine's run folder
(``sociajax.training.run.train``: ``config.json``, ``metrics.csv``, ``checkpoints/``) plus
the figure's PNG, the long-format CSV behind it and ``summary.json``, so a later script can
load agents from it (``load_from``) and any plot can be redrawn from the CSV without
training (``--replot``).

Scales (:func:`get_scale`):

* ``tiny``: seconds of training (compiling dominates); the test suite runs it end to end.
* ``small``: at most about an hour per figure on 2 CPU cores, every condition, 3 seeds.
  Budgets are estimates from the main job's measured speed (16 envs x 250 steps per
  update, 1,300-2,000 env-steps/s summed over runs on a 2-core AVX2 AMD EPYC, one learner
  per run); measured since (experiments/README.md): figure4.py with scripted experts 55
  minutes (AVX2, 2026-12-02), experts.py 48 minutes (AVX-512, shared, 2026-12-05).
  figure7.py adds the evaluation of its ten checkpoints in three settings on top.
* ``paper``: the paper's schedule (appendix 7.8, the ``paper-social`` preset), for a GPU.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from sociajax.agents.ppo import PPOConfig
from sociajax.training.logging import read_metrics
from sociajax.training.presets import get_preset

SCALES = ("tiny", "small", "paper")
EXPERT_LR = 1e-5  # paper 7.8: trained experts keep learning at this rate in SociAPL runs

# Episodes per run (one condition, one seed) of each figure at each scale. Small: the
# largest budget that fits the hour by the estimate in the module doc (runs x env steps /
# 1,300 env-steps/s); trained experts are learners too, about 2.5x the compute per env step.
EPISODES: dict[str, dict[str, int]] = {
    # 2 conditions x 3 seeds, one learner alone: 6 x 3,072 x 250 = 4.6M env steps.
    # Paper: 81,920 episodes at 0.5, then 1.0 (Figure 12); ours: as long at 1.0, then 1.5
    # for the other half of the budget (the curriculum's switches are fractions of it).
    "experts": {"tiny": 16, "small": 3_072, "paper": 327_680},
    # 5 conditions x 3 seeds, 1 learner + 2 scripted oracles: 15 x 1,200 x 250 = 4.5M.
    "figure4": {"tiny": 8, "small": 1_200, "paper": 1_000_000},
    # The same 15 runs with 3 learners each (2 trained experts learning at lr 1e-5).
    "figure4-trained": {"tiny": 8, "small": 480, "paper": 1_000_000},
    # 3 conditions x 3 seeds with scripted experts: 9 x 1,200 x 250 = 2.7M env steps, the
    # same runs per condition as figure4's (its solo and SociAPL conditions recur here).
    "figure5": {"tiny": 8, "small": 1_200, "paper": 1_000_000},
    # The same 9 runs with 3 learners each (the imperfect experts frozen, computing anyway).
    "figure5-trained": {"tiny": 8, "small": 800, "paper": 1_000_000},
    # 3 conditions x 3 seeds (social, mixed after the switch, solo), as figure5's; the paper
    # switches after about 500k of its 1M+ episodes.
    "figure7": {"tiny": 8, "small": 1_200, "paper": 1_000_000},
    "figure7-trained": {"tiny": 8, "small": 800, "paper": 1_000_000},
    # 2 conditions (penalty 0 and -1.5) x 3 seeds: 6 x 1,200 x 250 = 1.8M env steps.
    "figure9": {"tiny": 8, "small": 1_200, "paper": 1_000_000},
    "figure9-trained": {"tiny": 8, "small": 800, "paper": 1_000_000},
}


@dataclasses.dataclass(frozen=True)
class Scale:
    """How big one figure's runs are: PPO schedule, episode length and budget, seeds."""

    name: str
    ppo: PPOConfig
    max_steps: Optional[int]  # episode length; None: the env's (250 in Goal Cycle)
    episodes: int  # per run (condition x seed)
    num_seeds: int  # default
    novice_lr: float
    penalty: float  # the wrong-goal penalty the figure is about
    updates_per_chunk: int
    checkpoint_every: int  # chunks between checkpoints
    eval_episodes: int  # fresh episodes per seed when a script evaluates agents
    measured: bool  # whether a whole figure has been run at this scale

    @property
    def episode_steps(self) -> int:
        return 250 if self.max_steps is None else self.max_steps

    @property
    def total_env_steps(self) -> int:
        """Env steps per run: whole updates of ``ppo.num_envs`` episodes."""
        updates = max(1, -(-self.episodes // self.ppo.num_envs))
        return updates * self.ppo.num_envs * self.episode_steps

    @property
    def num_updates(self) -> int:
        return self.total_env_steps // (self.ppo.num_envs * self.episode_steps)


def get_scale(name: str, figure: str) -> Scale:
    """The :class:`Scale` ``name`` for ``figure`` (a key of :data:`EPISODES`)."""
    if name not in SCALES:
        raise ValueError(f"--scale must be one of {SCALES}, got {name!r}")
    if figure not in EPISODES:
        raise ValueError(f"figure must be one of {sorted(EPISODES)}, got {figure!r}")
    episodes = EPISODES[figure][name]
    if name == "tiny":
        # Like tests/training/training_kit.tiny: 16-step episodes, 2 envs, 2 minibatches.
        ppo = PPOConfig(num_envs=2, num_minibatches=2, minibatch_segments=2, recompute_every=1)
        return Scale(name, ppo, 16, episodes, 2, 1e-4, -1.5, 1, 2, 4, measured=True)
    if name == "small":
        # The main job's PPO schedule (social-scripted preset), tuned to learn in its budget:
        # 16 episodes per update, 8 minibatches of 32 segments, lr 3e-4, entropy 1e-3.
        ppo = dataclasses.replace(get_preset("social-scripted").ppo)
        return Scale(name, ppo, None, episodes, 3, 3e-4, -1.5, 1, 25, 64, measured=False)
    paper = get_preset("paper-social")  # appendix 7.8: 128 episodes, 20 x 512 x 16, lr 1e-4
    return Scale(
        name, paper.ppo, None, episodes, 5, paper.agents[0].lr, -1.5, paper.updates_per_chunk,
        paper.checkpoint_every, 128, measured=False,
    )


# ---------------------------------------------------------------------- command line
def positive_int(text: str) -> int:
    """argparse type: a positive integer (the error names the value)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def make_parser(description: str) -> argparse.ArgumentParser:
    """The flags every figure script takes; a script adds its own before parsing."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=SCALES, default="tiny", help="tiny (tests), small (2 CPU cores, ~1 h), paper (GPU)")
    parser.add_argument("--num-seeds", type=positive_int, default=None, help="seeds per condition (default: the scale's)")
    parser.add_argument("--seed", type=int, default=0, help="first seed; seed i of every condition is seed+i")
    parser.add_argument("--episodes", type=positive_int, default=None, help="episodes per run (default: the scale's)")
    parser.add_argument("--out-dir", default=None, help="run folder (default: runs/figures/<figure>-<scale>)")
    parser.add_argument("--resume", action="store_true", help="continue the run folder's last checkpoint")
    parser.add_argument("--replot", action="store_true", help="redraw the figure from the out dir's CSV, no training")
    parser.add_argument("--progress", action="store_true", help="progress bar on stderr")
    return parser


def figure4_reader_parser(description: str) -> argparse.ArgumentParser:
    """The flags of a script drawn from a figure4.py run folder (Figures 2 and 8): which
    run to read (``--scale`` and ``--experts`` pick figure4.py's default folder, or
    ``--figure4-dir``) and where to write (``--out-dir``, default that folder)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=SCALES, default="tiny", help="which figure4.py run to read (its default folder)")
    parser.add_argument("--experts", choices=("scripted", "trained"), default="scripted", help="which figure4.py run to read")
    parser.add_argument("--figure4-dir", default=None, help="a figure4.py run folder (instead of the default for --scale)")
    parser.add_argument("--out-dir", default=None, help="where to write (default: the figure4 folder)")
    return parser


def figure4_dir_of(args: argparse.Namespace) -> Path:
    """The figure4.py run folder a :func:`figure4_reader_parser` script reads."""
    return Path(args.figure4_dir or f"runs/figures/figure4{'-trained' if args.experts == 'trained' else ''}-{args.scale}")


def add_experts_flags(parser: argparse.ArgumentParser) -> None:
    """``--experts scripted|trained`` and ``--experts-dir`` (scripts with experts beside a novice)."""
    parser.add_argument("--experts", choices=("scripted", "trained"), default="scripted",
                        help="scripted oracles, or trained experts loaded from --experts-dir")
    parser.add_argument("--experts-dir", default=None, help="run folder of experiments/experts.py (for --experts trained)")


def experts_dir_of(args: argparse.Namespace) -> Optional[Path]:
    return Path(args.experts_dir) if args.experts_dir is not None else None


def expert_agents(experts: str, experts_dir: Optional[Path], num_seeds: int) -> tuple[Any, Any]:
    """The two expert seats: scripted oracles, or trained experts from ``experts_dir``
    (:func:`trained_experts`); a folder without ``trained``, or the reverse, is refused."""
    from sociajax.training.config import AgentConfig

    if experts == "scripted":
        if experts_dir is not None:
            raise ValueError("--experts-dir is only for --experts trained")
        return (AgentConfig(role="scripted", policy="oracle"),) * 2
    if experts == "trained":
        if experts_dir is None:
            raise ValueError("--experts trained needs --experts-dir (a run folder of experiments/experts.py)")
        return trained_experts(experts_dir, num_seeds)
    raise ValueError(f"--experts must be 'scripted' or 'trained', got {experts!r}")


def experts_summary(experts: str, experts_dir: Optional[Path]) -> dict[str, Any]:
    """summary.json's record of the experts beside the novice: kind, folder, learning rate."""
    return {"experts": experts, "experts_dir": str(experts_dir) if experts_dir else None,
            "expert_lr": EXPERT_LR if experts == "trained" else None}


def check_seed(seed: int) -> None:
    if seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {seed!r}")


def out_dir_of(args: argparse.Namespace, figure: str) -> Path:
    return Path(args.out_dir or f"runs/figures/{figure}-{args.scale}")


def scale_of(args: argparse.Namespace, figure: str) -> Scale:
    """The scale the flags ask for, with ``--episodes`` applied."""
    scale = get_scale(args.scale, figure)
    if args.episodes is not None:
        scale = dataclasses.replace(scale, episodes=args.episodes)
    return scale


# ---------------------------------------------------------------------- long CSV
BASE_COLUMNS = ("condition", "seed", "update", "episodes", "env_steps", "return")


def long_rows(metrics_csv: str | os.PathLike, columns: Mapping[str, tuple[str, Sequence[int]]]) -> list[dict[str, Any]]:
    """One row per condition, seed and update of a run's ``metrics.csv`` (which has one per
    agent too): ``columns[out] = (metrics column, agents)`` gives column ``out`` as the mean
    of that metric over those agents (NaN where none has a value, e.g. all absent). Must
    name ``return``."""
    if "return" not in columns:
        raise ValueError(f"columns must define 'return', got {sorted(columns)}")
    grouped: dict[tuple[str, int, int], dict[int, dict[str, str]]] = defaultdict(dict)
    for row in read_metrics(metrics_csv):
        grouped[(row["condition"], int(row["seed"]), int(row["update"]))][int(row["agent"])] = row
    out = []
    for (condition, seed, update), agents in grouped.items():
        first = next(iter(agents.values()))
        row: dict[str, Any] = {
            "condition": condition,
            "seed": seed,
            "update": update,
            "episodes": int(first["episodes"]),
            "env_steps": int(first["env_steps"]),
        }
        for name, (source, which) in columns.items():
            missing = [a for a in which if a not in agents]
            if missing:
                raise ValueError(f"column {name!r}: {metrics_csv} has no agent {missing[0]} (agents {sorted(agents)})")
            values = [float(agents[a][source]) for a in which if agents[a].get(source, "") != ""]
            row[name] = float(np.mean(values)) if values else math.nan
        out.append(row)
    order = {name: i for i, name in enumerate(dict.fromkeys(r["condition"] for r in out))}
    return sorted(out, key=lambda r: (order[r["condition"]], r["seed"], r["update"]))


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """``rows`` as CSV (columns of the first row; NaN as an empty cell)."""
    if not rows:
        raise ValueError(f"no rows to write to {path}")
    path = Path(path)
    fields = list(rows[0])
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()})
    return path


def read_long_csv(path: str | os.PathLike, text_columns: Sequence[str] = ("condition",)) -> list[dict[str, Any]]:
    """A CSV of :func:`write_csv` with numbers as numbers (empty cells NaN), but for
    ``text_columns``."""
    out = []
    with Path(path).open(newline="") as f:
        for row in csv.DictReader(f):
            parsed: dict[str, Any] = {}
            for key, value in row.items():
                if key in text_columns:
                    parsed[key] = value
                elif key in ("seed", "update", "episodes", "env_steps"):
                    parsed[key] = int(value)
                else:
                    parsed[key] = float(value) if value != "" else math.nan
            out.append(parsed)
    return out


def late_mean(rows: Sequence[Mapping[str, Any]], condition: str, column: str = "return", fraction: float = 0.1) -> float:
    """Mean of ``column`` over the last ``fraction`` of a condition's updates (at least one)
    and all its seeds: one update averages only ``num_envs`` episodes, too few to read a
    level from. NaN if those rows have no value."""
    picked = [r for r in rows if r["condition"] == condition]
    if not picked:
        raise ValueError(f"no rows of condition {condition!r}")
    last = max(r["update"] for r in picked)
    first = last - max(1, round(fraction * last)) + 1
    values = [r[column] for r in picked if r["update"] >= first and not math.isnan(r[column])]
    return float(np.mean(values)) if values else math.nan


def per_seed_late_means(rows: Sequence[Mapping[str, Any]], condition: str, column: str = "return", fraction: float = 0.1) -> dict[int, float]:
    """:func:`late_mean` of each seed of ``condition`` apart (the paper reads its claims
    seed by seed: "all seeds below 1", "most seeds above the experts")."""
    seeds = sorted({r["seed"] for r in rows if r["condition"] == condition})
    return {s: late_mean([r for r in rows if r["seed"] == s], condition, column, fraction) for s in seeds}


# ---------------------------------------------------------------------- plot
def _moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` points, ignoring NaN (NaN where the window has none)."""
    if window <= 1:
        return y
    out = np.full_like(y, np.nan)
    for i in range(len(y)):
        chunk = y[max(0, i - window + 1) : i + 1]
        if np.any(~np.isnan(chunk)):
            out[i] = np.nanmean(chunk)
    return out


def figure_panels(count: int, width: float, height: float, dpi: int = 120) -> tuple[Any, Any]:
    """A matplotlib figure of ``count`` panels side by side (off-screen backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, count, figsize=(width * count, height), dpi=dpi)
    return fig, np.atleast_1d(axes)


def save_figure(fig: Any, out_png: str | os.PathLike) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


def plot_seeds_and_means(rows: Sequence[Mapping[str, Any]], out_png: str | os.PathLike, conditions: Sequence[str],
                         title: str, **options: Any) -> Path:
    """One panel of :func:`draw_seeds_and_means` saved as ``out_png``."""
    fig, (ax,) = figure_panels(1, 7.5, 4.5)
    draw_seeds_and_means(ax, rows, conditions, title, **options)
    return save_figure(fig, out_png)


def draw_seeds_and_means(
    ax: Any,
    rows: Sequence[Mapping[str, Any]],
    conditions: Sequence[str],
    title: str,
    references: Optional[Mapping[str, float]] = None,
    column: str = "return",
    ylabel: str = "episode return",
    labels: Optional[Mapping[str, str]] = None,
    smooth: Optional[int] = None,
    vlines: Sequence[float] = (),
) -> None:
    """Per condition: each seed as a faded line, the mean over seeds bold, against episodes
    trained, into the matplotlib axes ``ax``; ``references`` as labelled dashed horizontal
    lines (expert level, IL level), ``vlines`` as dotted vertical ones (e.g. where a
    schedule switches). ``smooth``: trailing moving average over that many updates
    (default: a 20th of the run, at most 25) since one update averages only a few episodes."""
    import matplotlib.pyplot as plt

    labels = labels or {}
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, condition in enumerate(conditions):
        picked = [r for r in rows if r["condition"] == condition]
        if not picked:
            raise ValueError(f"no rows of condition {condition!r} to plot (conditions: {sorted({r['condition'] for r in rows})})")
        updates = sorted({r["update"] for r in picked})
        episodes = np.array([next(r["episodes"] for r in picked if r["update"] == u) for u in updates])
        seeds = sorted({r["seed"] for r in picked})
        table = {(r["seed"], r["update"]): r[column] for r in picked}
        y = np.array([[table.get((s, u), math.nan) for u in updates] for s in seeds], np.float64)
        window = smooth if smooth is not None else min(25, max(1, len(updates) // 20))
        y = np.stack([_moving_average(line, window) for line in y])
        colour = colours[index % len(colours)]
        for line in y:
            ax.plot(episodes, line, color=colour, alpha=0.3, linewidth=0.8)
        with warnings.catch_warnings():  # points where no seed has a value stay NaN (gaps)
            warnings.simplefilter("ignore", category=RuntimeWarning)
            mean = np.nanmean(y, 0)
        ax.plot(episodes, mean, color=colour, linewidth=2.4, label=f"{labels.get(condition, condition)} ({len(seeds)} seeds)")
    for n, (label, value) in enumerate((references or {}).items()):
        if value is None or not math.isfinite(value):
            continue
        ax.axhline(value, color=("black", "dimgray", "gray")[n % 3], linestyle=("--", ":", "-.")[n % 3], linewidth=1.3, label=f"{label} ({value:.2f})")
    for x in vlines:
        ax.axvline(x, color="gray", linestyle=":", linewidth=1)
    ax.set_xlabel("episodes trained (per seed)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def has_penalty(env_id: str) -> bool:
    """Whether the world ``env_id`` charges a wrong-goal penalty (Goal Cycle does; Four Rooms
    and Maze have one goal and none)."""
    import sociajax

    return hasattr(sociajax.make(env_id)[1], "penalty")


def figure_config(scale: Scale, agents: Sequence[Any], conditions: Sequence[str], seed: int, num_seeds: int,
                  run_dir: Path, progress: bool, keep_checkpoints: int = 2, env_id: str = "GoalCycle-3") -> Any:
    """A figure's TrainConfig in ``env_id`` (default Goal Cycle 3) at ``scale``: its agents,
    its conditions as data (one compiled program), the scale's schedule and penalty (worlds
    with one); the last ``keep_checkpoints`` checkpoints kept for later scripts."""
    from sociajax.training.config import EnvConfig, TrainConfig

    penalty = repr(scale.penalty) if has_penalty(env_id) else None
    return TrainConfig(
        env=EnvConfig(env_id, max_steps=scale.max_steps, penalty=penalty),
        agents=tuple(agents),
        ppo=dataclasses.replace(scale.ppo, lr=scale.novice_lr),
        conditions=tuple(conditions),
        total_env_steps=scale.total_env_steps,
        seed=seed,
        num_seeds=num_seeds,
        updates_per_chunk=scale.updates_per_chunk,
        checkpoint_every=scale.checkpoint_every,
        keep_checkpoints=keep_checkpoints,
        run_dir=str(run_dir),
        baseline_episodes=0,
        progress=progress,
    )


def trained_experts(experts_dir: Path, num_seeds: int, lr: float = EXPERT_LR) -> tuple[Any, Any]:
    """The two expert seats' AgentConfigs loading from ``experts_dir`` (an experts.py run,
    seed-matched, its condition 0, last checkpoint): learners at ``lr`` with the auxiliary
    loss the experts trained with. Checks the folder up front so a bad one stops with its
    name, not mid-compile."""
    from sociajax.training.config import AgentConfig, TrainConfig

    config_path = experts_dir / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"--experts-dir {str(experts_dir)!r} holds no run (no config.json); run experiments/experts.py first")
    if not (experts_dir / "checkpoints").is_dir():
        raise FileNotFoundError(f"--experts-dir {str(experts_dir)!r} has no checkpoints/")
    source = TrainConfig.from_dict(json.loads(config_path.read_text()), source=str(config_path))
    if source.num_seeds < num_seeds:
        raise ValueError(
            f"--num-seeds={num_seeds}: experts are seed-matched, but --experts-dir {str(experts_dir)!r} "
            f"has only num_seeds={source.num_seeds}"
        )
    learners = [i for i, a in enumerate(source.agents) if a.role == "learner"]
    if not learners:
        raise ValueError(f"--experts-dir {str(experts_dir)!r} has no learner to load (roles {[a.role for a in source.agents]})")
    seats = (learners[0], learners[1] if len(learners) > 1 else learners[0])
    return tuple(
        AgentConfig(
            role="learner", lr=lr, aux=source.agents[k].aux, aux_target=source.agents[k].aux_target,
            load_from=str(experts_dir), load_agent=k, load_seed=None,
        )
        for k in seats
    )


def kept_checkpoints(run_dir: Path) -> list[int]:
    """The updates at which ``run_dir`` holds a checkpoint, in order."""
    folder = run_dir / "checkpoints"
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()) if folder.is_dir() else []


def check_one_program(config: Any) -> None:
    """Every condition has the same static config (what the compiled program depends on),
    so conditions x seeds are one program that differs only in data."""
    from sociajax.training.config import condition_configs, static_config

    statics = {name: static_config(c) for name, c in condition_configs(config)}
    first = next(iter(statics.values()))
    differing = [name for name, s in statics.items() if s != first]
    if differing:
        raise AssertionError(f"conditions {differing} would compile another program")


def train_as_one_program(config: Any, resume: bool) -> tuple[Any, int]:
    """Train ``config`` and return (result, training programs compiled): at most one, or
    the figure's conditions and seeds were not one program after all."""
    from sociajax.training.run import train

    before = compiled_programs()
    result = train(config, resume=resume)
    compiled = compiled_programs() - before
    if compiled > 1:
        raise AssertionError(f"training compiled {compiled} programs; conditions x seeds must be one")
    return result, compiled


def run_summary(scale: Scale, seed: int, num_seeds: int, conditions: Sequence[str], result: Any, compiled: int,
                script_start: float, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``summary.json`` fields every figure script records: budget, seeds, programs
    compiled, wall and compile time, and each condition's late return."""
    return {
        "num_seeds": num_seeds,
        "seeds": list(range(seed, seed + num_seeds)),
        "episodes_per_run": scale.num_updates * scale.ppo.num_envs,
        "env_steps_per_run": scale.total_env_steps,
        "updates": result.updates,
        "runs": len(conditions) * num_seeds,
        "compiled_training_programs": compiled,
        "train_wall_s": round(result.wall_s, 1),
        "compile_s": round(result.compile_s, 1),
        "script_wall_s": round(time.perf_counter() - script_start, 1),
        "late_return": {c: late_mean(rows, c) for c in conditions},
    }


def print_late_returns(labels: Mapping[str, str], summary: Mapping[str, Any]) -> None:
    """The closing lines of a training figure script: programs compiled and each
    condition's late return."""
    print(f"{len(labels)} conditions x {summary['num_seeds']} seeds, {summary['compiled_training_programs']} compiled "
          "training program(s); late return (last 10% of updates):")
    for name, label in labels.items():
        print(f"  {label:<32} {summary['late_return'][name]:+.2f}")


def compiled_programs() -> int:
    """How many training programs this process has compiled so far (the trainer's cache of
    compiled chunks): a figure's conditions and seeds must add exactly one, or none when an
    earlier call in the same process already compiled that program."""
    from sociajax.training import trainer

    return len(trainer._COMPILED)


def run_or_exit(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run a script's ``main`` and turn the errors of bad input into one line and exit 2."""
    try:
        return main(argv)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
