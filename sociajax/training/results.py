"""A run's results in long format: one row per condition, seed and update.

A run's ``metrics.csv`` (:mod:`sociajax.training.logging`) has one row per update, condition,
seed *and agent*, with every metric of every agent. A figure or a comparison wants fewer,
named columns: the novice's return, the experts' mean return, one auxiliary loss. These
helpers turn ``metrics.csv`` into those rows (:func:`long_rows`), write and read them as a
CSV that a plot can be redrawn from without training (:func:`write_csv`,
:func:`read_long_csv`), and read a condition's level from them: the mean over its last
updates and all seeds (:func:`late_mean`), or seed by seed (:func:`per_seed_late_means`),
since one update averages only ``num_envs`` episodes, too few to read a level from.
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from sociajax.training.logging import late_window_start, read_metrics

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
    first = late_window_start(max(r["update"] for r in picked), fraction)
    values = [r[column] for r in picked if r["update"] >= first and not math.isnan(r[column])]
    return float(np.mean(values)) if values else math.nan


def per_seed_late_means(rows: Sequence[Mapping[str, Any]], condition: str, column: str = "return", fraction: float = 0.1) -> dict[int, float]:
    """:func:`late_mean` of each seed of ``condition`` apart (the paper reads its claims
    seed by seed: "all seeds below 1", "most seeds above the experts")."""
    seeds = sorted({r["seed"] for r in rows if r["condition"] == condition})
    return {s: late_mean([r for r in rows if r["seed"] == s], condition, column, fraction) for s in seeds}
