"""The entry points as a user runs them: train, interrupt, resume, evaluate."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from sociajax.training.logging import COLUMNS, read_metrics

TINY = ["--env.max-steps", "16", "--ppo.num-envs", "2", "--ppo.minibatch-segments", "2", "--no-progress"]


def _python(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, **kwargs)


def test_train_then_evaluate_writes_the_run_folder(tmp_path) -> None:
    run = tmp_path / "run"
    result = _python("-m", "sociajax.train", "--preset", "smoke", "--run-dir", str(run), "--num-seeds", "2",
                     "--total-env-steps", "128", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "return over the last 10% of updates: 0 (learner)" in result.stdout
    config = json.loads((run / "config.json").read_text())
    assert config["num_seeds"] == 2 and config["env"]["max_steps"] == 16
    rows = read_metrics(run / "metrics.csv")
    assert list(rows[0]) == list(COLUMNS)
    assert {r["seed"] for r in rows} == {"0", "1"} and {r["agent"] for r in rows} == {"0", "1", "2"}
    assert all(float(r["sps"]) > 0 and float(r["wall_s"]) > 0 for r in rows)
    assert rows[-1]["env_steps"] == "128"  # 4 updates of 2 episodes of 16 steps, per seed
    assert (run / "learning_curve.png").stat().st_size > 0
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.isdigit())[-1] == "4"

    again = _python("-m", "sociajax.train", "--preset", "smoke", "--run-dir", str(run), "--total-env-steps", "128", *TINY)
    assert again.returncode == 2 and "--resume" in again.stderr

    result = _python("-m", "sociajax.evaluate", "--run-dir", str(run), "--episodes", "4")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((run / "eval" / "GoalCycle-3.json").read_text())
    assert report["num_seeds"] == 2 and report["episodes_per_seed"] == 4 and report["updates"] == 4
    assert [a["role"] for a in report["agents"]] == ["learner", "scripted", "scripted"]
    assert all(a["ci95"] >= 0 for a in report["agents"])
    assert report["agents"][1]["mean_return"] > 1  # the scripted oracles score in 16 steps
    assert (run / "eval" / "GoalCycle-3.gif").stat().st_size > 0
    assert "95% CI" in result.stdout

    result = _python("-m", "sociajax.evaluate", "--run-dir", str(run), "--episodes", "2", "--env", "FourRooms",
                     "--no-gif")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((run / "eval" / "FourRooms.json").read_text())
    assert [a["role"] for a in report["agents"]] == ["learner (agent 0)", "scripted:seeker"]


@pytest.mark.slow  # 130-220 s on 2 cores: the default suite stays near 15 minutes
def test_sigterm_saves_a_checkpoint_and_resume_finishes(tmp_path) -> None:
    run = tmp_path / "run"
    args = ["-m", "sociajax.train", "--preset", "smoke", "--run-dir", str(run), "--total-env-steps", "100000",
            "--checkpoint-every", "1000", *TINY]
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.csv"
    deadline = time.time() + 300
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) > 3):
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "interrupted" in out
    rows = read_metrics(metrics)
    saved = max(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    assert saved == int(rows[-1]["update"]) >= 1  # nothing logged is lost

    # only the folder and the new budget: the rest comes from the run's config.json
    resume = ["-m", "sociajax.train", "--run-dir", str(run) + "/", "--resume", "--total-env-steps", str((saved + 2) * 32)]
    result = _python(*resume)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_metrics(metrics)
    assert [int(r["update"]) for r in rows[::3]] == list(range(1, saved + 3))


def test_console_entry_points_are_installed_and_run() -> None:
    """``pip install -e .`` puts ``sociajax-train`` and ``sociajax-evaluate`` beside the
    interpreter; they are the modules' ``main``."""
    from importlib.metadata import entry_points
    from pathlib import Path

    scripts = {e.name: e.value for e in entry_points(group="console_scripts") if e.name.startswith("sociajax-")}
    assert scripts == {"sociajax-train": "sociajax.train:main", "sociajax-evaluate": "sociajax.evaluate:main"}
    for name in scripts:
        result = subprocess.run([str(Path(sys.executable).parent / name), "--help"], capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0 and "--run-dir" in result.stdout, result.stderr[-2000:]
