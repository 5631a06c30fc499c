"""The figure scripts of ``experiments/``: scales, curriculum, long CSV, claims, bad input
(fast); every script end to end at ``tiny`` scale (default suite: experts.py, figure4.py with
scripted experts and Figures 2, 6 and 8 drawn from its run folder, figure5.py, figure7.py);
figure4.py and figure5.py with trained experts end to end (slow: each compiles a program of
three learners, one to three minutes on 2 shared CPU cores)."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sociajax.training import results
from sociajax.viz import figures

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))

import cli  # noqa: E402
import configs  # noqa: E402
import experts  # noqa: E402
import figure2  # noqa: E402
import figure4  # noqa: E402
import figure5  # noqa: E402
import figure6  # noqa: E402
import figure7  # noqa: E402
import figure8  # noqa: E402
import figure9  # noqa: E402
import runs  # noqa: E402
import scales  # noqa: E402

REQUIRED = ("condition", "seed", "episodes", "env_steps", "return")


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# XLA's cheapest CPU compile: the scripts' runs are compile-bound, their numbers are not checked.
FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def _run_script(*args: str) -> subprocess.CompletedProcess:
    """A script as a user runs it, importing this checkout's package (fastest compiles)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), XLA_FLAGS=FAST_COMPILE_FLAGS)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)

def _tiny_run(script: str, out: Path, *flags: str) -> Path:
    """``experiments/<script>.py --scale tiny --out-dir out [flags]``, which must succeed; ``out``."""
    result = _run_script(f"experiments/{script}.py", "--scale", "tiny", "--out-dir", str(out), *flags)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def _run_with_trained_experts(figure: str, experts_run: Path, tmp_path: Path) -> Path:
    """``experiments/<figure>.py`` at tiny scale with the experts of ``experts_run``; its out dir."""
    return _tiny_run(figure, tmp_path / f"{figure}-trained", "--experts", "trained", "--experts-dir", str(experts_run))


def _check_replot(script: str, out: Path, png: str) -> None:
    """``script --replot`` redraws ``png`` from the out dir's CSV alone."""
    (out / png).unlink()
    again = _run_script(script, "--replot", "--out-dir", str(out))
    assert again.returncode == 0, again.stderr
    assert (out / png).stat().st_size > 1000



# ---------------------------------------------------------------------- fast
def test_paper_scale_is_the_appendix_schedule() -> None:
    scale = scales.get_scale("paper", "figure4")
    ppo = scale.ppo
    assert (ppo.num_envs, ppo.num_minibatches, ppo.minibatch_segments, ppo.segment_len) == (128, 20, 512, 16)
    assert scale.novice_lr == 1e-4 and scale.penalty == -1.5 and scale.episode_steps == 250
    assert scale.num_seeds == 5 and not scale.measured


def test_every_scale_and_figure_builds_and_tiny_is_tiny() -> None:
    for figure in scales.EPISODES:
        for name in scales.SCALES:
            scale = scales.get_scale(name, figure)
            assert scale.total_env_steps % (scale.ppo.num_envs * scale.episode_steps) == 0
            assert scale.num_updates * scale.ppo.num_envs >= scale.episodes
            assert scale.num_seeds >= (3 if name != "tiny" else 2)
        tiny = scales.get_scale("tiny", figure)
        assert tiny.total_env_steps <= 8 * 2 * 16 and tiny.max_steps == 16
    assert not scales.get_scale("small", "figure4").measured


def test_mini_figures_default_to_seeds_the_search_never_looked_at() -> None:
    parser = cli.make_parser("")
    for argv, seed in ((["--scale", "mini"], 2000), (["--scale", "mini", "--seed", "5"], 5), ([], 0)):
        args = parser.parse_args(argv)
        cli.scale_of(args, "figure4")
        assert args.seed == seed, argv


def test_bad_scale_or_figure_names_the_value() -> None:
    with pytest.raises(ValueError, match="--scale must be one of .* got 'huge'"):
        scales.get_scale("huge", "figure4")
    with pytest.raises(ValueError, match="figure must be one of .* got 'fig9'"):
        scales.get_scale("tiny", "fig9")


def test_curriculum_switches_at_the_papers_episodes_at_paper_scale() -> None:
    assert experts.curriculum_schedule(327_680, 128) == "-0.5,-1.0@81920,-1.5@163840"


def test_curriculum_switches_on_whole_updates() -> None:
    assert experts.curriculum_schedule(16, 2) == "-0.5,-1.0@4,-1.5@8"
    assert experts.curriculum_schedule(3_072, 16) == "-0.5,-1.0@768,-1.5@1536"
    assert experts.curriculum_schedule(6, 2) == "-0.5,-1.0@2,-1.5@4"  # each stage one update at least
    with pytest.raises(ValueError, match="--episodes=4: the curriculum's 3 stages need at least 3 updates"):
        experts.curriculum_schedule(4, 2)


def test_long_rows_average_agents_and_leave_absent_ones_empty(tmp_path: Path) -> None:
    from sociajax.training.logging import COLUMNS

    rows = []
    for update, (r0, r1, r2) in enumerate([(1.0, 5.0, 7.0), (2.0, "", "")], start=1):
        for agent, value in enumerate((r0, r1, r2)):
            row = dict.fromkeys(COLUMNS, "")
            row.update(update=update, episodes=2 * update, env_steps=32 * update, condition="c", seed=3,
                       agent=agent, role="learner", penalty=-1.5)
            row["return"] = value
            row["aux_loss"] = 0.5 if agent == 0 else ""
            rows.append(row)
    metrics = tmp_path / "metrics.csv"
    with metrics.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    out = results.long_rows(metrics, {"return": ("return", (0,)), "expert_return": ("return", (1, 2)),
                                      "aux_loss": ("aux_loss", (0,))})
    first = out[0]
    assert (first["update"], first["episodes"], first["env_steps"], first["return"], first["expert_return"]) == (1, 2, 32, 1.0, 6.0)
    assert math.isnan(out[1]["expert_return"]) and out[1]["aux_loss"] == 0.5
    path = results.write_csv(out, tmp_path / "long.csv")
    back = results.read_long_csv(path)
    assert list(back[0])[:6] == ["condition", "seed", "update", "episodes", "env_steps", "return"]
    assert back[0]["seed"] == 3 and math.isnan(back[1]["expert_return"])
    assert results.late_mean(back, "c") == 2.0  # the last 10% of 2 updates: the last one
    assert math.isnan(results.late_mean(back, "c", "expert_return"))  # no expert present then
    with pytest.raises(ValueError, match="column 'x': .* has no agent 5"):
        results.long_rows(metrics, {"return": ("return", (0,)), "x": ("return", (5,))})
    with pytest.raises(ValueError, match="must define 'return'"):
        results.long_rows(metrics, {"x": ("return", (0,))})


def test_plot_draws_seeds_means_and_levels(tmp_path: Path) -> None:
    rows = [
        {"condition": c, "seed": s, "update": u, "episodes": 2 * u, "env_steps": 32 * u, "return": float(u * s)}
        for c in ("a", "b") for s in (0, 1) for u in range(1, 6)
    ]
    png = figures.plot_seeds_and_means(rows, tmp_path / "f.png", ("a", "b"), "t", references={"expert": 3.0, "IL": math.nan}, vlines=(4,))
    assert png.stat().st_size > 1000
    with pytest.raises(ValueError, match="no rows of condition 'z'"):
        figures.plot_seeds_and_means(rows, tmp_path / "g.png", ("z",), "t")


def test_legend_counts_each_conditions_seeds() -> None:
    import matplotlib.pyplot as plt

    rows = [
        {"condition": c, "seed": s, "update": u, "episodes": 2 * u, "env_steps": 32 * u, "return": 1.0}
        for c, seeds in (("one", (0,)), ("two", (0, 1))) for s in seeds for u in range(1, 4)
    ]
    fig, ax = plt.subplots()
    figures.draw_seeds_and_means(ax, rows, ("one", "two"), "t", labels={"one": "One", "two": "Two"})
    assert [t.get_text() for t in ax.legend().get_texts()] == ["One (1 seed)", "Two (2 seeds)"]
    plt.close(fig)


def test_figure4_conditions_are_one_program(tmp_path: Path) -> None:
    scale = scales.get_scale("tiny", "figure4")
    config = figure4.build_config(scale, 2, 0, tmp_path / "run", "scripted", None, False)
    runs.check_one_program(config)
    from sociajax.training.trainer import make_train

    trainer = make_train(config)  # builds, does not compile
    assert list(trainer.conditions) == list(figure4.CONDITIONS) and trainer.num_runs == 10


@pytest.mark.parametrize("scale_name", ["small", "paper"])
def test_larger_scales_build_valid_programs(scale_name: str, tmp_path: Path) -> None:
    """What a later session runs at small or paper scale at least validates and builds
    (no compile here)."""
    from sociajax.training.trainer import make_train

    scale = scales.get_scale(scale_name, "experts")
    config = experts.build_config(scale, scale.num_seeds, 0, tmp_path / "experts", 1, False)
    assert make_train(config).num_runs == 2 * scale.num_seeds
    assert config.ppo.num_envs == scale.ppo.num_envs and config.total_env_steps == scale.total_env_steps
    scale = scales.get_scale(scale_name, "figure4")
    config = figure4.build_config(scale, scale.num_seeds, 0, tmp_path / "fig4", "scripted", None, False)
    trainer = make_train(config)
    assert trainer.num_runs == 5 * scale.num_seeds and trainer.episode_steps == 250
    assert config.agents[0].lr == scale.novice_lr


def test_every_figure_builds_its_config_at_mini_scale(tmp_path: Path) -> None:
    """--scale mini: the search's 7x7 world for every figure's training, the transfer and
    native worlds scaled with it (built and validated, not compiled)."""
    from sociajax.eval.learned import _world
    from sociajax.training.trainer import make_train

    def mini(figure: str) -> "scales.Scale":
        scale = scales.get_scale("mini", figure)
        assert (scale.size, scale.n_walls, scale.max_steps, scale.ppo.num_envs, scale.num_updates) == (7, 0, 64, 64, 782)
        return scale

    def check(config, runs: int) -> None:
        trainer = make_train(config)
        assert (trainer.env.height, trainer.env.n_walls, trainer.episode_steps) == (7, 0, 64)
        assert trainer.num_runs == runs and config.total_env_steps == 782 * 64 * 64
        assert config.agents[0].lr == 1e-3 and config.ppo.entropy_coef == 1e-3 and config.env.penalty == "-1.5"

    check(experts.build_config(mini("experts"), 3, 0, tmp_path / "e", 1, False), 2 * 3)
    check(figure4.build_config(mini("figure4"), 3, 0, tmp_path / "f4", "scripted", None, False), 5 * 3)
    check(figure5.build_config(mini("figure5"), 3, 0, tmp_path / "f5", "scripted", None, 0.5, None, False), 3 * 3)
    switch = figure7.switch_episode(mini("figure7"), 0.5)
    check(figure7.build_config(mini("figure7"), 3, 0, tmp_path / "f7", "scripted", None, switch, False), 3 * 3)
    check(figure9.build_config(mini("figure9"), 3, 0, tmp_path / "f9", "scripted", None, False), 2 * 3)
    # native experts in the transfer worlds, and the transfer worlds themselves
    scale = mini("experts")
    native = make_train(experts.build_config(scale, 3, 0, tmp_path / "fr", 1, False, env_id="FourRooms"))
    assert (native.env.height, native.episode_steps) == (13, 64)
    assert scale.world("GoalCycle-4") == {"size": 7, "n_walls": 0, "max_steps": 64}
    for world, _ in figure6.WORLDS.values():
        shape = scale.world(world)
        env, params = _world(world, 3, tuple(sorted((k, v) for k, v in shape.items() if k != "max_steps")))
        assert env.height == {"GoalCycle-4": 7, "FourRooms": 13, "Maze": 9}[world] and shape["max_steps"] == 64
    assert scales.get_scale("tiny", "figure4").world("GoalCycle-4") == {}  # other scales keep the defaults


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--experts", "trained"], "--experts trained needs --experts-dir"),
        (["--experts-dir", "x"], "--experts-dir is only for --experts trained"),
        (["--experts", "trained", "--experts-dir", "/nonexistent/experts"], "holds no run"),
        (["--seed", "-1"], "--seed must be a non-negative integer, got -1"),
    ],
)
def test_figure4_bad_input_names_the_flag(argv, message, tmp_path: Path, capsys) -> None:
    assert cli.run_or_exit(figure4.main, argv + ["--out-dir", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_figure4_refuses_experts_with_too_few_seeds(tmp_path: Path) -> None:
    scale = scales.get_scale("tiny", "experts")
    source = experts.build_config(scale, 1, 0, tmp_path / "experts", 1, False)
    (tmp_path / "experts" / "checkpoints").mkdir(parents=True)
    (tmp_path / "experts" / "config.json").write_text(source.to_json())
    with pytest.raises(ValueError, match="--num-seeds=2: experts are seed-matched, .* only num_seeds=1"):
        configs.trained_experts(tmp_path / "experts", 2)


def test_flags_reject_bad_numbers(capsys) -> None:
    for argv in (["--num-seeds", "0"], ["--episodes", "x"], ["--scale", "huge"]):
        with pytest.raises(SystemExit):
            experts.main(argv)
    err = capsys.readouterr().err
    assert "--num-seeds: must be a positive integer, got '0'" in err and "invalid choice: 'huge'" in err
    with pytest.raises(SystemExit):
        experts.main(["--learners", "4"])


def _fake_figure4_csv(folder: Path) -> Path:
    """A figure4.csv as figure4.py writes it, with known losses: SociAPL seed 0 falls from
    1.0 to 0.2 by update 20 and climbs back to 0.5; seed 1 falls to 0.2 and stays."""
    rows = []
    for condition in figure4.CONDITIONS:
        for seed in (0, 1):
            for update in range(1, 41):
                fall = max(0.2, 1.0 - 0.04 * update)
                loss = fall if seed == 1 or update <= 20 else 0.2 + 0.015 * (update - 20)
                has_aux = condition not in ("social_vanilla", "il")
                rows.append({"condition": condition, "seed": seed, "update": update, "episodes": 2 * update,
                             "env_steps": 32 * update, "return": 0.0, "aux_loss": loss if has_aux else ""})
    folder.mkdir(parents=True)
    return results.write_csv(rows, folder / "figure4.csv")


def test_figure5_conditions_are_one_program_and_differ_only_in_the_experts(tmp_path: Path) -> None:
    from sociajax.training.config import condition_configs
    from sociajax.training.trainer import make_train

    scale = scales.get_scale("small", "figure5")
    config = figure5.build_config(scale, 3, 0, tmp_path / "run", "scripted", None, 0.3, None, False)
    runs.check_one_program(config)
    assert make_train(config).num_runs == 9 and make_train(config).conditions == figure5.CONDITIONS
    by_name = dict(condition_configs(config))
    assert [a.epsilon for a in by_name["sociapl_ie"].agents] == [0.0, 0.3, 0.3]
    assert [a.epsilon for a in by_name["sociapl"].agents] == [0.0, 0.0, 0.0]
    assert [float(a.presence) for a in by_name["solo"].agents] == [1.0, 0.0, 0.0]
    trained = figure5.condition_fields("trained", 0.5, 50)["sociapl_ie"]
    assert trained == "agents.1.load_update=50 agents.1.lr=0 agents.2.load_update=50 agents.2.lr=0"
    with pytest.raises(ValueError, match="--epsilon must be in"):
        figure5.build_config(scale, 3, 0, tmp_path / "run", "scripted", None, 0.0, None, False)


def test_figure5_imperfect_experts_default_to_the_last_checkpoint_by_half_time(tmp_path: Path) -> None:
    for update in (25, 50, 75, 100, 125, 150, 175, 192):
        (tmp_path / "checkpoints" / str(update)).mkdir(parents=True)
    assert figure5.imperfect_update(tmp_path, None) == 75  # the last at or before 192 // 2
    assert figure5.imperfect_update(tmp_path, 125) == 125
    with pytest.raises(ValueError, match=r"--imperfect-update=60: .* keeps checkpoints \[25, 50"):
        figure5.imperfect_update(tmp_path, 60)
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        figure5.imperfect_update(tmp_path / "empty", None)


def test_figure5_claims_are_read_seed_by_seed() -> None:
    late = {"solo": (0.5, 0.5, 0.5), "sociapl": (30.0, 0.2, 26.0), "sociapl_ie": (12.0, 0.9, 0.1)}
    rows = [
        {"condition": c, "seed": s, "update": u, "episodes": 2 * u, "env_steps": 32 * u, "return": late[c][s],
         "expert_return": {"solo": math.nan, "sociapl": 25.0, "sociapl_ie": 9.0}[c]}
        for c in figure5.CONDITIONS for s in range(3) for u in range(1, 11)
    ]
    level = figure5.levels(rows)
    assert level == {"near_optimal": 25.0, "imperfect": 9.0}
    claims = figure5.claims(rows, level)
    assert claims["seeds_above_solo"] == {"sociapl": 2, "sociapl_ie": 2}
    assert claims["seeds_above_own_experts"] == {"sociapl": 2, "sociapl_ie": 1}
    assert claims["imperfect_below_near_optimal"] and all(claims["mean_above_solo"].values())


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epsilon", "1.5"], "--epsilon must be in (0, 1], got 1.5"),
        (["--imperfect-update", "3"], "--imperfect-update is only for --experts trained"),
        (["--experts", "trained", "--experts-dir", "x", "--epsilon", "0.2"], "--epsilon is only for --experts scripted"),
        (["--experts", "trained"], "--experts trained needs --experts-dir"),
    ],
)
def test_figure5_bad_input_names_the_flag(argv, message, tmp_path: Path, capsys) -> None:
    assert cli.run_or_exit(figure5.main, argv + ["--out-dir", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_figure6_intervals_match_scipys_t_interval() -> None:
    from scipy import stats

    rng = np.random.default_rng(0)
    values = {("GoalCycle-4", "sociapl"): rng.normal(3, 2, 5), ("GoalCycle-4", "il"): rng.normal(1, 1, 5),
              ("Maze", "sociapl"): rng.normal(0.5, 0.1, 3), ("Maze", "il"): np.array([0.2])}
    rows = [{"condition": bar, "seed": s, "env": world, "return": float(v)}
            for (world, bar), vs in values.items() for s, v in enumerate(vs)]
    result = figure6.bar_stats(rows)
    for (world, bar), vs in values.items():
        got = result[world][bar]
        assert got["mean"] == pytest.approx(vs.mean()) and got["per_seed"] == pytest.approx(list(vs))
        if len(vs) > 1:
            low, high = stats.t.interval(0.95, len(vs) - 1, loc=vs.mean(), scale=stats.sem(vs))
            assert got["ci95"] == pytest.approx((high - low) / 2, rel=1e-3)
        else:
            assert got["ci95"] is None  # one seed: no interval, not a zero-width one
    claims = figure6.claims(result)
    assert claims["sociapl_best"] == {"GoalCycle-4": True, "Maze": True} and claims["il_below_experts"] == {}


def test_figure6_without_a_figure4_run_says_what_to_run(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nothing"
    assert cli.run_or_exit(figure6.main, ["--figure4-dir", str(missing), "--scale", "small"]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "experiments/figure4.py --scale small" in err


def test_figure7_switches_presence_on_a_whole_update_in_one_program(tmp_path: Path) -> None:
    from sociajax.training.config import condition_configs
    from sociajax.training.trainer import make_train

    scale = scales.get_scale("small", "figure7")  # 75 updates of 16 episodes
    switch = figure7.switch_episode(scale, 0.5)
    assert switch == 38 * 16
    config = figure7.build_config(scale, 3, 0, tmp_path / "run", "scripted", None, switch, False)
    runs.check_one_program(config)
    assert make_train(config).num_runs == 9 and config.checkpoint_every == 7 and config.keep_checkpoints == 12
    mixed = dict(condition_configs(config))["mixed"].agents
    assert mixed[1].presence == mixed[2].presence == f"1,0.25@{switch}"
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="--switch-fraction"):
            figure7.switch_episode(scale, bad)
    with pytest.raises(ValueError, match="leave no update"):
        figure7.switch_episode(scales.get_scale("tiny", "figure7"), 0.1)


def test_figure7_claims_read_the_curves() -> None:
    solo_curve = {"social": (1.0, 3.0, 0.5), "mixed": (1.0, 3.0, 3.5), "solo": (1.0, 1.5, 2.0)}
    rows = [{"condition": c, "seed": seed, "update": u, "episodes": 10 * u, "env_steps": 100 * u, "setting": setting,
             "return": (solo_curve[c][u - 1] if setting == "3-goal solo" else 5.0 + (c == "mixed")) + 0.1 * seed}
            for c in figure7.CONDITIONS for seed in (0, 1) for u in (1, 2, 3) for setting in figure7.SETTINGS]
    claims = figure7.claims(rows)
    assert claims["social_solo_peak"] == pytest.approx(3.05) and claims["social_solo_peak_update"] == 2
    assert claims["social_solo_drop_after_peak"] == pytest.approx(2.5) and claims["social_solo_falls_after_peak"]
    rising = [dict(r, **{"return": r["update"] + 0.1 * r["seed"]}) if r["condition"] == "social" else r for r in rows]
    assert not figure7.claims(rising)["social_solo_falls_after_peak"]  # the peak is the last checkpoint
    assert claims["mixed_keeps_solo_skill"] and claims["mixed_beats_solo_only_alone"]
    assert claims["mixed_minus_social_with_experts"] == {"3-goal with experts": pytest.approx(1.0),
                                                          "4-goal with experts": pytest.approx(1.0)}


def test_figure9_penalty_is_data_and_reliance_is_with_minus_alone(tmp_path: Path) -> None:
    from sociajax.training.config import condition_configs

    config = figure9.build_config(scales.get_scale("small", "figure9"), 3, 0, tmp_path / "run", "scripted", None, False)
    runs.check_one_program(config)
    assert [c.env.penalty for _, c in condition_configs(config)] == ["0", "-1.5"]
    with_experts, alone = figure9.SETTINGS
    rows = [{"condition": c, "seed": s, "env": env, "return": {with_experts: 4.0 + s, alone: 1.0}[env] * (c != "penalty_0")}
            for c in figure9.CONDITIONS for s in (0, 1) for env in figure9.SETTINGS]
    assert figure9.reliance(rows) == {"penalty_0": {0: 0.0, 1: 0.0}, "penalty_1.5": {0: 3.0, 1: 4.0}}


def test_figure8_reads_the_aux_loss_of_a_figure4_run(tmp_path: Path) -> None:
    source = tmp_path / "figure4-run"
    _fake_figure4_csv(source)
    assert figure8.main(["--figure4-dir", str(source)]) == 0
    assert (source / "figure8.png").stat().st_size > 1000
    rows = _check_long_csv(source / "figure8.csv", figure8.AUX_CONDITIONS, (0, 1), ("aux_loss",))
    assert len(rows) == 3 * 2 * 40
    summary = json.loads((source / "figure8.json").read_text())
    rising, settled = summary["sociapl"]["0"], summary["sociapl"]["1"]
    assert settled["late_over_early"] < 0.3 and settled["largest_rise"] == pytest.approx(0.0, abs=1e-9)
    assert rising["largest_rise"] > 1.0  # 0.2 back up to 0.5 (smoothed): +140%
    assert rising["late_over_early"] > settled["late_over_early"]


def test_figure8_without_a_figure4_run_says_what_to_run(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nothing"
    assert cli.run_or_exit(figure8.main, ["--figure4-dir", str(missing), "--scale", "small"]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "experiments/figure4.py --scale small" in err


# ---------------------------------------------------------------------- end to end: experts.py
@pytest.fixture(scope="module")
def experts_run(tmp_path_factory) -> Path:
    return _tiny_run("experts", tmp_path_factory.mktemp("experts") / "run")


def _check_long_csv(path: Path, conditions, seeds, extra=()) -> list[dict[str, str]]:
    rows = _read(path)
    assert set(REQUIRED + tuple(extra)) <= set(rows[0])
    assert {(r["condition"], int(r["seed"])) for r in rows} == {(c, s) for c in conditions for s in seeds}
    per_run = {}
    for r in rows:
        per_run.setdefault((r["condition"], r["seed"]), []).append(int(r["episodes"]))
    assert len({tuple(v) for v in per_run.values()}) == 1  # every run logs the same points
    return rows


@pytest.mark.xdist_group("experts_tiny")
def test_experts_writes_figure_csv_and_evaluation(experts_run: Path) -> None:
    assert (experts_run / "figure12.png").stat().st_size > 1000
    rows = _check_long_csv(experts_run / "figure12.csv", experts.CONDITIONS, (0, 1), ("penalty", "aux_loss"))
    assert len(rows) == 2 * 2 * 8
    summary = json.loads((experts_run / "summary.json").read_text())
    assert summary["compiled_training_programs"] == 1 and summary["runs"] == 4
    # how it ran, for whoever compares its numbers: the XLA flags it started with and its cores
    assert summary["xla_flags"] == FAST_COMPILE_FLAGS and summary["cores"] >= 1 and summary["cpu"]
    assert summary["run_loop"] == "vmap"  # the default: the runs batched
    evaluation = summary["evaluation"]
    assert evaluation["penalty"] == -1.5 and math.isfinite(evaluation["oracle"])
    assert set(evaluation["experts"]) == set(experts.CONDITIONS)
    assert all(len(v["per_seed"]) == 2 for v in evaluation["experts"].values())


@pytest.mark.xdist_group("experts_tiny")
def test_experts_curriculum_switches_penalty_at_the_right_episode(experts_run: Path) -> None:
    from sociajax.training.logging import read_metrics

    num_envs = scales.get_scale("tiny", "experts").ppo.num_envs
    for row in read_metrics(experts_run / "metrics.csv"):
        before = int(row["episodes"]) - num_envs  # the update ran at the value in force before it
        if row["condition"] == "curriculum":
            expected = -0.5 if before < 4 else -1.0 if before < 8 else -1.5
        else:
            expected = -1.5
        assert float(row["penalty"]) == expected, row


@pytest.mark.xdist_group("experts_tiny")
def test_experts_replot_redraws_from_the_csv(experts_run: Path) -> None:
    _check_replot("experiments/experts.py", experts_run, "figure12.png")


@pytest.mark.slow  # the trained-experts variants: each compiles a 3-learner program
def test_figure5_with_trained_experts_freezes_an_earlier_checkpoint(experts_run: Path, tmp_path: Path) -> None:
    out = _run_with_trained_experts("figure5", experts_run, tmp_path)
    _check_long_csv(out / "figure5.csv", figure5.CONDITIONS, (0, 1), ("expert_return", "aux_loss"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["imperfect_update"] == 4  # tiny experts keep updates 2, 4, 6, 8
    assert summary["compiled_training_programs"] == 1
    from sociajax.training.config import condition_configs
    from sociajax.training.config import TrainConfig

    config = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))
    imperfect = dict(condition_configs(config))["sociapl_ie"].agents[1:]
    assert all(a.load_update == 4 and a.lr == 0 and a.load_from == str(experts_run) for a in imperfect)


# ---------------------------------------------------------------------- end to end (default)
# One tiny figure4.py run with scripted experts (about a minute, compile-bound) serves the
# end-to-end checks of Figures 4 and 11 and of the figures drawn from its run folder (2, 8).
@pytest.fixture(scope="module")
def figure4_run(tmp_path_factory) -> Path:
    return _tiny_run("figure4", tmp_path_factory.mktemp("fig4") / "run")


@pytest.mark.xdist_group("figure4_tiny")
def test_figure4_scripted_end_to_end(figure4_run: Path) -> None:
    out = figure4_run
    for name in ("figure4.png", "figure11.png"):
        assert (out / name).stat().st_size > 1000
    rows = _check_long_csv(out / "figure4.csv", figure4.CONDITIONS, (0, 1), ("expert_return", "bc_loss", "aux_loss"))
    solo = [r for r in rows if r["condition"] == "solo_pred"]
    assert all(r["expert_return"] == "" for r in solo)  # experts absent
    assert all(r["bc_loss"] != "" for r in rows if r["condition"] == "il")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["compiled_training_programs"] == 1 and summary["runs"] == 10
    assert summary["experts"] == "scripted"
    assert set(summary["claims"]["seeds_above_1"]) == set(figure4.CONDITIONS)
    _check_replot("experiments/figure4.py", out, "figure4.png")


@pytest.mark.xdist_group("figure4_tiny")
def test_figure4_in_two_parts_merges_into_the_whole_run(figure4_run: Path, tmp_path: Path) -> None:
    # seeds 1 and 0 trained apart (one process, so one compile), then merged: the same rows,
    # bit for bit, and the same claims as seeds 0-1 trained at once
    code = ("import sys; sys.path.insert(0, 'experiments'); import figure4; "
            f"[figure4.main(['--scale', 'tiny', '--seed', str(s), '--num-seeds', '1', '--out-dir', '{tmp_path}/s' + str(s)])"
            " for s in (1, 0)]")
    trained = _run_script("-c", code)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    merged = _run_script("experiments/figure4.py", "--merge", str(tmp_path / "s1"), str(tmp_path / "s0"),
                         "--out-dir", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert _read(tmp_path / "merged" / "figure4.csv") == _read(figure4_run / "figure4.csv")
    whole, pooled = (json.loads((d / "summary.json").read_text()) for d in (figure4_run, tmp_path / "merged"))
    assert pooled["claims"] == whole["claims"] and pooled["levels"] == whole["levels"]
    assert pooled["late_return"] == pytest.approx(whole["late_return"])
    assert pooled["seeds"] == [0, 1] and pooled["runs"] == whole["runs"]
    assert [p["seeds"] for p in pooled["parts"]] == [[1], [0]]


def test_figure5_scripted_end_to_end(tmp_path: Path) -> None:
    """All three conditions in one program; the imperfect (epsilon 0.5) oracles really play
    worse beside the novice than the plain ones; --replot redraws from the CSV."""
    out = tmp_path / "fig5"
    result = _run_script("experiments/figure5.py", "--scale", "tiny", "--out-dir", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = _check_long_csv(out / "figure5.csv", figure5.CONDITIONS, (0, 1), ("expert_return", "aux_loss"))
    assert all(r["expert_return"] == "" for r in rows if r["condition"] == "solo")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["compiled_training_programs"] == 1 and summary["runs"] == 6 and summary["epsilon"] == 0.5
    assert summary["levels"]["imperfect"] < summary["levels"]["near_optimal"]
    from sociajax.eval.learned import evaluation_setup
    from sociajax.training.checkpoint import load_run

    setup = evaluation_setup(load_run(out))[0]  # the training world evaluates each run's own experts
    np.testing.assert_array_equal(setup.run_epsilon(6)[:, 1:], np.float32([[0, 0]] * 4 + [[0.5, 0.5]] * 2))
    _check_replot("experiments/figure5.py", out, "figure5.png")


@pytest.mark.xdist_group("figure4_tiny")
def test_figure6_transfers_figure4_agents_zero_shot_without_touching_them(figure4_run: Path, tmp_path: Path) -> None:
    import jax

    from sociajax.training.checkpoint import load_run

    run = load_run(figure4_run)
    before = jax.device_get(run.state.population)
    rows = figure6.transfer_returns(run, episodes=2, seed=0)
    after = jax.device_get(run.state.population)
    jax.tree.map(np.testing.assert_array_equal, before, after)  # evaluation never updates parameters
    again = jax.device_get(load_run(figure4_run).state.population)
    jax.tree.map(np.testing.assert_array_equal, before, again)  # nor the checkpoint
    # scripted 3-goal experts do not transfer: the novices' bars only, every seed, every world
    assert {(r["condition"], r["seed"], r["env"]) for r in rows} == {
        (c, s, w) for c in ("solo_pred", "sociapl", "il") for s in (0, 1) for w in figure6.WORLDS}
    assert figure6.main(["--figure4-dir", str(figure4_run), "--out-dir", str(tmp_path), "--episodes", "2"]) == 0
    assert (tmp_path / "figure6.png").stat().st_size > 1000
    written = _read(tmp_path / "figure6.csv")
    assert set(REQUIRED[:2] + ("env", "return")) <= set(written[0]) and len(written) == len(rows)
    summary = json.loads((tmp_path / "figure6.json").read_text())
    assert summary["experts"] == "scripted" and set(summary["claims"]["sociapl_best"]) == set(figure6.WORLDS)
    assert summary["native_experts"] == "scripted"
    # the expert's own return in the same episodes: the scripted experts do their job there
    assert summary["expert_levels"]["GoalCycle-4"] > 5 and summary["expert_levels"]["FourRooms"] > 0.5
    assert all(r["expert_return"] != "" for r in written)
    assert summary["worlds"]["Maze + 2 distractors"]["partners"] == "seeker,random,random"
    for panel in figure6.GIF_PANELS:  # SociAPL seed 0 beside the expert, recorded
        gif = summary["gifs"][panel]
        assert Path(gif["gif"]).stat().st_size > 1000 and len(gif["returns"]) == 2
    (tmp_path / "figure6.png").unlink()
    assert figure6.main(["--figure4-dir", str(figure4_run), "--out-dir", str(tmp_path), "--replot"]) == 0
    assert (tmp_path / "figure6.png").exists()


@pytest.mark.slow  # a trained-experts variant: trains FourRooms experts first (about 2 min on 2 cores)
@pytest.mark.xdist_group("figure4_tiny")
def test_figure6_with_native_trained_experts_puts_each_worlds_frozen_experts_beside_the_agents(
    figure4_run: Path, tmp_path: Path
) -> None:
    """experts.py --env trains experts in a world without a penalty (one condition, no
    curriculum); figure6.py --native-experts trained seats them, frozen and seed-matched."""
    native = tmp_path / "experts-FourRooms"
    result = _run_script("experiments/experts.py", "--scale", "tiny", "--env", "FourRooms", "--out-dir", str(native))
    assert result.returncode == 0, result.stdout + result.stderr
    trained = json.loads((native / "summary.json").read_text())
    assert trained["env"] == "FourRooms" and trained["conditions"] == ["direct"] and trained["curriculum"] is None
    assert trained["evaluation"]["scripted_policy"] == "seeker" and trained["evaluation"]["penalty"] is None
    assert json.loads((native / "config.json").read_text())["env"]["penalty"] is None
    out = tmp_path / "fig6"
    dirs = [f"FourRooms={native}", f"GoalCycle-4={figure4_run}", f"Maze={figure4_run}"]  # any run's learner can sit there
    args = ["--figure4-dir", str(figure4_run), "--out-dir", str(out), "--episodes", "2", "--no-gifs",
            "--native-experts", "trained"] + [x for d in dirs for x in ("--native-experts-dir", d)]
    assert figure6.main(args) == 0
    summary = json.loads((out / "figure6.json").read_text())
    assert summary["native_experts"] == "trained" and summary["gifs"] == {}
    assert summary["worlds"]["FourRooms"]["partners"] == f"frozen:{native}"
    assert summary["worlds"]["GoalCycle-4"]["partners"] == f"frozen:{figure4_run},frozen:{figure4_run}"
    assert summary["worlds"]["Maze + 2 distractors"]["partners"] == f"frozen:{figure4_run},random,random"
    assert {r["env"] for r in _read(out / "figure6.csv")} == set(figure6.WORLDS)
    assert "trained expert x2" in figure6.describe_partners(summary["worlds"]["GoalCycle-4"]["partners"])


def test_figure6_native_experts_flags_are_checked_up_front(tmp_path: Path, capsys) -> None:
    (tmp_path / "config.json").write_text("{}")  # a run folder, as far as the check goes
    with pytest.raises(FileNotFoundError, match="experts.py --env FourRooms --scale small"):
        figure6.native_dirs("small", [f"GoalCycle-4={tmp_path}", f"Maze={tmp_path}"])
    with pytest.raises(ValueError, match="'Lava=x' is not WORLD=DIR"):
        figure6.native_dirs("small", ["Lava=x"])
    with pytest.raises(ValueError, match="--native-experts must be one of"):
        figure6.native_partners(figure6.WORLDS, "learned")
    scripted = figure6.native_partners(figure6.WORLDS, "scripted")
    assert scripted["GoalCycle-4"][1] == "oracle,oracle" and scripted["FourRooms"][1] == "seeker"
    assert figure6.describe_partners("seeker,random,random") == "seeker + random x2"
    assert cli.run_or_exit(figure6.main, ["--figure4-dir", str(tmp_path), "--native-experts-dir", "Maze=x"]) == 2
    assert "--native-experts-dir is only for --native-experts trained" in capsys.readouterr().err


@pytest.mark.xdist_group("figure4_tiny")
def test_a_frozen_trained_partner_and_a_scripted_one_play_in_every_transfer_world(figure4_run: Path) -> None:
    import jax

    from sociajax.eval.learned import episode_returns, evaluation_setup
    from sociajax.training.checkpoint import load_run
    from sociajax.training.trainer import make_train

    run = load_run(figure4_run)
    trainer = make_train(run.config)
    novices = jax.vmap(trainer.population.acting_params)(run.state.population)  # [R, L, ...]; agent 0 first
    for world, expert in (("GoalCycle-4", "oracle"), ("FourRooms", "seeker"), ("Maze", "seeker")):
        partners = f"frozen:{figure4_run}:0,{expert}"
        setup, env, env_params, params = evaluation_setup(run, world, 0, partners)
        assert setup.roles == ("learner (agent 0)", f"frozen:{figure4_run}:0", f"scripted:{expert}")  # as given
        assert setup.population.learned_agents == (0, 1) and setup.population.scripted_agents == (2,)
        for r in range(trainer.num_runs):  # the frozen partner is the run's agent 0 of the same seed, condition 0
            jax.tree.map(lambda p, n: np.testing.assert_array_equal(p[r, 1], n[r % run.config.num_seeds, 0]),
                         params, novices)
        returns = episode_returns(setup, env, env_params, params, 2, jax.random.PRNGKey(0))
        assert returns.shape == (trainer.num_runs, 2, 3) and np.isfinite(returns).all()
    with pytest.raises(ValueError, match="agent 1 has no network"):
        evaluation_setup(run, "Maze", 0, f"frozen:{figure4_run}:1")
    with pytest.raises(ValueError, match="num_partners=2 but partner 'seeker,random,random' lists 3"):
        evaluation_setup(run, "Maze", 0, "seeker,random,random", 2)


def test_figure7_end_to_end_evaluates_every_checkpoint_in_every_setting(tmp_path: Path) -> None:
    out = tmp_path / "fig7"
    result = _run_script("experiments/figure7.py", "--scale", "tiny", "--out-dir", str(out), "--eval-episodes", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["compiled_training_programs"] == 1 and summary["checkpoints"] == [1, 2, 3, 4]
    assert summary["switch_episode"] == 4
    rows = _read(out / "figure7.csv")
    assert set(REQUIRED + ("setting",)) <= set(rows[0])
    assert {(r["condition"], r["seed"], r["update"], r["setting"]) for r in rows} == {
        (c, str(s), str(u), setting) for c in figure7.CONDITIONS for s in (0, 1) for u in (1, 2, 3, 4)
        for setting in figure7.SETTINGS}
    from sociajax.training.logging import read_metrics

    presence = {(r["condition"], r["update"]): float(r["presence"]) for r in read_metrics(out / "metrics.csv")
                if r["agent"] == "1"}
    assert [presence[("mixed", str(u))] for u in (1, 2, 3, 4)] == [1.0, 1.0, 0.25, 0.25]  # switched at episode 4
    assert {presence[("solo", str(u))] for u in (1, 2, 3, 4)} == {0.0}
    _check_replot("experiments/figure7.py", out, "figure7.png")


def test_figure9_end_to_end_trains_both_penalties_and_transfers(tmp_path: Path) -> None:
    out = tmp_path / "fig9"
    # its runs stepped one after another, as in a part pinned to one core
    result = _run_script("experiments/figure9.py", "--scale", "tiny", "--out-dir", str(out), "--eval-episodes", "2",
                         "--run-loop", "map")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["compiled_training_programs"] == 1 and summary["runs"] == 4
    assert summary["run_loop"] == json.loads((out / "config.json").read_text())["run_loop"] == "map"
    assert set(summary["reliance_per_seed"]) == set(figure9.CONDITIONS)
    rows = _read(out / "figure9.csv")
    assert {(r["condition"], r["seed"], r["env"]) for r in rows} == {
        (c, str(s), e) for c in figure9.CONDITIONS for s in (0, 1) for e in figure9.SETTINGS}
    from sociajax.training.logging import read_metrics

    penalties = {(r["condition"], float(r["penalty"])) for r in read_metrics(out / "metrics.csv")}
    assert penalties == {("penalty_0", 0.0), ("penalty_1.5", -1.5)}
    alone = [r for r in rows if r["partners"] == "none"]
    assert alone and all(r["expert_return"] == "" for r in alone)  # no expert to score
    _check_replot("experiments/figure9.py", out, "figure9.png")


@pytest.mark.xdist_group("figure4_tiny")
def test_figure8_from_a_real_figure4_run(figure4_run: Path, tmp_path: Path) -> None:
    assert figure8.main(["--figure4-dir", str(figure4_run), "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "figure8.png").stat().st_size > 1000
    rows = _check_long_csv(tmp_path / "figure8.csv", figure8.AUX_CONDITIONS, (0, 1), ("aux_loss",))
    assert all(r["aux_loss"] != "" for r in rows)  # every condition drawn carries the loss
    summary = json.loads((tmp_path / "figure8.json").read_text())
    assert all(math.isfinite(s["late_over_early"]) for s in summary["sociapl"].values())


@pytest.mark.xdist_group("figure4_tiny")
def test_figure2_real_views_are_the_worlds_and_predictions_the_decoders(figure4_run: Path, tmp_path: Path) -> None:
    import jax

    from sociajax.training.checkpoint import load_run

    run = load_run(figure4_run)
    sociapl_seed0 = list(figure4.CONDITIONS).index("sociapl") * 2
    episode = figure2.play_with_every_action(run, sociapl_seed0, jax.random.PRNGKey(3))
    views, real, predicted, chosen = episode["views"], episode["real"], episode["predicted"], episode["chosen"]
    steps = scales.get_scale("tiny", "figure4").episode_steps
    assert views.shape == (steps + 1, 21, 21, 3) and real.shape == predicted.shape == (steps, 7, 21, 21, 3)
    # The view after the action taken is the next observed view; the four no-ops lead alike.
    np.testing.assert_array_equal(real[np.arange(steps), chosen], views[1:])
    for noop in (4, 5, 6):
        np.testing.assert_array_equal(real[:, noop], real[:, 3])
    assert not np.array_equal(real[:, 0], real[:, 1])  # turning left and right differ
    assert np.isfinite(predicted).all()

    assert figure2.main(["--figure4-dir", str(figure4_run), "--out-dir", str(tmp_path), "--rows", "2"]) == 0
    assert (tmp_path / "figure2.png").stat().st_size > 1000
    summary = json.loads((tmp_path / "figure2.json").read_text())
    assert summary["condition"] == "sociapl" and summary["seed"] == 0 and summary["steps"] == steps
    shares = [a["chosen_share"] for a in summary["per_action"].values()]
    assert len(shares) == 7 and sum(shares) == pytest.approx(1.0)
    assert all(0.0 <= a["mae"] <= 1.0 for a in summary["per_action"].values())
    with pytest.raises(ValueError, match="--seed-index must be in 0..1"):
        figure2.main(["--figure4-dir", str(figure4_run), "--out-dir", str(tmp_path), "--seed-index", "2"])
    with pytest.raises(ValueError, match="'nope'"):
        figure2.main(["--figure4-dir", str(figure4_run), "--out-dir", str(tmp_path), "--condition", "nope"])


@pytest.mark.slow
def test_figure4_with_trained_experts_loads_them_seed_matched(experts_run: Path, tmp_path: Path) -> None:
    out = _run_with_trained_experts("figure4", experts_run, tmp_path)
    assert (out / "figure4.png").exists() and (out / "figure11.png").exists()
    _check_long_csv(out / "figure4.csv", figure4.CONDITIONS, (0, 1), ("expert_return",))
    config = json.loads((out / "config.json").read_text())
    experts_seats = config["agents"][1:]
    assert all(a["role"] == "learner" and a["lr"] == 1e-5 and a["load_from"] == str(experts_run)
               and a["load_seed"] is None for a in experts_seats)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["experts"] == "trained" and summary["compiled_training_programs"] == 1
    # Figure 6 from it: trained 3-goal experts are agents too, so they get a bar of their own
    assert figure6.main(["--figure4-dir", str(out), "--episodes", "2"]) == 0
    bars = {(r["condition"], r["env"]) for r in _read(out / "figure6.csv")}
    assert {("experts", w) for w in figure6.WORLDS} <= bars
    assert json.loads((out / "figure6.json").read_text())["experts"] == "trained"


@pytest.mark.xdist_group("experts_tiny")
def test_trained_experts_of_another_world_are_refused(experts_run: Path) -> None:
    """Experts trained in the 13x13 world do not sit beside a 7x7 (mini) novice."""
    tiny = scales.get_scale("tiny", "figure4")
    assert len(configs.trained_experts(experts_run, 2, scale=tiny)) == 2
    with pytest.raises(ValueError, match="trained in a world of .* --scale mini is \\(7, 0, 'paper'\\)"):
        configs.trained_experts(experts_run, 2, scale=scales.get_scale("mini", "figure4"))


@pytest.mark.xdist_group("experts_tiny")
def test_a_one_seed_part_gets_the_experts_of_its_own_seed(experts_run: Path) -> None:
    """Seed-matched by seed, not by position: a part of seed 1 alone loads the experts' seed
    1 (index 1 of their seeds 0-1); seeds the experts never trained are refused."""
    assert {a.load_seed for a in configs.trained_experts(experts_run, 2, seed=0)} == {None}  # index i gets index i
    assert {a.load_seed for a in configs.trained_experts(experts_run, 1, seed=1)} == {1}
    for seed, num_seeds in ((1, 2), (2, 1)):
        with pytest.raises(ValueError, match=f"--seed={seed}: experts are seed-matched, .* trained seeds 0-1"):
            configs.trained_experts(experts_run, num_seeds, seed=seed)


@pytest.mark.xdist_group("figure4_tiny")
def test_figure6_refuses_a_scale_that_is_not_the_runs(figure4_run: Path) -> None:
    """The transfer worlds follow --scale, so a --scale whose world is not the run's stops."""
    from sociajax.training.checkpoint import load_run

    config = load_run(figure4_run).config
    figure6.check_scale_of_run(scales.get_scale("tiny", "figure4"), config)
    with pytest.raises(ValueError, match="--scale mini: its world .* is not the run's"):
        figure6.check_scale_of_run(scales.get_scale("mini", "figure4"), config)
