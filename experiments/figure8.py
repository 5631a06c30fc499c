"""Paper Figure 8 (appendix 7.1): the novice's auxiliary prediction loss over training, from a Figure 4 run.

    python experiments/figure8.py --scale tiny|mini|small|paper [--experts scripted|trained]
                                  [--figure4-dir DIR] [--out-dir DIR]

Figure 8 reads the SociAPL seeds of Figure 4's training, so this script trains nothing: it
reads ``figure4.csv`` (column ``aux_loss``: the novice's mean absolute error per frame,
logged every update) of the figure4.py run folder for ``--scale`` and ``--experts``
(default ``runs/figures/figure4[-trained]-<scale>``, or ``--figure4-dir``), and writes to
``--out-dir`` (default: that same folder):

* ``figure8.png``: SociAPL's loss per seed (faded) and its mean (bold) against episodes;
* ``figure8.csv``: the rows behind it, long format (``condition, seed, update, episodes,
  env_steps, return, aux_loss``) for every condition with an auxiliary loss (SociAPL,
  SOCIAL + REC, SOLO + PRED);
* ``figure8.json``: per condition and seed, the claim's two halves read from the loss:
  ``late_over_early`` (mean loss over the last 10% of updates over the first 10%: below 1,
  it fell) and ``largest_rise`` (the largest rise of the smoothed loss above its lowest value
  so far, as a fraction of that low: how non-stationary it is).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from sociajax.training import results
from sociajax.viz import figures

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script

import cli  # noqa: E402

AUX_CONDITIONS = ("sociapl", "social_rec", "solo_pred")  # Figure 4's conditions with an auxiliary loss
LABELS = {"sociapl": "SociAPL (aux PRED)", "social_rec": "SOCIAL + aux REC", "solo_pred": "SOLO + aux PRED"}


def loss_summary(rows: Sequence[Mapping[str, Any]], condition: str, fraction: float = 0.1) -> dict[int, dict[str, float]]:
    """Per seed of ``condition``: ``early`` and ``late`` (mean loss over the first and last
    ``fraction`` of updates), ``late_over_early``, and ``largest_rise``: the largest value of
    smoothed[t] / min(smoothed[:t]) - 1 (trailing mean over a 20th of the run), i.e. how far
    the loss climbs back after it has fallen."""
    out: dict[int, dict[str, float]] = {}
    for seed in sorted({r["seed"] for r in rows if r["condition"] == condition}):
        picked = sorted((r for r in rows if r["condition"] == condition and r["seed"] == seed), key=lambda r: r["update"])
        loss = np.array([r["aux_loss"] for r in picked], np.float64)
        if np.isnan(loss).all():
            raise ValueError(f"condition {condition!r} seed {seed} has no aux_loss values")
        span = max(1, round(fraction * len(loss)))
        early, late = float(np.nanmean(loss[:span])), float(np.nanmean(loss[-span:]))
        smooth = figures.moving_average(loss, max(1, len(loss) // 20))
        lowest = np.fmin.accumulate(smooth)
        out[seed] = {
            "early": early,
            "late": late,
            "late_over_early": late / early if early > 0 else math.nan,
            "largest_rise": float(np.nanmax(smooth / lowest - 1.0)),
        }
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = cli.figure4_reader_parser(__doc__)
    args = parser.parse_args(argv)
    source = cli.figure4_dir_of(args)
    csv_path = source / "figure4.csv"
    if not csv_path.exists():
        raise FileNotFoundError(
            f"--figure4-dir {str(source)!r} has no figure4.csv; run "
            f"`python experiments/figure4.py --scale {args.scale}` first (Figure 8 reads its SociAPL seeds)"
        )
    out_dir = Path(args.out_dir) if args.out_dir else source
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = results.read_long_csv(csv_path)
    present = [c for c in AUX_CONDITIONS if any(r["condition"] == c for r in rows)]
    if "sociapl" not in present:
        raise ValueError(f"{str(csv_path)!r} has no 'sociapl' rows (conditions: {sorted({r['condition'] for r in rows})})")
    keep = ("condition", "seed", "update", "episodes", "env_steps", "return", "aux_loss")
    results.write_csv([{k: r[k] for k in keep} for r in rows if r["condition"] in present], out_dir / "figure8.csv")
    summary = {"source": str(csv_path), **{c: loss_summary(rows, c) for c in present}}
    (out_dir / "figure8.json").write_text(json.dumps(summary, indent=2))
    png = figures.plot_seeds_and_means(
        rows, out_dir / "figure8.png", ("sociapl",), f"Figure 8: SociAPL's auxiliary loss over training\n(from {source})",
        column="aux_loss", ylabel="next-view prediction error (MAE per frame)", labels=LABELS,
    )
    print(png)
    for condition in present:
        for seed, s in summary[condition].items():
            print(f"  {LABELS[condition]:<20} seed {seed}: loss {s['early']:.4f} -> {s['late']:.4f} "
                  f"(x{s['late_over_early']:.2f}), largest rise {100 * s['largest_rise']:.0f}% above its low")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_or_exit(main))
