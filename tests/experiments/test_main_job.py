"""The README's main job (experiments/scripted_goal_cycle.py) runs end to end (tiny sizes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio

ROOT = Path(__file__).resolve().parents[2]


def test_main_job_writes_gif_and_reports_speed(tmp_path) -> None:
    args = ["experiments/scripted_goal_cycle.py", "--out", str(tmp_path), "--num-envs", "8", "--num-steps", "5"]
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    gif = tmp_path / "goal_cycle_scripted.gif"
    frames = iio.imread(gif, index=None)
    assert frames.shape[0] == 251 and frames.ndim == 4  # first state plus 250 steps
    assert "env-steps/s" in result.stdout and "oracle expert" in result.stdout
