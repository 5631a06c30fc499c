"""The benchmark scripts run end to end (tiny sizes), and the rollout they time refuses bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sociajax.envs.registry import make
from sociajax.eval.throughput import random_rollout

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path = ROOT) -> str:
    result = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_env_benchmark_writes_json_and_plot(tmp_path) -> None:
    out = _run(
        [
            "-m", "benchmarks.env_throughput", "--num-envs", "4", "--num-steps", "3",
            "--envs", "GoalCycle-3", "Maze", "--peers", "--out", str(tmp_path), "--tag", "test",
        ]
    )
    [record_file] = [p for p in os.listdir(tmp_path) if p.endswith(".json")]
    records = json.load(open(tmp_path / record_file))
    assert {r["env"] for r in records} == {"GoalCycle-3", "Maze"}
    # Both line-of-sight rules, one record each per env.
    assert sorted((r["env"], r["occlusion"]) for r in records) == [
        ("GoalCycle-3", "minigrid"), ("GoalCycle-3", "original"), ("Maze", "minigrid"), ("Maze", "original")
    ]
    for r in records:
        assert r["agent_steps_per_s"] > 0 and r["compile_s"] > 0
        assert r["machine"]["platform"] == "cpu"
    assert any(p.endswith(".png") for p in os.listdir(tmp_path))
    assert "agent-steps/s" in out


def test_reset_cost_benchmark_times_every_reset_scheme_at_both_sizes(tmp_path) -> None:
    _run(
        [
            "-m", "benchmarks.reset_cost", "--envs", "FourRooms", "--num-envs", "4", "8",
            "--num-steps", "3", "--rounds", "1", "--out", str(tmp_path),
        ]
    )
    [record_file] = [p for p in os.listdir(tmp_path) if p.endswith(".json")]
    records = json.load(open(tmp_path / record_file))["records"]
    assert sorted(r["resets"] for r in records) == ["all", "none", "pooled"]
    for r in records:
        assert r["agent_steps_per_s_4_median"] > 0 and r["agent_steps_per_s_8_median"] > 0
        assert r["ratio_8_to_4_median"] > 0


def test_random_rollout_refuses_an_unknown_batching_by_name() -> None:
    env, params = make("FourRooms")
    with pytest.raises(ValueError, match="batching='pooled'"):
        random_rollout(env, params, 4, 3, batching="pooled")


def test_grid_benchmark_programs_train_the_same_runs_in_different_batchings() -> None:
    from benchmarks import grid_vs_sequence as bench
    from sociajax.training import make_train

    def trainers(program: str):
        return [make_train(c) for c in bench.program_configs(program, num_envs=4, max_steps=16, seeds=2)]

    [grid] = trainers("grid")
    sequence = trainers("sequence")
    [seeds] = trainers("seeds")
    [shared] = trainers("shared")
    runs = len(bench.CONDITIONS) * 2
    assert grid.num_runs == seeds.num_runs == runs and shared.num_runs == 1
    # The sequence is each grid run alone: one run per config, the grid's conditions and
    # seeds, and one compiled program for all of them.
    assert len(sequence) == runs and all(t.num_runs == 1 for t in sequence)
    assert [int(t.run_seeds()[0]) for t in sequence] == grid.run_seeds().tolist()
    assert [t.config.agents for t in sequence[::2]] == [
        c.agents for _, c in bench.condition_configs(bench.program_configs("grid", 4, 16, 2)[0])
    ]
    assert len({t.program_key for t in sequence}) == 1
    # Per update, every program runs the grid's env steps and trains on as many frames.
    assert shared.env_steps_per_update == grid.env_steps_per_update * runs
    assert seeds.env_steps_per_update == grid.env_steps_per_update
    per_minibatch = lambda t: t.config.ppo.minibatch_segments * t.num_runs  # noqa: E731
    assert per_minibatch(shared) == per_minibatch(grid) == per_minibatch(seeds)
    with pytest.raises(ValueError, match="'mixed'"):
        bench.program_configs("mixed", 4, 16, 2)
    with pytest.raises(ValueError, match="rounds=0"):
        bench.measure(["grid", "sequence"], 4, 16, 2, updates=1, rounds=0)
    with pytest.raises(ValueError, match="include 'sequence'"):
        bench.measure(["grid"], 4, 16, 2, updates=1, rounds=1)


def test_network_ab_loads_a_commits_network_beside_this_one(tmp_path) -> None:
    """benchmarks/network_ab.py: the network of a git commit loads as its own module, gives
    this checkout's numbers when the code is the same, and a bad commit is named."""
    import jax
    import numpy as np

    from benchmarks.network_ab import load_network_at, workload
    from sociajax.agents import network

    old = load_network_at("HEAD", tmp_path)
    assert old is not network and old.SocialNet is not network.SocialNet
    params_old = old.init_params(old.SocialNet(), jax.random.PRNGKey(0))
    params_new = network.init_params(network.SocialNet(), jax.random.PRNGKey(0))
    for a, b in zip(jax.tree.leaves(params_old), jax.tree.leaves(params_new)):
        np.testing.assert_array_equal(a, b)
    assert workload(old, 2, 2, True)() > 0
    with pytest.raises(ValueError, match="--ref 'no-such-commit'"):
        load_network_at("no-such-commit", tmp_path)


@pytest.mark.slow  # compiles five programs (one to two minutes on 2 cores); the profile is run by hand
def test_update_profile_times_every_phase(tmp_path) -> None:
    """benchmarks/update_profile.py at the tiny schedule: every phase timed, shares that add
    up, model FLOPs and a utilisation in (0, 1]."""
    out = tmp_path / "profile.json"
    _run(["-m", "benchmarks.update_profile", "--schedule", "tiny", "--num-seeds", "2", "--repeats", "1",
          "--out", str(out)])
    (profile,) = json.loads(out.read_text())["profiles"]
    assert set(profile["phases"]) == {"env_and_experts", "rollout", "recompute", "minibatch_step", "optimizer"}
    assert all(p["seconds"] > 0 for p in profile["phases"].values())
    # recompute every 1, + final, less the first (taken from the rollout)
    assert profile["recomputes_per_update"] == 2 and profile["reuse_rollout"]
    assert profile["minibatches_per_update"] == 2
    assert abs(sum(profile["one_run_share"].values()) - 1) < 0.01
    assert profile["phases"]["minibatch_step"]["model_gflops"] > profile["phases"]["recompute"]["model_gflops"] > 0
    assert 0 < profile["utilisation_of_peak"] <= 1 and profile["env_steps_per_s"] > 0


@pytest.mark.slow  # two processes each compile and train the tiny update (about 1.5 minutes on 2 cores)
def test_cpu_flags_compares_candidates_on_numbers_and_speed(tmp_path) -> None:
    out = tmp_path / "flags.json"
    _run(["-m", "benchmarks.cpu_flags", "--schedule", "tiny", "--num-seeds", "1", "--updates", "1",
          "--candidates", "default", "single_thread_eigen", "--out", str(out)])
    record = json.loads(out.read_text())
    assert [r["name"] for r in record["results"]] == ["default", "single_thread_eigen"]
    for result in record["results"]:
        assert result["update_s"] > 0 and result["within_rounding"] and result["param_rel_diff_vs_default"] <= 1e-3
    assert record["chosen"] in ("default", "single_thread_eigen") and record["cpu"]


def test_train_ab_reads_the_training_time_past_compilation() -> None:
    from benchmarks.train_ab import _REPORT

    line = "done: 6 updates, env steps per run [49,152, 49,152], 95 s wall (41 s compiling)"
    assert _REPORT.search(line).groups() == ("6", "95", "41")
    with pytest.raises(SystemExit):
        from benchmarks.train_ab import main

        main(["--ref", "HEAD", "--rounds", "0"])


def test_train_ab_times_a_copy_of_a_run_continued_from_its_last_checkpoint(tmp_path) -> None:
    """--from-run: a copy of the run folder continues for the given updates; the time counts
    from the end of the first new update, and the source folder is left as it was."""
    from benchmarks.train_ab import ROOT, main, resume_once

    source = tmp_path / "source"
    _run(["-m", "sociajax.train", "--preset", "smoke", "--run-dir", str(source), "--no-progress"])
    rows_before = (source / "metrics.csv").read_text()
    result = resume_once(ROOT, 3, [], tmp_path / "copy", source)
    assert result["from_update"] == 4 and result["timed_updates"] == 2
    assert result["train_s"] > 0 and result["env_steps_per_s"] > 0
    assert (source / "metrics.csv").read_text() == rows_before
    assert sorted(p.name for p in (source / "checkpoints").iterdir()) == ["2", "4"]
    with pytest.raises(SystemExit, match="--updates"):
        main(["--ref", "HEAD", "--from-run", str(source), "--updates", "1"])


@pytest.mark.parametrize("argv, field", [(["--num-runs", "0"], "--num-runs"), (["--rounds", "0"], "--rounds"),
                                         (["--cores", "0", "0"], "--cores"), (["--cores", "4096"], "--cores"),
                                         (["--num-runs", "3", "--cores", "0", "1"], "--num-runs")])
def test_core_split_refuses_bad_layouts_by_name(argv, field) -> None:
    from benchmarks.core_split import main

    with pytest.raises(SystemExit, match=field):
        main(argv)


@pytest.mark.slow  # six processes compile and train the tiny update (about 3 minutes on 2 cores)
def test_core_split_times_every_layout_and_compares_numbers(tmp_path) -> None:
    out = tmp_path / "split.json"
    cores = sorted(os.sched_getaffinity(0))[:2]
    _run(["-m", "benchmarks.core_split", "--schedule", "tiny", "--num-runs", "2", "--updates", "1", "--rounds", "1",
          "--cores", *map(str, cores), "--out", str(out)])
    record = json.loads(out.read_text())
    [results] = record["rounds"]
    assert [r["layout"] for r in results] == ["one_process", "pinned", "pinned_map", "devices"]
    assert [len(r["processes"]) for r in results] == [1, len(cores), len(cores), 1]
    for result in results:
        assert result["env_steps_per_s"] > 0
        # Other thread counts sum in another order: float rounding, nothing more, at the tiny update.
        assert result["param_rel_diff_vs_one_process"] <= 1e-3
    assert record["summary"]["one_process"]["vs_one_process_median"] == 1.0 and record["cpu"]
