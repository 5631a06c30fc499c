"""experiments/search.py: the settings file, the criterion, one program per setting, and the
table end to end at a tiny budget (a row written, a setting skipped once done, an interrupted
setting continued exactly with --resume)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))

import cli  # noqa: E402
import runs  # noqa: E402
import search  # noqa: E402

TINY = {"max_steps": 16, "num_envs": 2, "num_minibatches": 2, "minibatch_segments": 2, "recompute_every": 1,
        "env_steps": 3 * 2 * 16}


def _settings(tmp_path: Path, *entries: dict) -> Path:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(list(entries)))
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    "late, met",
    [
        ({"sociapl": [5.0, 4.9, 0.5], "solo_pred": [0.9, 0.8, 0.9], "vanilla": [0.6, 0.7, 0.6]}, True),
        ({"sociapl": [5.0, 0.9, 0.5], "solo_pred": [0.0, 0.0, 0.0], "vanilla": [0.0, 0.0, 0.0]}, False),  # 1 of 3 above 1
        ({"sociapl": [2.0, 2.0, 2.0], "solo_pred": [1.5, 1.5, 1.5], "vanilla": [0.0, 0.0, 0.0]}, False),  # solo too close
        ({"sociapl": [2.0, 2.0, 2.0], "solo_pred": [0.0, 0.0, 0.0], "vanilla": [1.2, 1.2, 1.2]}, False),  # vanilla too close
        ({"sociapl": [3, 3, 3, 3, 0], "solo_pred": [0] * 5, "vanilla": [0] * 5}, True),  # 4 of 5
        ({"sociapl": [5, 5, 5, 0, 0], "solo_pred": [0] * 5, "vanilla": [0] * 5}, False),  # 3 of 5 is under two thirds
    ],
)
def test_the_criterion_is_the_one_written_down(late, met) -> None:
    assert search.meets_criterion(late) is met


def test_the_default_setting_is_the_7x7_trial_and_one_program(tmp_path: Path) -> None:
    setting = search.load_settings(search.DEFAULT_SETTINGS)[0]
    config = search.train_config(setting, 0, 3, tmp_path / "run")
    assert (config.env.size, config.env.n_walls, config.env.max_steps, config.env.penalty) == (7, 0, 64, "-1.5")
    assert (config.ppo.num_envs, config.ppo.num_minibatches, config.ppo.minibatch_segments) == (64, 8, 32)
    assert config.agents[0].lr == 1e-3 and config.ppo.entropy_coef == 1e-3
    assert config.total_env_steps // (64 * 64) == setting.updates == 391
    runs.check_one_program(config)
    from sociajax.training.config import condition_configs

    named = dict(condition_configs(config))
    assert list(named) == list(search.CONDITIONS)
    assert [float(a.presence) for a in named["solo_pred"].agents] == [1, 0, 0]
    assert named["vanilla"].agents[0].aux is False and named["sociapl"].agents[0].aux is True


@pytest.mark.parametrize(
    "entries, message",
    [
        ([{"name": "a", "sise": 7}], "unknown field 'sise'"),
        ([{"name": "a"}, {"name": "a"}], "name 'a' appears twice"),
        ([{"size": 7}], "entry 0 has no name"),
        ([{"name": "a b"}], "name must be"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, entries, message) -> None:
    with pytest.raises(ValueError, match=message):
        search.load_settings(_settings(tmp_path, *entries))


def test_search_end_to_end_writes_a_row_skips_it_and_resumes_exactly(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"name": "tiny", **TINY}, {"name": "tiny-move", "action_set": "move", **TINY})
    table = tmp_path / "search.csv"
    common_args = ["--settings", str(settings), "--num-seeds", "2", "--runs-dir", str(tmp_path / "runs"),
                   "--table", str(table), "--no-progress"]
    assert search.main([*common_args, "--only", "tiny"]) == 0
    (row,) = _rows(table)
    assert row["name"] == "tiny" and row["seeds"] == "0-1" and row["updates"] == "3"
    for condition in search.CONDITIONS:
        assert len(row[f"{condition}_late"].split(";")) == 2
    assert row["criterion_met"] in ("True", "False") and row["cpu"] and int(row["env_steps_per_run"]) == 96
    assert list(row) == search.COLUMNS
    saved = json.loads((tmp_path / "runs" / "tiny-s0x2" / "search_row.json").read_text())
    assert saved["sociapl_late"] == row["sociapl_late"]  # the row is kept beside the run too
    # the novice's curve is kept beside the table, one row per condition, seed and update
    curve = tmp_path / "curves" / "tiny-s0x2.csv"
    curve_rows = _rows(curve)
    assert len(curve_rows) == 3 * 2 * 3 and {r["condition"] for r in curve_rows} == set(search.CONDITIONS)
    written = curve.read_text()
    curve.unlink()
    assert search.main([*common_args, "--only", "tiny", "--curves"]) == 0  # written again from the run folder
    assert curve.read_text() == written
    # done settings are skipped, so the table keeps one row per setting and seeds
    assert search.main([*common_args, "--only", "tiny"]) == 0
    assert len(_rows(table)) == 1

    # an interrupted setting: its run folder holds 1 of 3 updates; without --resume it is refused
    setting = search.load_settings(settings)[1]
    run_dir = tmp_path / "runs" / "tiny-move-s0x2"
    partial = search.train_config(setting, 0, 2, run_dir, progress=False)
    from dataclasses import replace

    from sociajax.training.run import train

    train(replace(partial, total_env_steps=2 * 16))
    with pytest.raises(FileExistsError, match="--resume"):
        search.main([*common_args, "--only", "tiny-move"])
    assert search.main([*common_args, "--only", "tiny-move", "--resume"]) == 0
    rows = _rows(table)
    assert [r["name"] for r in rows] == ["tiny", "tiny-move"]
    # the resumed run equals one trained straight through
    straight = tmp_path / "straight"
    train(search.train_config(setting, 0, 2, straight, progress=False))
    assert search.late_returns_per_seed(run_dir) == search.late_returns_per_seed(straight)
    assert rows[1]["sociapl_late"] == ";".join(f"{v:.3f}" for v in search.late_returns_per_seed(straight)["sociapl"])


def test_unknown_only_name_is_refused(tmp_path: Path, capsys) -> None:
    settings = _settings(tmp_path, {"name": "tiny", **TINY})
    code = cli.run_or_exit(search.main, ["--settings", str(settings), "--only", "nope", "--table",
                                                   str(tmp_path / "t.csv")])
    assert code == 2 and "--only 'nope'" in capsys.readouterr().err


def test_a_table_of_other_columns_is_refused_before_training(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"name": "tiny", **TINY})
    table = tmp_path / "search.csv"
    table.write_text("name,other\nx,1\n")
    with pytest.raises(ValueError, match="--table .* its columns \\['name', 'other'\\]"):
        search.main(["--settings", str(settings), "--table", str(table), "--runs-dir", str(tmp_path / "runs")])
    assert not (tmp_path / "runs").exists()  # nothing trained
    # a table that holds only its header gets rows, not a second header
    table.write_text(",".join(search.COLUMNS) + "\n")
    row = {c: "0" for c in search.COLUMNS}
    search.append_row(table, row)
    assert table.read_text().count("name,") == 1 and len(_rows(table)) == 1


def test_a_continuing_setting_extends_its_parent_exactly(tmp_path: Path, capsys) -> None:
    longer = {**TINY, "env_steps": 5 * 2 * 16}
    settings = _settings(tmp_path, {"name": "tiny", **TINY}, {"name": "tiny-longer", "continues": "tiny", **longer})
    table = tmp_path / "search.csv"
    common_args = ["--settings", str(settings), "--num-seeds", "2", "--runs-dir", str(tmp_path / "runs"),
                   "--table", str(table), "--no-progress"]
    with pytest.raises(FileNotFoundError, match="holds no finished run of it"):
        search.main([*common_args, "--only", "tiny-longer"])  # the parent has not run
    assert search.main([*common_args, "--only", "tiny", "tiny-longer"]) == 0
    rows = _rows(table)
    assert [(r["name"], r["updates"], r["continues"]) for r in rows] == [("tiny", "3", ""), ("tiny-longer", "5", "tiny")]
    # the parent's folder is untouched; the continued run equals one trained 5 updates straight
    parent_late = search.late_returns_per_seed(tmp_path / "runs" / "tiny-s0x2")["sociapl"]
    assert rows[0]["sociapl_late"] == ";".join(f"{v:.3f}" for v in parent_late)
    assert json.loads((tmp_path / "runs" / "tiny-longer-s0x2" / "config.json").read_text())["run_dir"] == str(
        tmp_path / "runs" / "tiny-longer-s0x2")
    from dataclasses import replace

    from sociajax.training.run import train

    straight = tmp_path / "straight"
    setting = replace(search.setting_named("tiny-longer", settings), continues="")
    train(search.train_config(setting, 0, 2, straight, progress=False))
    assert search.late_returns_per_seed(tmp_path / "runs" / "tiny-longer-s0x2") == search.late_returns_per_seed(straight)
    # --windows prints the returns per window of updates, without training
    capsys.readouterr()
    assert search.main([*common_args, "--only", "tiny-longer", "--windows", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1] == "| updates | sociapl | solo_pred | vanilla |"
    assert [line.split(" | ")[0] for line in table[3:]] == ["| 1-2", "| 3-4", "| 5-5"]
    assert all(len(cell.split(", ")) == 2 for line in table[3:] for cell in line.strip("| ").split(" | ")[1:])


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"name": "b", "continues": "nope"}, "continues 'nope', which is not in the file"),
        ({"name": "b", "continues": "a", "lr": 3e-4, "env_steps": 10**7}, "differs in 'lr'"),
        ({"name": "b", "continues": "a", "env_steps": 1000}, "not more than 'a'"),
    ],
)
def test_bad_continuing_settings_are_named(tmp_path: Path, entry, message) -> None:
    with pytest.raises(ValueError, match=message):
        search.load_settings(_settings(tmp_path, {"name": "a"}, entry))


def _part(name: str, seeds: str, **late: str) -> dict[str, str]:
    row = {c: "" for c in search.COLUMNS}
    row.update(name=name, seeds=seeds, **{f"{c}_late": v for c, v in late.items()})
    return row


def test_a_confirmation_run_in_parts_is_judged_on_all_its_seeds(tmp_path: Path, capsys) -> None:
    settings = _settings(tmp_path, {"name": "s"})
    table = tmp_path / "search.csv"
    search.append_row(table, _part("s", "0-2", sociapl="9;9;9", solo_pred="0;0;0", vanilla="0;0;0"))  # the search's
    search.append_row(table, _part("s", "1000-1001", sociapl="3.0;4.0", solo_pred="0.9;0.8", vanilla="0.5;0.6"))
    search.append_row(table, _part("s", "1002-1004", sociapl="0.5;2.0;3.0", solo_pred="1;1;1", vanilla="0.7;0.7;0.7"))
    late = search.pooled_late(search.read_table(table), "s", range(1000, 1005))
    assert late == {"sociapl": [3.0, 4.0, 0.5, 2.0, 3.0], "solo_pred": [0.9, 0.8, 1, 1, 1],
                    "vanilla": [0.5, 0.6, 0.7, 0.7, 0.7]}
    assert search.meets_criterion(late)  # 4 of 5 above 1, mean 2.5 against 0.94 and 0.64
    with pytest.raises(ValueError, match="no row of the table holds seed 1005"):
        search.pooled_late(search.read_table(table), "s", range(1000, 1006))

    # the pooled verdict and figure from the command line, the curves read from their parts
    (tmp_path / "curves").mkdir()
    for first, count in ((1000, 2), (1002, 3)):
        rows = [{"condition": c, "seed": seed, "update": u, "episodes": 64 * u, "env_steps": 4096 * u, "return": 1.0}
                for c in search.CONDITIONS for seed in range(first, first + count) for u in (1, 2)]
        search.results.write_csv(rows, search.curves_path(tmp_path / "curves", "s", first, count))
    common = ["--settings", str(settings), "--table", str(table), "--only", "s", "--seed", "1000"]
    assert search.main([*common, "--num-seeds", "5", "--pooled"]) == 0
    out = capsys.readouterr().out
    assert "sociapl    3.00, 4.00, 0.50, 2.00, 3.00  (mean 2.50)" in out and "criterion met" in out
    assert (tmp_path / "curves" / "s-s1000x5.png").stat().st_size > 0
    # any range its rows tile can be judged: the first part alone (both of 2 seeds above 1)
    assert search.main([*common, "--num-seeds", "2", "--pooled"]) == 0
    assert "criterion met" in capsys.readouterr().out
    # but not one that cuts a row
    with pytest.raises(ValueError, match="no row of the table holds seed 1002"):
        search.main([*common, "--num-seeds", "4", "--pooled"])

    search.append_row(table, _part("s", "1004-1004", sociapl="5", solo_pred="0", vanilla="0"))
    with pytest.raises(ValueError, match="seed 1004 is in two rows"):
        search.pooled_late(search.read_table(table), "s", range(1000, 1005))


def test_the_miniature_preset_is_the_mini_scale_setting(tmp_path: Path) -> None:
    """The README's main job (the ``miniature`` preset) trains the search's chosen setting:
    the same world, PPO schedule, novice and experts, its first two conditions, a shorter
    budget that ``--resume --total-env-steps`` extends to the setting's."""
    import scales

    from sociajax.training.presets import get_preset

    preset = get_preset("miniature")
    setting = search.setting_named(scales.MINI_SETTING)
    config = search.train_config(setting, 0, 1, tmp_path)
    assert preset.env == config.env and preset.ppo == config.ppo and preset.agents[1:] == config.agents[1:]
    assert (preset.agents[0].role, preset.agents[0].lr) == (config.agents[0].role, config.agents[0].lr)
    assert list(preset.conditions) == list(config.conditions[:2])
    assert preset.total_env_steps % (setting.num_envs * setting.max_steps) == 0
    assert preset.total_env_steps < config.total_env_steps == 3_203_072
