"""A figure trained in parts: the same figure run on disjoint seeds in separate folders (one
session each, when the whole does not fit one), then merged into one folder (``--merge``).

Every run of a figure draws its training randomness only from its own seed
(``PRNGKey(seed)``, whatever trains beside it), so seeds 0, 1 and 2 trained as three parts
are the same training runs as seeds 0-2 trained at once (on CPU their numbers are equal bit
for bit; tests/experiments/test_experiments.py checks it at tiny scale). Evaluations after training
(Figures 6, 7, 9) draw their fresh episodes per run index, so a part's seed meets other
layouts than it would in the whole: the same measurement, other samples.

:func:`merge` checks that the parts are one figure (every summary field that describes the
experiment equal), that no seed repeats, and concatenates their CSVs; the script then reads
its levels and claims from the merged rows, as it does after training. A merged folder is a
part too, so a figure can grow a seed at a time (its ``parts`` list carries over): only its
CSV and summary are read, so committed results are enough to merge into.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from sociajax.training import results

# Summary fields that describe one part's run, not the experiment: kept per part under
# "parts"; the merged summary sums the costs and pools the seeds.
SUMMED = ("runs", "train_wall_s", "compile_s", "script_wall_s", "eval_wall_s", "wall_s")
PER_PART = ("num_seeds", "seeds", "compiled_training_programs", "cpu", "cores", "xla_flags", "run_loop", "device", "source", "gifs",
            "experts_dir", "late_return", *SUMMED)


def _load(part: Path, csv_name: str, summary_name: str,
          text_columns: Sequence[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    summary_path, csv_path = part / summary_name, part / csv_name
    for path in (summary_path, csv_path):
        if not path.exists():
            raise FileNotFoundError(f"--merge part {str(part)!r} has no {path.name} (run the figure there first)")
    return json.loads(summary_path.read_text()), results.read_long_csv(csv_path, text_columns)


def merge(part_dirs: Sequence[Path], csv_name: str, out_dir: Path, recomputed: Sequence[str] = (),
          summary_name: str = "summary.json",
          text_columns: Sequence[str] = ("condition",)) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The merged rows (written to ``out_dir/csv_name``) and summary of ``part_dirs``.

    ``recomputed`` names the summary fields the script derives from the rows (claims,
    levels): they are not compared, and left for the script to fill in. Parts that differ in
    any other field, or share a seed, are refused with an error naming both. The rows keep
    the first part's order of conditions, then go by seed (each part's own order within).
    ``out_dir`` may be one of the parts if that one is a merged folder (it grows in place;
    everything is read before anything is written), never a run folder of its own.
    """
    part_dirs = [Path(p) for p in part_dirs]
    if len(part_dirs) < 2:
        raise ValueError(f"--merge needs at least two part folders, got {[str(p) for p in part_dirs]}")
    loaded = [_load(part, csv_name, summary_name, text_columns) for part in part_dirs]
    for part, (summary, _) in zip(part_dirs, loaded):
        if Path(out_dir).resolve() == part.resolve() and "parts" not in summary:
            raise ValueError(f"--out-dir {str(out_dir)!r} is a --merge part that is a run of its own; "
                             "merge into a new folder, or into a merged one (which grows)")
    skip = set(PER_PART) | set(recomputed) | {"parts"}
    first_dir, (first, _) = part_dirs[0], loaded[0]
    for part, (summary, _) in zip(part_dirs[1:], loaded[1:]):
        for key in sorted((set(first) | set(summary)) - skip):
            if first.get(key) != summary.get(key):
                raise ValueError(f"--merge parts {str(first_dir)!r} and {str(part)!r} are not one figure: "
                                 f"{key!r} is {first.get(key)!r} there and {summary.get(key)!r} here")
    owner: dict[int, Path] = {}
    for part, (_, rows) in zip(part_dirs, loaded):
        for seed in sorted({int(r["seed"]) for r in rows}):
            if seed in owner:
                raise ValueError(f"--merge parts {str(owner[seed])!r} and {str(part)!r} both hold seed {seed}")
            owner[seed] = part
    pooled = [r for _, part_rows in loaded for r in part_rows]
    order = {c: i for i, c in enumerate(dict.fromkeys(r["condition"] for r in pooled))}
    rows = sorted(pooled, key=lambda r: (order[r["condition"]], r["seed"]))  # stable: a part's order within
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    results.write_csv(rows, Path(out_dir) / csv_name)
    return rows, _merged_summary(part_dirs, [s for s, _ in loaded], sorted(owner), recomputed)


def _merged_summary(part_dirs: Sequence[Path], summaries: Sequence[Mapping[str, Any]], seeds: list[int],
                    recomputed: Sequence[str]) -> dict[str, Any]:
    """The first part's summary with the seeds pooled, costs summed, each part's own fields
    listed under ``parts`` and the late return averaged over all seeds."""
    merged = {k: v for k, v in summaries[0].items() if k not in recomputed}
    present = [k for k in PER_PART if any(k in s for s in summaries)]
    for key in present:
        values = [s.get(key) for s in summaries]
        merged[key] = values[0] if all(v == values[0] for v in values) else None
    for key in SUMMED:
        if key in merged or any(key in s for s in summaries):
            total = sum(s.get(key) or 0 for s in summaries)
            merged[key] = total if key == "runs" else round(float(total), 1)
    if "seeds" in merged or "num_seeds" in merged:
        merged["seeds"], merged["num_seeds"] = seeds, len(seeds)
    if any("late_return" in s for s in summaries):
        merged["late_return"] = _pooled_late_return(summaries)
    merged["parts"] = [entry for d, s in zip(part_dirs, summaries) for entry in s.get("parts") or
                       [{"dir": str(d), **{k: s[k] for k in present if k in s and k != "late_return"}}]]
    return merged


def _pooled_late_return(summaries: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Each condition's late return over all the parts' seeds: every seed weighs the same
    (a part's value is already the mean over its seeds)."""
    pooled: dict[str, float] = {}
    for condition in summaries[0]["late_return"]:
        weights = [len(s.get("seeds") or []) or int(s.get("num_seeds", 1)) for s in summaries]
        values = [float(s["late_return"][condition]) for s in summaries]
        pooled[condition] = sum(w * v for w, v in zip(weights, values)) / sum(weights)
    return pooled
