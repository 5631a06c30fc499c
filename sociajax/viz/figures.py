"""Figures of long-format rows (one per condition, seed and update; see
``sociajax.training.results``): per condition, each seed as a faded line and the mean over
seeds bold, against episodes trained. The figure scripts of ``experiments/`` draw the paper's
figures with these; rows are plain mappings, so nothing here reads a run folder.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np


def moving_average(y: np.ndarray, window: int) -> np.ndarray:
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
    """Lay ``fig`` out tightly, save it as ``out_png`` and close it."""
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
        y = np.stack([moving_average(line, window) for line in y])
        colour = colours[index % len(colours)]
        for line in y:
            ax.plot(episodes, line, color=colour, alpha=0.3, linewidth=0.8)
        with warnings.catch_warnings():  # points where no seed has a value stay NaN (gaps)
            warnings.simplefilter("ignore", category=RuntimeWarning)
            mean = np.nanmean(y, 0)
        count = f"{len(seeds)} seed" + ("" if len(seeds) == 1 else "s")
        ax.plot(episodes, mean, color=colour, linewidth=2.4, label=f"{labels.get(condition, condition)} ({count})")
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
