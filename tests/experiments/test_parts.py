"""A figure run in parts (experiments/parts.py): what ``--merge`` pools and what it refuses.
(The end-to-end check that two real parts merge into the whole run is in test_experiments.py,
beside the tiny figure4.py run it compares with.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sociajax.training import results

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))

import cli  # noqa: E402
import figure4  # noqa: E402
import parts  # noqa: E402


def _part(folder: Path, seeds: list[int], wall: float, level: float, **changes) -> Path:
    """A figure4.py run folder as the script leaves it: ``figure4.csv`` (every condition and
    seed, 10 updates, the novice's return ``level + seed``) and ``summary.json``."""
    rows = [{"condition": c, "seed": s, "update": u, "episodes": 64 * u, "env_steps": 4096 * u,
             "return": level + s, "expert_return": 10.0}
            for c in figure4.CONDITIONS for s in seeds for u in range(1, 11)]
    folder.mkdir(parents=True)
    results.write_csv(rows, folder / "figure4.csv")
    summary = {
        "figure": "4 (and 11)", "scale": "mini", "penalty": -1.5, "experts": "scripted",
        "num_seeds": len(seeds), "seeds": seeds, "episodes_per_run": 640, "updates": 10, "runs": 5 * len(seeds),
        "compiled_training_programs": 1, "train_wall_s": wall, "compile_s": 50.0, "cpu": "AMD EPYC (AVX-512)",
        "late_return": {c: level + sum(seeds) / len(seeds) for c in figure4.CONDITIONS},
        "levels": {"experts": 10.0, "il": level}, "claims": {"stale": True},
    }
    summary.update(changes)
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_merge_pools_seeds_sums_costs_and_leaves_the_claims_to_the_script(tmp_path: Path) -> None:
    a = _part(tmp_path / "a", [0, 1], wall=100.0, level=1.0)
    b = _part(tmp_path / "b", [2], wall=40.0, level=1.0)
    rows, summary = parts.merge([a, b], "figure4.csv", tmp_path / "m", recomputed=("levels", "claims"))
    assert summary["seeds"] == [0, 1, 2] and summary["num_seeds"] == 3 and summary["runs"] == 15
    assert summary["train_wall_s"] == 140.0 and summary["compile_s"] == 100.0
    assert "claims" not in summary and "levels" not in summary  # the script reads them from the rows
    # every seed weighs the same: (1 + 2 + 3) / 3, not the mean of the parts' 1.5 and 3
    assert summary["late_return"]["sociapl"] == pytest.approx(2.0)
    assert summary["late_return"]["sociapl"] == pytest.approx(results.late_mean(rows, "sociapl"))
    assert [p["seeds"] for p in summary["parts"]] == [[0, 1], [2]]
    assert [p["dir"] for p in summary["parts"]] == [str(a), str(b)]
    written = results.read_long_csv(tmp_path / "m" / "figure4.csv")
    assert written == rows and len(rows) == 5 * 3 * 10
    assert [r["condition"] for r in rows[:30]] == ["solo_pred"] * 30  # conditions in the script's order
    assert [r["seed"] for r in rows[:30]] == [0] * 10 + [1] * 10 + [2] * 10  # then seeds, updates within


def test_a_merged_folder_merges_again_so_a_figure_grows_a_seed_at_a_time(tmp_path: Path) -> None:
    first = parts.merge([_part(tmp_path / "a", [0], 10.0, 1.0), _part(tmp_path / "b", [1], 20.0, 1.0)],
                        "figure4.csv", tmp_path / "ab", recomputed=("levels", "claims"))[1]
    (tmp_path / "ab" / "summary.json").write_text(json.dumps(first))
    rows, summary = parts.merge([tmp_path / "ab", _part(tmp_path / "c", [2], 30.0, 1.0)], "figure4.csv",
                                tmp_path / "abc", recomputed=("levels", "claims"))
    assert summary["seeds"] == [0, 1, 2] and summary["train_wall_s"] == 60.0 and summary["runs"] == 15
    assert [p["dir"] for p in summary["parts"]] == [str(tmp_path / d) for d in ("a", "b", "c")]
    assert summary["late_return"]["il"] == pytest.approx(2.0) == results.late_mean(rows, "il")
    # a merged folder grows in place: read first, then written
    (tmp_path / "abc" / "summary.json").write_text(json.dumps(summary))
    _, grown = parts.merge([tmp_path / "abc", _part(tmp_path / "d", [3], 40.0, 1.0)], "figure4.csv", tmp_path / "abc",
                           recomputed=("levels", "claims"))
    assert grown["seeds"] == [0, 1, 2, 3] and len(results.read_long_csv(tmp_path / "abc" / "figure4.csv")) == 5 * 4 * 10


def test_merge_keeps_a_field_that_differs_only_per_part(tmp_path: Path) -> None:
    a = _part(tmp_path / "a", [0], wall=1.0, level=0.0, cpu="AMD EPYC (AVX-512)", cores=2, xla_flags="", run_loop="vmap")
    b = _part(tmp_path / "b", [1], wall=1.0, level=0.0, cpu="Intel Xeon (no AVX-512)", cores=1,
              xla_flags="--xla_cpu_multi_thread_eigen=false", run_loop="map")  # a part pinned to one core, side by side
    _, summary = parts.merge([a, b], "figure4.csv", tmp_path / "m")
    assert summary["cpu"] is None and summary["cores"] is None and summary["xla_flags"] is None  # each part's is listed
    assert summary["run_loop"] is None
    assert [p["cpu"] for p in summary["parts"]] == ["AMD EPYC (AVX-512)", "Intel Xeon (no AVX-512)"]
    assert [(p["cores"], p["xla_flags"], p["run_loop"]) for p in summary["parts"]] == [
        (2, "", "vmap"), (1, "--xla_cpu_multi_thread_eigen=false", "map")]


def test_merge_refuses_parts_of_different_figures_naming_the_field(tmp_path: Path) -> None:
    a = _part(tmp_path / "a", [0], wall=1.0, level=0.0)
    b = _part(tmp_path / "b", [1], wall=1.0, level=0.0, penalty=0.0)
    with pytest.raises(ValueError, match=r"'penalty' is -1.5 there and 0.0 here"):
        parts.merge([a, b], "figure4.csv", tmp_path / "m")
    assert not (tmp_path / "m").exists()  # nothing written


def test_merge_refuses_a_seed_held_twice_naming_both_parts(tmp_path: Path) -> None:
    a = _part(tmp_path / "a", [0, 1], wall=1.0, level=0.0)
    b = _part(tmp_path / "b", [1, 2], wall=1.0, level=0.0)
    with pytest.raises(ValueError, match=r"'.*a' and '.*b' both hold seed 1"):
        parts.merge([a, b], "figure4.csv", tmp_path / "m")


@pytest.mark.parametrize("case", ["one part", "into a part", "missing csv"])
def test_merge_refuses_bad_parts_by_name(case: str, tmp_path: Path) -> None:
    a = _part(tmp_path / "a", [0], wall=1.0, level=0.0)
    b = _part(tmp_path / "b", [1], wall=1.0, level=0.0)
    if case == "one part":
        with pytest.raises(ValueError, match="at least two part folders"):
            parts.merge([a], "figure4.csv", tmp_path / "m")
    elif case == "into a part":
        with pytest.raises(ValueError, match="--out-dir .* is a --merge part that is a run of its own"):
            parts.merge([a, b], "figure4.csv", b)
    else:
        (b / "figure4.csv").unlink()
        with pytest.raises(FileNotFoundError, match=r"part '.*b' has no figure4.csv"):
            parts.merge([a, b], "figure4.csv", tmp_path / "m")


def test_figure4_merge_reads_its_claims_over_every_seed(tmp_path: Path, capsys) -> None:
    a = _part(tmp_path / "a", [0, 1], wall=1.0, level=0.5)
    b = _part(tmp_path / "b", [2], wall=1.0, level=0.5)
    out = tmp_path / "m"
    assert cli.run_or_exit(figure4.main, ["--merge", str(a), str(b), "--out-dir", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    per_seed = summary["claims"]["late_return_per_seed"]["sociapl"]
    assert per_seed == {"0": 0.5, "1": 1.5, "2": 2.5}
    assert summary["claims"]["seeds_above_1"]["sociapl"] == 2
    assert summary["levels"] == {"experts": 10.0, "il": 1.5}
    assert (out / "figure4.png").stat().st_size > 1000
    assert "5 conditions x 3 seeds" in capsys.readouterr().out


def test_figure4_merge_flag_needs_an_out_dir_and_no_training_flags(tmp_path: Path, capsys) -> None:
    a = _part(tmp_path / "a", [0], wall=1.0, level=0.0)
    b = _part(tmp_path / "b", [1], wall=1.0, level=0.0)
    assert cli.run_or_exit(figure4.main, ["--merge", str(a), str(b)]) == 2
    assert "--merge needs --out-dir" in capsys.readouterr().err
    assert cli.run_or_exit(figure4.main, ["--merge", str(a), str(b), "--out-dir", str(tmp_path / "m"), "--resume"]) == 2
    assert "drop --resume" in capsys.readouterr().err
    assert cli.run_or_exit(figure4.main, ["--merge", str(a), str(b), "--out-dir", str(tmp_path / "m"), "--seed", "3"]) == 2
    assert "drop --seed" in capsys.readouterr().err
    assert cli.run_or_exit(figure4.main, ["--merge", str(a), str(b), "--out-dir", str(tmp_path / "m"),
                                          "--run-loop", "map"]) == 2
    assert "drop --run-loop" in capsys.readouterr().err


# ------------------------------------------------------- the other figures' --merge, on fake parts
def _rows_of(figure: str, seeds: list[int]) -> list[dict]:
    """Rows as each script writes them; the novice's return is ``seed`` (10 + seed beside
    the experts in the transfer panels) so a merged claim shows which seeds it read."""
    import figure5
    import figure6
    import figure7
    import figure9

    if figure == "figure5":
        return [{"condition": c, "seed": s, "update": u, "episodes": u, "env_steps": u, "return": float(s),
                 "expert_return": 5.0} for c in figure5.CONDITIONS for s in seeds for u in range(1, 11)]
    if figure == "figure7":
        return [{"condition": c, "seed": s, "update": u, "episodes": u, "env_steps": u, "setting": setting,
                 "return": float(s + u)} for u in (2, 4) for setting in figure7.SETTINGS
                for c in figure7.CONDITIONS for s in seeds]
    panels = figure9.SETTINGS if figure == "figure9" else figure6.WORLDS
    bars = figure9.CONDITIONS if figure == "figure9" else ("solo_pred", "sociapl", "il")
    return [{"condition": b, "seed": s, "env": panel, "partners": partners, "episodes": 8,
             "return": float(s) + (10.0 if partners not in ("none", "") else 0.0), "expert_return": 3.0}
            for panel, (_, partners) in panels.items() for b in bars for s in seeds]


def _fake_part(figure: str, folder: Path, seeds: list[int]) -> Path:
    import figure6

    folder.mkdir(parents=True)
    results.write_csv(_rows_of(figure, seeds), folder / f"{figure}.csv")
    if figure == "figure6":
        summary = {"figure": "6", "source": str(folder), "source_update": 10, "experts": "scripted",
                   "native_experts": "scripted", "episodes_per_seed": 8, "eval_seed": 0, "wall_s": 5.0,
                   "worlds": {p: {"env": w, "partners": q, "shape": {}} for p, (w, q) in figure6.WORLDS.items()}}
        (folder / "figure6.json").write_text(json.dumps(summary))
        return folder
    import importlib

    conditions = importlib.import_module(figure).CONDITIONS
    summary = {"figure": figure, "scale": "mini", "experts": "scripted", "penalty": -1.5, "imperfect": "oracles",
               "switch_episode": 3, "eval_episodes_per_seed": 8, "num_seeds": len(seeds), "seeds": seeds,
               "runs": len(conditions) * len(seeds), "compiled_training_programs": 1, "train_wall_s": 10.0,
               "late_return": {c: float(sum(seeds)) / len(seeds) for c in conditions}}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.mark.parametrize("figure", ["figure5", "figure6", "figure7", "figure9"])
def test_each_figure_merges_its_parts_and_reads_its_claims_over_every_seed(figure: str, tmp_path: Path) -> None:
    import importlib

    module = importlib.import_module(figure)
    a = _fake_part(figure, tmp_path / "a", [0, 1])
    b = _fake_part(figure, tmp_path / "b", [2])
    out = tmp_path / "merged"
    assert cli.run_or_exit(module.main, ["--merge", str(a), str(b), "--out-dir", str(out)]) == 0
    summary = json.loads((out / ("figure6.json" if figure == "figure6" else "summary.json")).read_text())
    assert len(results.read_long_csv(out / f"{figure}.csv", ("condition", "setting", "env", "partners"))) == \
        len(_rows_of(figure, [0, 1, 2]))
    assert list(out.glob("*.png"))
    if figure == "figure5":
        assert summary["claims"]["late_return_per_seed"]["sociapl"] == {"0": 0.0, "1": 1.0, "2": 2.0}
    elif figure == "figure7":
        assert summary["claims"]["final"]["3-goal solo"]["social"] == pytest.approx((4 + 5 + 6) / 3)
    elif figure == "figure9":
        assert summary["reliance_per_seed"]["penalty_0"] == {"0": 10.0, "1": 10.0, "2": 10.0}
        assert summary["transfer"]["GoalCycle-4 alone"]["penalty_0"]["per_seed"] == [0.0, 1.0, 2.0]
    else:
        assert summary["stats"]["Maze"]["sociapl"]["per_seed"] == [10.0, 11.0, 12.0]
        assert summary["wall_s"] == 10.0 and summary["source"] is None  # each part's source under "parts"
        assert [p["source"] for p in summary["parts"]] == [str(a), str(b)]


def _experts_part(folder: Path, seeds: list[int], oracle: float, **evaluation_changes) -> Path:
    """An experts.py run folder as the script leaves it: ``figure12.csv`` (the curriculum's
    return ``seed``, direct's ``-seed``) and ``summary.json`` with its evaluation."""
    import experts

    rows = [{"condition": c, "seed": s, "update": u, "episodes": u, "env_steps": u,
             "return": float(s if c == "curriculum" else -s), "penalty": -1.5}
            for c in experts.CONDITIONS for s in seeds for u in range(1, 11)]
    folder.mkdir(parents=True)
    results.write_csv(rows, folder / "figure12.csv")
    evaluation = {"env": "GoalCycle-3", "penalty": -1.5, "scripted_policy": "oracle", "episodes_per_seed": 8,
                  "updates": 10, "oracle": oracle,
                  "experts": {c: {"mean": 0.0, "per_seed": {str(s): float(s) for s in seeds}} for c in experts.CONDITIONS}}
    evaluation.update(evaluation_changes)
    summary = {"figure": "12 (appendix 7.5)", "scale": "mini", "learners": 1, "env": "GoalCycle-3",
               "conditions": list(experts.CONDITIONS), "curriculum": "-0.5,-1.0@3,-1.5@5", "final_penalty": -1.5,
               "num_seeds": len(seeds), "seeds": seeds, "runs": 2 * len(seeds), "train_wall_s": 10.0,
               "late_return": {c: 0.0 for c in experts.CONDITIONS}, "evaluation": evaluation}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_experts_merge_pools_the_evaluations_seed_by_seed(tmp_path: Path) -> None:
    import experts

    a = _experts_part(tmp_path / "a", [0, 1], oracle=10.0)
    b = _experts_part(tmp_path / "b", [2], oracle=13.0)
    out = tmp_path / "merged"
    assert cli.run_or_exit(experts.main, ["--merge", str(a), str(b), "--out-dir", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [0, 1, 2] and summary["runs"] == 6 and summary["train_wall_s"] == 20.0
    assert summary["late_return_per_seed"]["direct"] == {"0": 0.0, "1": -1.0, "2": -2.0}
    evaluation = summary["evaluation"]
    assert evaluation["experts"]["curriculum"] == {"mean": 1.0, "per_seed": {"0": 0.0, "1": 1.0, "2": 2.0}}
    assert evaluation["oracle"] == pytest.approx(11.0)  # every seed weighs the same
    assert (out / "figure12.png").stat().st_size > 1000


def test_experts_merge_refuses_parts_evaluated_apart_and_training_flags(tmp_path: Path, capsys) -> None:
    import experts

    a = _experts_part(tmp_path / "a", [0], oracle=10.0)
    b = _experts_part(tmp_path / "b", [1], oracle=10.0, episodes_per_seed=64)
    out = str(tmp_path / "m")
    assert cli.run_or_exit(experts.main, ["--merge", str(a), str(b), "--out-dir", out]) == 2
    assert "evaluation 'episodes_per_seed' is 8 there and 64 here" in capsys.readouterr().err
    c = _experts_part(tmp_path / "c", [1], oracle=10.0)
    for flag in (["--learners", "3"], ["--env", "Maze"], ["--run-loop", "map"]):
        assert cli.run_or_exit(experts.main, ["--merge", str(a), str(c), "--out-dir", out, *flag]) == 2
        assert f"drop {flag[0]}" in capsys.readouterr().err
