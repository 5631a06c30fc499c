"""Metric sinks of a run: ``metrics.csv`` (always), TensorBoard (optional), progress bar.

``metrics.csv`` has one row per update, condition, seed and agent. Columns: ``update``,
``episodes`` and ``env_steps`` (cumulative, per run), ``condition``, ``seed``, ``agent``,
``role``, ``return`` (mean episode return of that agent over the update's episodes it took
part in; empty if none), ``present`` (share of the update's episodes it took part in),
``presence`` and ``penalty`` (the schedules' values in force), ``episode_length``, ``sps``
(env steps per second of all runs over the chunk that produced the row), ``wall_s`` (seconds
since the run began, resumed segments included), then the learner's PPO metrics (empty for
other roles).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from sociajax.training.trainer import PPO_METRICS

COLUMNS = (
    "update", "episodes", "env_steps", "condition", "seed", "agent", "role", "return", "present", "presence",
    "penalty", "episode_length", "sps", "wall_s",
) + PPO_METRICS


def _number(value: float) -> Any:
    return "" if not np.isfinite(value) else float(value)


def chunk_rows(
    metrics: dict[str, np.ndarray],
    roles: tuple[str, ...],
    learner_agents: tuple[int, ...],
    first_update: int,
    env_steps_before: np.ndarray,
    seeds: np.ndarray,
    sps: float,
    wall_s: float,
    conditions: Optional[list[str]] = None,
    episodes_per_update: int = 0,
) -> list[dict[str, Any]]:
    """Rows of one chunk's metrics ([R, U, ...] arrays over runs) in :data:`COLUMNS` order;
    ``seeds`` and ``conditions`` name each run."""
    returns = metrics["return"]  # [R, U, A]
    num_runs, num_updates, num_agents = returns.shape
    conditions = conditions or ["base"] * num_runs
    steps = env_steps_before[:, None] + np.cumsum(metrics["env_steps"].astype(np.int64), 1)
    rows = []
    for u in range(num_updates):
        for s in range(num_runs):
            for a in range(num_agents):
                row = {
                    "update": first_update + u + 1,
                    "episodes": (first_update + u + 1) * episodes_per_update,
                    "env_steps": int(steps[s, u]),
                    "condition": conditions[s],
                    "seed": int(seeds[s]),
                    "agent": a,
                    "role": roles[a],
                    "return": _number(returns[s, u, a]),
                    "present": float(metrics["present"][s, u, a]),
                    "presence": float(metrics["presence"][s, u, a]),
                    "penalty": _number(metrics["penalty"][s, u]),
                    "episode_length": float(metrics["episode_length"][s, u]),
                    "sps": round(sps, 1),
                    "wall_s": round(wall_s, 3),
                }
                if a in learner_agents:
                    k = learner_agents.index(a)
                    row.update({name: float(metrics[name][s, u, k]) for name in PPO_METRICS})
                else:
                    row.update({name: "" for name in PPO_METRICS})
                rows.append(row)
    return rows


class MetricsCSV:
    """Appends rows to ``metrics.csv``, flushing after every chunk."""

    def __init__(self, path: str | os.PathLike, keep_through_update: Optional[int] = None) -> None:
        """Open for appending; with ``keep_through_update`` (a resume), first drop rows of
        updates after that one (written after the checkpoint that is being resumed)."""
        self.path = Path(path)
        if keep_through_update is not None and self.path.exists():
            with self.path.open(newline="") as f:
                kept = [
                    r for r in csv.DictReader(f)
                    if (r.get("update") or "").isdigit() and r.get(COLUMNS[-1]) is not None
                    and int(r["update"]) <= keep_through_update
                ]  # a row cut short by a crash is dropped
            self._write(kept, "w")
        elif keep_through_update is None:
            self._write([], "w")

    def _write(self, rows: Iterable[dict[str, Any]], mode: str) -> None:
        new = mode == "w" or not self.path.exists()
        with self.path.open(mode, newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerows(rows)

    def append(self, rows: list[dict[str, Any]]) -> None:
        self._write(rows, "a")


def read_metrics(path: str | os.PathLike) -> list[dict[str, str]]:
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def late_window_start(last_update: int, fraction: float) -> int:
    """The first update of the "late" window: the last ``fraction`` of ``last_update``
    updates, at least one. Every late number (the run's summary, the figures' claims, the
    search table) reads this window."""
    return last_update - max(1, round(fraction * last_update)) + 1


def late_returns(path: str | os.PathLike, fraction: float = 0.1) -> dict[str, list[float]]:
    """Per condition, per agent: the mean return over the last ``fraction`` of updates (at
    least one) and all seeds, from ``metrics.csv``. One update's return averages only
    ``num_envs`` episodes, too few to compare conditions by; NaN for an agent that took part
    in none of those episodes."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    rows = read_metrics(path)
    if not rows:
        return {}
    first = late_window_start(max(int(r["update"]) for r in rows), fraction)
    num_agents = 1 + max(int(r["agent"]) for r in rows)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    for r in rows:
        condition = r["condition"]
        if condition not in sums:
            sums[condition], counts[condition] = np.zeros(num_agents), np.zeros(num_agents)
        if int(r["update"]) >= first and r["return"] != "":
            sums[condition][int(r["agent"])] += float(r["return"])
            counts[condition][int(r["agent"])] += 1
    return {
        c: [float(s / n) if n else float("nan") for s, n in zip(sums[c], counts[c])] for c in sums
    }


class TensorBoard:
    """Seed-averaged scalars per agent, keyed by env steps (needs ``tensorboardX``)."""

    def __init__(self, log_dir: str | os.PathLike) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError as err:
            raise ImportError(
                "tensorboard=True needs the tensorboardX package: pip install tensorboardX"
            ) from err
        self.writer = SummaryWriter(str(log_dir))

    def write(self, rows: list[dict[str, Any]]) -> None:
        by_key: dict[tuple[int, str, int], list[dict[str, Any]]] = {}
        for row in rows:
            by_key.setdefault((row["update"], row["condition"], row["agent"]), []).append(row)
        for (_, condition, agent), group in sorted(by_key.items()):
            step = int(np.mean([r["env_steps"] for r in group]))
            prefix = f"agent{agent}" if condition == "base" else f"{condition}/agent{agent}"
            for name in ("return",) + PPO_METRICS:
                values = [r[name] for r in group if r[name] != ""]
                if values:
                    self.writer.add_scalar(f"{prefix}/{name}", float(np.mean(values)), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
