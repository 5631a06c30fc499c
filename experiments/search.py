"""The open search for a miniature Goal Cycle where social learning shows (see the criterion in
experiments/README.md, "Miniature search").

    python experiments/search.py [--settings experiments/search_settings.json] [--only NAME ...]
                                 [--seed 0] [--num-seeds 3] [--runs-dir runs/search]
                                 [--table experiments/results/search/search.csv] [--resume]
    python experiments/search.py --only NAME --seed 1000 --num-seeds 5 --pooled

Each setting of the settings file (a JSON list of objects, each a ``name`` and the fields of
:class:`Setting` it changes from the defaults) is trained as **one compiled program**: a novice
(agent 0) beside two scripted oracles (agents 1 and 2) under the three deciding conditions x
``--num-seeds`` seeds:

* ``sociapl``   SOCIAL PPO + AUX PRED: the experts present, the novice predicts its next view;
* ``solo_pred`` SOLO PPO + AUX PRED: the same novice with the experts at presence 0;
* ``vanilla``   SOCIAL PPO (VANILLA): the experts present, no auxiliary loss.

When a setting's run ends, one row is appended to the table (a CSV, committed): the setting,
each condition's late return per seed (the novice's mean return over the last 10% of
updates), their means, SociAPL minus each control, whether the criterion holds, env steps,
wall time, CPU model and commit. Rows are never rewritten: every setting tried stays, failures
included; a setting already in the table for the same seeds is skipped. A run folder whose
training was interrupted continues exactly with ``--resume``. Beside each row, the novice's
return per update (condition x seed) goes to ``curves/NAME-sSEEDxN.csv`` next to the table.

The confirmation of a setting on 5 fresh seeds need not fit one session: its seeds can run in
parts (``--seed 1000 --num-seeds 2``, then ``--seed 1002 ...``), each its own row, and
``--pooled --seed 1000 --num-seeds 5`` judges the criterion over all five from those rows and
draws their curves together.

A setting may ``continue`` another: the same setting trained longer. Its run starts from a copy
of the other's finished run folder (checkpoint, metrics, config) and resumes exactly to its own
larger ``env_steps``, so a longer budget costs only the extra updates. Its row's late return is
over the last 10% of its own (longer) run; its ``train_wall_s`` is the whole run's, the other's included.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from sociajax.host import cpu_label
from sociajax.training import results

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script

import cli  # noqa: E402
import runs  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_SETTINGS = HERE / "search_settings.json"
DEFAULT_TABLE = HERE / "results" / "search" / "search.csv"
CONDITIONS = ("sociapl", "solo_pred", "vanilla")
LATE_FRACTION = 0.1  # the late return: the last 10% of updates


@dataclasses.dataclass(frozen=True)
class Setting:
    """One point of the search. Defaults: the 7x7 trial in the project notes (no walls,
    64-step episodes, 64 episodes per update in 8 minibatches of 32 segments, lr 1e-3, entropy
    1e-3, penalty -1.5, the paper's 7 actions, 1.6M env steps per run)."""

    name: str
    env_id: str = "GoalCycle-3"
    size: int = 7
    n_walls: int = 0
    max_steps: int = 64
    action_set: str = "paper"
    num_envs: int = 64
    num_minibatches: int = 8
    minibatch_segments: int = 32
    recompute_every: int = 2
    lr: float = 1e-3
    entropy_coef: float = 1e-3
    aux_coef: float = 3.0
    penalty: str = "-1.5"  # a number or a schedule over episodes (sociajax.training.schedule)
    presence: str = "1.0"  # the experts' presence in the social conditions: a number or a schedule
    env_steps: int = 1_600_000  # per run (condition x seed), rounded up to whole updates
    continues: str = ""  # a setting whose run this one extends to a larger env_steps (all else equal)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"name must be a non-empty name of letters, digits, - and _, got {self.name!r}")
        for field in ("penalty", "presence"):
            value = getattr(self, field)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                object.__setattr__(self, field, repr(float(value)))

    @property
    def updates(self) -> int:
        return max(1, -(-self.env_steps // (self.num_envs * self.max_steps)))


def load_settings(path: Path) -> list[Setting]:
    """The settings of a JSON file; an unknown field or a repeated name raises a ValueError
    naming it."""
    try:
        entries = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"--settings {str(path)!r} is not valid JSON: {err}") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"--settings {str(path)!r} must hold a JSON list of objects")
    known = {f.name for f in dataclasses.fields(Setting)}
    settings, seen = [], set()
    for i, entry in enumerate(entries):
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(f"--settings {str(path)!r}: entry {i} has unknown field {unknown[0]!r} (known: {sorted(known)})")
        if "name" not in entry:
            raise ValueError(f"--settings {str(path)!r}: entry {i} has no name")
        setting = Setting(**entry)
        if setting.name in seen:
            raise ValueError(f"--settings {str(path)!r}: name {setting.name!r} appears twice")
        seen.add(setting.name)
        settings.append(setting)
    by_name = {s.name: s for s in settings}
    for setting in settings:
        if setting.continues:
            if setting.continues not in by_name:
                raise ValueError(f"--settings {str(path)!r}: {setting.name!r} continues {setting.continues!r}, "
                                 "which is not in the file")
            check_continues(setting, by_name[setting.continues])
    return settings


def setting_named(name: str, path: Path = DEFAULT_SETTINGS) -> Setting:
    """The setting called ``name`` in the settings file."""
    by_name = {s.name: s for s in load_settings(path)}
    if name not in by_name:
        raise ValueError(f"no setting {name!r} in {str(path)!r} (names: {sorted(by_name)})")
    return by_name[name]


def conditions_of(setting: Setting) -> list[str]:
    """The three deciding conditions as data over one static config."""
    present = f"agents.1.presence={setting.presence} agents.2.presence={setting.presence}"
    return [
        f"sociapl: agents.0.aux=true agents.0.aux_target=next {present}",
        "solo_pred: agents.0.aux=true agents.0.aux_target=next agents.1.presence=0 agents.2.presence=0",
        f"vanilla: agents.0.aux=false {present}",
    ]


def train_config(setting: Setting, seed: int, num_seeds: int, run_dir: Path, progress: bool = True) -> Any:
    """The one TrainConfig (one compiled program) of ``setting``."""
    from sociajax.agents.ppo import PPOConfig
    from sociajax.training.config import AgentConfig, EnvConfig, TrainConfig

    ppo = PPOConfig(
        num_envs=setting.num_envs, num_minibatches=setting.num_minibatches,
        minibatch_segments=setting.minibatch_segments, recompute_every=setting.recompute_every,
        entropy_coef=setting.entropy_coef, aux_coef=setting.aux_coef, lr=setting.lr,
    )
    oracle = AgentConfig(role="scripted", policy="oracle")
    return TrainConfig(
        env=EnvConfig(
            setting.env_id, size=setting.size, n_walls=setting.n_walls, action_set=setting.action_set,
            max_steps=setting.max_steps, penalty=setting.penalty,
        ),
        agents=(AgentConfig(role="learner", lr=setting.lr), oracle, oracle),
        ppo=ppo,
        conditions=tuple(conditions_of(setting)),
        total_env_steps=setting.updates * setting.num_envs * setting.max_steps,
        seed=seed,
        num_seeds=num_seeds,
        updates_per_chunk=1,
        checkpoint_every=20,
        keep_checkpoints=1,
        run_dir=str(run_dir),
        baseline_episodes=0,
        progress=progress,
    )


def meets_criterion(late: Mapping[str, Sequence[float]]) -> bool:
    """The criterion written before the search (experiments/README.md): SociAPL's late return
    is above 1 in at least two thirds of the seeds (2 of 3, 4 of 5), and its mean is above
    both SOLO + PRED's and vanilla's means by at least 1."""
    sociapl = list(late["sociapl"])
    above = sum(value > 1.0 for value in sociapl)
    if above < math.ceil(2 * len(sociapl) / 3):
        return False
    mean = sum(sociapl) / len(sociapl)
    return all(mean - sum(late[c]) / len(late[c]) >= 1.0 for c in ("solo_pred", "vanilla"))


def late_returns_per_seed(run_dir: Path) -> dict[str, list[float]]:
    """Each condition's novice late return, per seed (in seed order)."""
    rows = results.long_rows(run_dir / "metrics.csv", {"return": ("return", (0,))})
    out = {}
    for condition in CONDITIONS:
        per_seed = results.per_seed_late_means(rows, condition, fraction=LATE_FRACTION)
        out[condition] = [per_seed[s] for s in sorted(per_seed)]
    return out


def commit() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=HERE,
                             check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def window_table(run_dir: Path, width: int = 40) -> str:
    """The novice's mean return per window of ``width`` updates, per condition and seed, as a
    Markdown table (what the results page shows of each row)."""
    import numpy as np

    rows = results.long_rows(run_dir / "metrics.csv", {"return": ("return", (0,))})
    last = max(r["update"] for r in rows)
    seeds = sorted({r["seed"] for r in rows})
    lines = [f"| updates | {' | '.join(CONDITIONS)} |", "|---|" + "---|" * len(CONDITIONS)]
    for start in range(1, last + 1, width):
        end = min(start + width - 1, last)
        cells = []
        for condition in CONDITIONS:
            means = []
            for seed in seeds:
                values = [r["return"] for r in rows if r["condition"] == condition and r["seed"] == seed
                          and start <= r["update"] <= end and not math.isnan(r["return"])]
                means.append(f"{np.mean(values):.2f}" if values else "-")
            cells.append(", ".join(means))
        lines.append(f"| {start}-{end} | {' | '.join(cells)} |")
    return "\n".join(lines)


COLUMNS: list[str] = [
    *(f.name for f in dataclasses.fields(Setting)), "seeds", *(f"{c}_late" for c in CONDITIONS),
    *(f"{c}_mean" for c in CONDITIONS), "sociapl_minus_solo", "sociapl_minus_vanilla", "criterion_met",
    "env_steps_per_run", "updates", "train_wall_s", "cpu", "date", "commit",
]


def table_row(setting: Setting, seed: int, num_seeds: int, late: Mapping[str, Sequence[float]], result: Any) -> dict[str, Any]:
    """One row of the search table."""
    means = {c: sum(late[c]) / len(late[c]) for c in CONDITIONS}
    row: dict[str, Any] = {k: v for k, v in dataclasses.asdict(setting).items()}
    row.update(
        seeds=f"{seed}-{seed + num_seeds - 1}",
        **{f"{c}_late": ";".join(f"{v:.3f}" for v in late[c]) for c in CONDITIONS},
        **{f"{c}_mean": round(means[c], 3) for c in CONDITIONS},
        sociapl_minus_solo=round(means["sociapl"] - means["solo_pred"], 3),
        sociapl_minus_vanilla=round(means["sociapl"] - means["vanilla"], 3),
        criterion_met=meets_criterion(late),
        env_steps_per_run=result.env_steps[0],
        updates=result.updates,
        train_wall_s=round(result.wall_s, 1),
        cpu=cpu_label(),
        date=datetime.date.today().isoformat(),
        commit=commit(),
    )
    return row


def read_table(path: Path) -> list[dict[str, str]]:
    import csv

    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def table_header(path: Path) -> Optional[list[str]]:
    """The table's columns (None: no table, or an empty file)."""
    import csv

    if not path.exists():
        return None
    with path.open(newline="") as f:
        return next(csv.reader(f), None)


def check_table(path: Path) -> None:
    """Refuse, before any training, a table whose columns are not this script's rows'."""
    header = table_header(path)
    if header is not None and header != COLUMNS:
        raise ValueError(f"--table {str(path)!r}: its columns {header} are not this script's {COLUMNS}")


def append_row(path: Path, row: Mapping[str, Any]) -> None:
    """Append ``row`` to the CSV at ``path`` (header written when the file has none)."""
    import csv

    if list(row) != COLUMNS:
        raise ValueError(f"row columns {list(row)} are not {COLUMNS}")
    check_table(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_header = table_header(path) is None
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if write_header:
            writer.writeheader()
        writer.writerow(row)


def curves_dir_of(table: Path) -> Path:
    """Where the novice curves of a table's rows go: ``curves/`` beside the table."""
    return Path(table).parent / "curves"


def curves_path(curves_dir: Path, name: str, seed: int, num_seeds: int) -> Path:
    return Path(curves_dir) / f"{name}-s{seed}x{num_seeds}.csv"


def export_curves(run_dir: Path, out_csv: Path) -> Path:
    """The novice's return per update, condition and seed of a run folder, as a small CSV
    that is committed beside the table (the run folder, with its checkpoints, is not)."""
    rows = results.long_rows(run_dir / "metrics.csv", {"return": ("return", (0,))})
    for row in rows:
        row["return"] = round(row["return"], 4)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    return results.write_csv(rows, out_csv)


def _seed_range(text: str) -> range:
    first, last = (int(v) for v in text.split("-"))
    return range(first, last + 1)


def pooled_late(table_rows: Sequence[Mapping[str, str]], name: str, seeds: range) -> dict[str, list[float]]:
    """Each condition's late return over ``seeds``, gathered from the rows of setting ``name``
    that cover them: a confirmation may run its seeds in several parts (one part per session),
    and is judged on all of them together. A seed missing from the rows, or in two of them,
    raises a ValueError naming it."""
    per_seed: dict[int, dict[str, float]] = {}
    for row in table_rows:
        if row["name"] != name:
            continue
        row_seeds = _seed_range(row["seeds"])
        if not set(row_seeds) <= set(seeds):
            continue
        for seed_index, seed in enumerate(row_seeds):
            if seed in per_seed:
                raise ValueError(f"setting {name!r}: seed {seed} is in two rows of the table")
            per_seed[seed] = {c: float(row[f"{c}_late"].split(";")[seed_index]) for c in CONDITIONS}
    missing = [s for s in seeds if s not in per_seed]
    if missing:
        raise ValueError(f"setting {name!r}: no row of the table holds seed {missing[0]} "
                         f"(rows hold seeds {sorted(per_seed) or 'none'})")
    return {c: [per_seed[s][c] for s in seeds] for c in CONDITIONS}


def pooled_curves(curves_dir: Path, name: str, seeds: range) -> list[dict[str, Any]]:
    """The novice curves of setting ``name`` over ``seeds``, from the committed curve CSVs."""
    rows: list[dict[str, Any]] = []
    found: dict[int, Path] = {}
    for path in sorted(Path(curves_dir).glob(f"{name}-s*x*.csv")):
        picked = [r for r in results.read_long_csv(path) if r["seed"] in seeds]
        for seed in sorted({r["seed"] for r in picked}):
            if seed in found:
                raise ValueError(f"setting {name!r}: seed {seed} is in both {found[seed]} and {path}")
            found[seed] = path
        rows += picked
    missing = [s for s in seeds if s not in found]
    if missing:
        raise FileNotFoundError(f"setting {name!r}: no curve in {curves_dir} holds seed {missing[0]}")
    return rows


def report_pooled(setting: Setting, seeds: range, table: Path) -> str:
    """The criterion judged over ``seeds`` from the table's rows, and the pooled figure of the
    novice curves drawn beside the curve CSVs; returns the report's text."""
    from sociajax.viz.figures import plot_seeds_and_means

    late = pooled_late(read_table(table), setting.name, seeds)
    means = {c: sum(v) / len(v) for c, v in late.items()}
    lines = [f"{setting.name}, seeds {seeds[0]}-{seeds[-1]} (late return: the last {LATE_FRACTION:.0%} of updates):"]
    lines += [f"  {c:10s} {', '.join(f'{v:.2f}' for v in late[c])}  (mean {means[c]:.2f})" for c in CONDITIONS]
    lines.append(f"  SociAPL minus SOLO + PRED {means['sociapl'] - means['solo_pred']:+.2f}, minus vanilla "
                 f"{means['sociapl'] - means['vanilla']:+.2f}; criterion {'met' if meets_criterion(late) else 'not met'}")
    curves_dir = curves_dir_of(table)
    rows = pooled_curves(curves_dir, setting.name, seeds)
    png = plot_seeds_and_means(
        rows, curves_path(curves_dir, setting.name, seeds[0], len(seeds)).with_suffix(".png"), CONDITIONS,
        f"{setting.name}: the novice beside two scripted oracles, seeds {seeds[0]}-{seeds[-1]}",
        labels={"sociapl": "SociAPL", "solo_pred": "SOLO + PRED", "vanilla": "SOCIAL vanilla"},
    )
    lines.append(f"  figure: {png}")
    return "\n".join(lines)


def run_dir_of(setting: Setting, args: argparse.Namespace) -> Path:
    return Path(args.runs_dir) / f"{setting.name}-s{args.seed}x{args.num_seeds}"


def check_continues(setting: Setting, parent: Setting) -> None:
    """A continuing setting is its parent trained longer: every other field equal."""
    if parent.continues:
        raise ValueError(f"setting {setting.name!r}: continues {parent.name!r}, which continues another; "
                         "continue the first setting instead")
    skip = {"name", "env_steps", "continues"}
    diffs = [f.name for f in dataclasses.fields(Setting)
             if f.name not in skip and getattr(setting, f.name) != getattr(parent, f.name)]
    if diffs:
        raise ValueError(f"setting {setting.name!r} continues {parent.name!r} but differs in {diffs[0]!r} "
                         f"({getattr(setting, diffs[0])!r} vs {getattr(parent, diffs[0])!r}); only env_steps may change")
    if setting.updates <= parent.updates:
        raise ValueError(f"setting {setting.name!r}: env_steps {setting.env_steps} gives {setting.updates} updates, "
                         f"not more than {parent.name!r}'s {parent.updates}")


def start_from_parent(setting: Setting, parent: Setting, args: argparse.Namespace, run_dir: Path) -> None:
    """Copy the parent's finished run folder to ``run_dir`` (without its search row), pointing its
    config at the new folder, so that training resumes from the parent's last checkpoint."""
    parent_dir = run_dir_of(parent, args)
    from sociajax.training.checkpoint import Checkpointer

    last = Checkpointer(parent_dir, create=False).latest() if (parent_dir / "checkpoints").exists() else None
    if last != parent.updates:
        raise FileNotFoundError(f"setting {setting.name!r} continues {parent.name!r}, but {parent_dir} holds no "
                                f"finished run of it (last checkpoint: {last}, needed: {parent.updates})")
    shutil.copytree(parent_dir, run_dir, ignore=shutil.ignore_patterns("search_row.json"))
    config = json.loads((run_dir / "config.json").read_text())
    config["run_dir"] = str(run_dir)
    (run_dir / "config.json").write_text(json.dumps(config, indent=2))


def run_setting(setting: Setting, args: argparse.Namespace, settings: Sequence[Setting] = ()) -> Optional[dict[str, Any]]:
    """Train one setting (or continue it) and return its table row; None if interrupted."""
    run_dir = run_dir_of(setting, args)
    started = (run_dir / "config.json").exists()
    if started and not args.resume:
        raise FileExistsError(f"{run_dir} holds a run; pass --resume to continue it")
    if setting.continues and not started:  # load_settings checked that the parent exists and matches
        parent = next(s for s in settings if s.name == setting.continues)
        start_from_parent(setting, parent, args, run_dir)
        started = True
    config = train_config(setting, args.seed, args.num_seeds, run_dir, progress=not args.no_progress)
    runs.check_one_program(config)
    print(f"[{setting.name}] {len(CONDITIONS)} conditions x {args.num_seeds} seeds, {setting.updates} updates "
          f"({config.total_env_steps:,} env steps per run) -> {run_dir}", flush=True)
    result, _ = runs.train_as_one_program(config, resume=started)
    if result.interrupted:
        print(f"[{setting.name}] interrupted at update {result.updates}; continue with --resume", flush=True)
        return None
    late = late_returns_per_seed(run_dir)
    row = table_row(setting, args.seed, args.num_seeds, late, result)
    (run_dir / "search_row.json").write_text(json.dumps(row, indent=2))  # kept even if the table write fails
    return row


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", type=Path, default=DEFAULT_SETTINGS, help="JSON list of settings")
    parser.add_argument("--only", nargs="+", default=None, help="run only these setting names, in this order")
    parser.add_argument("--seed", type=int, default=0, help="first seed (confirmation: fresh seeds, e.g. 1000)")
    parser.add_argument("--num-seeds", type=cli.positive_int, default=3)
    parser.add_argument("--runs-dir", default="runs/search", help="where run folders (checkpoints) go; not committed")
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="the CSV the rows are appended to")
    parser.add_argument("--resume", action="store_true", help="continue a setting whose run folder exists")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--windows", type=int, default=0, metavar="WIDTH",
                        help="print the --only settings' novice returns per window of WIDTH updates (no training)")
    parser.add_argument("--curves", action="store_true",
                        help="write the --only settings' novice curves from their run folders beside the table "
                             "(done after each row; for rows written before), no training")
    parser.add_argument("--pooled", action="store_true",
                        help="judge the --only settings over seeds SEED..SEED+NUM_SEEDS-1 from the table's rows "
                             "(a confirmation run in parts) and draw their pooled curves, no training")
    args = parser.parse_args(argv)
    cli.check_seed(args.seed)
    settings = all_settings = load_settings(args.settings)
    if args.only:
        by_name = {s.name: s for s in settings}
        missing = [n for n in args.only if n not in by_name]
        if missing:
            raise ValueError(f"--only {missing[0]!r} is not in {str(args.settings)!r} (names: {sorted(by_name)})")
        settings = [by_name[n] for n in args.only]
    if args.windows:
        for setting in settings:
            run_dir = run_dir_of(setting, args)
            if not (run_dir / "metrics.csv").exists():
                raise FileNotFoundError(f"{run_dir} holds no metrics.csv (has {setting.name!r} run with these seeds?)")
            print(f"{setting.name}, seeds {args.seed}-{args.seed + args.num_seeds - 1}, per {args.windows} updates:")
            print(window_table(run_dir, args.windows))
        return 0
    if args.curves or args.pooled:
        for setting in settings:
            if args.curves:
                out = curves_path(curves_dir_of(args.table), setting.name, args.seed, args.num_seeds)
                print(f"{setting.name}: curves -> {export_curves(run_dir_of(setting, args), out)}")
            if args.pooled:
                print(report_pooled(setting, range(args.seed, args.seed + args.num_seeds), args.table))
        return 0
    seeds = f"{args.seed}-{args.seed + args.num_seeds - 1}"
    check_table(args.table)
    done = {(r["name"], r["seeds"]) for r in read_table(args.table)}
    start = time.perf_counter()
    for setting in settings:
        if (setting.name, seeds) in done:
            print(f"[{setting.name}] seeds {seeds} already in {args.table}: skipped", flush=True)
            continue
        row = run_setting(setting, args, all_settings)
        if row is None:
            return 130
        append_row(args.table, row)
        export_curves(run_dir_of(setting, args), curves_path(curves_dir_of(args.table), setting.name, args.seed,
                                                             args.num_seeds))
        print(f"[{setting.name}] late return sociapl {row['sociapl_late']} | solo_pred {row['solo_pred_late']} | "
              f"vanilla {row['vanilla_late']}; criterion {'met' if row['criterion_met'] else 'not met'} "
              f"({row['train_wall_s']:.0f} s)", flush=True)
    print(f"search done in {time.perf_counter() - start:.0f} s; table: {args.table}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_or_exit(main))
