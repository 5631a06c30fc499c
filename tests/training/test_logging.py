"""Metric rows, CSV truncation on resume, confidence intervals, the TensorBoard sink."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from sociajax.training.trainer import PPO_METRICS
from sociajax.training.logging import COLUMNS, MetricsCSV, TensorBoard, chunk_rows, late_returns, read_metrics
from sociajax.viz.curves import mean_ci, plot_learning_curves, t95


def _metrics(num_seeds=2, num_updates=3, num_agents=3, num_learners=1):
    rng = np.random.default_rng(0)
    metrics = {
        "return": rng.normal(size=(num_seeds, num_updates, num_agents)),
        "env_steps": np.full((num_seeds, num_updates), 32),
        "episode_length": np.full((num_seeds, num_updates), 16.0),
        "present": np.ones((num_seeds, num_updates, num_agents)),
        "presence": np.ones((num_seeds, num_updates, num_agents)),
        "penalty": np.full((num_seeds, num_updates), -1.5),
    }
    for name in PPO_METRICS:
        metrics[name] = rng.normal(size=(num_seeds, num_updates, num_learners))
    return metrics


def test_rows_are_one_per_update_seed_and_agent_with_cumulative_steps(tmp_path) -> None:
    metrics = _metrics()
    rows = chunk_rows(metrics, ("learner", "scripted", "scripted"), (0,), 6, np.array([192, 192]),
                      np.array([7, 8]), sps=100.0, wall_s=5.0)
    assert len(rows) == 3 * 2 * 3 and list(rows[0]) == list(COLUMNS)
    assert [r["update"] for r in rows[::6]] == [7, 8, 9]
    assert [r["env_steps"] for r in rows if r["seed"] == 8 and r["agent"] == 0] == [224, 256, 288]
    learner = [r for r in rows if r["agent"] == 0]
    assert all(isinstance(r["loss"], float) for r in learner)
    assert all(r["loss"] == "" for r in rows if r["agent"] != 0)
    assert rows[4]["return"] == pytest.approx(metrics["return"][1, 0, 1])

    csv_log = MetricsCSV(tmp_path / "metrics.csv")
    csv_log.append(rows)
    MetricsCSV(tmp_path / "metrics.csv", keep_through_update=8)  # resume from update 8
    kept = read_metrics(tmp_path / "metrics.csv")
    assert {int(r["update"]) for r in kept} == {7, 8} and len(kept) == 12


def test_late_returns_average_the_last_tenth_of_updates_per_condition(tmp_path) -> None:
    metrics = _metrics(num_seeds=4, num_updates=20)
    metrics["return"][2:, :, 1] = np.nan  # agent 1 absent from condition b's runs
    rows = chunk_rows(metrics, ("learner", "scripted", "scripted"), (0,), 0, np.zeros(4, np.int64),
                      np.array([0, 1, 0, 1]), 1.0, 1.0, ["a", "a", "b", "b"])
    MetricsCSV(tmp_path / "m.csv").append(rows)
    late = late_returns(tmp_path / "m.csv")  # updates 19 and 20
    assert set(late) == {"a", "b"}
    assert late["a"][0] == pytest.approx(metrics["return"][:2, 18:, 0].mean())
    assert late["b"][2] == pytest.approx(metrics["return"][2:, 18:, 2].mean())
    assert np.isnan(late["b"][1])
    assert late_returns(tmp_path / "m.csv", fraction=1.0)["a"][0] == pytest.approx(metrics["return"][:2, :, 0].mean())
    with pytest.raises(ValueError, match="fraction"):
        late_returns(tmp_path / "m.csv", fraction=0)


def test_confidence_interval_is_students_t() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0])
    mean, half = mean_ci(values)
    assert mean == 2.5
    assert half == pytest.approx(3.182 * np.std(values, ddof=1) / 2)
    assert mean_ci(np.array([5.0]))[1] == 0
    assert t95(100) == 1.96 and t95(1) == 12.706


def test_learning_curve_plot_from_csv(tmp_path) -> None:
    rows = chunk_rows(_metrics(), ("learner", "scripted", "scripted"), (0,), 0, np.zeros(2, np.int64),
                      np.array([0, 1]), 1.0, 1.0)
    MetricsCSV(tmp_path / "m.csv").append(rows)
    out = plot_learning_curves(tmp_path / "m.csv", tmp_path / "c.png", references={"random": -0.9})
    assert (tmp_path / "c.png").stat().st_size > 1000 and out.endswith("c.png")


def test_tensorboard_without_its_package_says_what_to_install(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if not installed
    with pytest.raises(ImportError, match="pip install tensorboardX"):
        TensorBoard(tmp_path)
