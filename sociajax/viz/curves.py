"""Learning curves from a run's ``metrics.csv``: mean over seeds with a 95% confidence band."""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from typing import Optional

import numpy as np

# Two-sided 95% Student-t quantiles for 1..30 degrees of freedom (then the normal's 1.96):
# with the few seeds of a sweep the normal band would be far too narrow.
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
    2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
    2.045, 2.042,
)


def t95(dof: int) -> float:
    """Two-sided 95% Student-t quantile for ``dof`` degrees of freedom."""
    if dof < 1:
        return float("nan")
    return _T95[dof - 1] if dof <= len(_T95) else 1.96


def mean_ci(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and half-width of its 95% t-interval along ``axis`` (half-width 0 for one sample)."""
    values = np.asarray(values, np.float64)
    n = values.shape[axis]
    mean = values.mean(axis)
    if n < 2:
        return mean, np.zeros_like(mean)
    sem = values.std(axis, ddof=1) / np.sqrt(n)
    return mean, t95(n - 1) * sem


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or y.shape[-1] < window:
        return y
    kernel = np.ones(window) / window
    pad = np.concatenate([np.repeat(y[..., :1], window - 1, -1), y], -1)
    return np.apply_along_axis(lambda r: np.convolve(r, kernel, "valid"), -1, pad)


def plot_learning_curves(
    metrics_csv: str | os.PathLike,
    out_png: str | os.PathLike,
    title: Optional[str] = None,
    smooth: int = 5,
    references: Optional[dict[str, float]] = None,
) -> str:
    """Episode return against env steps, one line per condition and agent (mean over seeds,
    95% CI band across seeds), moving-average smoothed over ``smooth`` updates;
    ``references`` draws labelled horizontal lines (e.g. a random policy's return). Updates
    where an agent took part in no episode are gaps. Returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{metrics_csv} has no rows to plot")
    series: dict[tuple[str, int, str], dict[int, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    steps: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        update, seed, agent = int(row["update"]), int(row["seed"]), int(row["agent"])
        condition = row.get("condition") or "base"
        value = float(row["return"]) if row["return"] not in ("", None) else np.nan
        series[(condition, agent, row["role"])][seed][update] = value
        if agent == 0:
            steps[update].append(int(row["env_steps"]))
    updates = sorted(steps)
    x = np.array([np.mean(steps[u]) for u in updates])
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    conditions = {c for c, _, _ in series}
    for (condition, agent, role), by_seed in sorted(series.items()):
        seeds = sorted(by_seed)
        y = np.array([[by_seed[s].get(u, np.nan) for u in updates] for s in seeds])
        if np.isnan(y).all():
            continue  # never present
        y = _smooth(y, smooth)
        mean, half = mean_ci(y, 0)
        label = f"agent {agent} ({role})" if conditions == {"base"} else f"{condition}: agent {agent} ({role})"
        (line,) = ax.plot(x, mean, label=label)
        if len(seeds) > 1:
            ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.2)
    for label, value in (references or {}).items():
        ax.axhline(value, color="gray", linestyle="--", linewidth=1)
        ax.annotate(label, (x[0], value), textcoords="offset points", xytext=(2, 3), fontsize=8, color="gray")
    num_seeds = len({int(r["seed"]) for r in rows})
    ax.set_xlabel("env steps (per seed)")
    ax.set_ylabel("episode return")
    ax.set_title(title or f"learning curves ({num_seeds} seed{'s' if num_seeds > 1 else ''}, mean ± 95% CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    out_png = str(out_png)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png
