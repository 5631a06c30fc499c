"""benchmarks/gpu_suite.sh runs end to end at toy sizes (TINY=1) on a CPU and writes the
fields a lease needs: compile time, peak memory per seed, Figure 4's projection, float32 and
bfloat16. The end-to-end run is slow (every step's process compiles a trainer); the
projection and the summary are checked fast on hand-made records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.env_throughput import machine_info
from benchmarks.train_throughput import FIGURE4, figure4_projection, summarize

ROOT = Path(__file__).resolve().parents[2]
POINT_FIELDS = ("num_seeds", "dtype", "compile_s", "env_steps_per_s", "env_steps_per_s_per_seed",
                "device_peak_bytes_per_seed", "compiled_peak_bytes_per_seed", "figure4_projection")


def test_figure4_projection_is_papers_scale() -> None:
    one = figure4_projection(env_steps_per_s_per_seed=1e5, num_seeds=1, compile_s=10.0)
    assert one["total_env_steps"] == 5 * 5 * 1_500_000 * 250 == 9_375_000_000
    assert one["programs"] == 25 and one["wall_s"] == round(25 * (375e6 / 1e5 + 10))
    many = figure4_projection(1e5, num_seeds=64, compile_s=10.0)
    assert many["programs"] == 1 and many["wall_s"] == round(375e6 / 1e5 + 10)
    assert figure4_projection(1e5, 16, 0.0)["programs"] == 2


def _point(seeds: int, dtype: str, speed: float) -> dict:
    return {"num_seeds": seeds, "dtype": dtype, "env_steps_per_s": speed,
            "figure4_projection": figure4_projection(speed / seeds, seeds, 1.0)}


def test_summary_merges_steps_and_compares_dtypes(tmp_path) -> None:
    info = machine_info()
    stem = f"train_throughput_{info['platform']}_{info['date']}_t"
    (tmp_path / f"{stem}_f32.json").write_text(json.dumps({"points": [_point(1, "float32", 100.0)]}))
    bf16 = [_point(1, "bfloat16", 150.0), {"num_seeds": 16, "dtype": "bfloat16", "error": "OOM"}]
    (tmp_path / f"{stem}_bf16.json").write_text(json.dumps({"points": bf16}))
    summary = json.loads(summarize(tmp_path, "t", 12.0).read_text())
    assert summary["steps"] == ["bf16", "f32"]
    assert summary["bf16_speedup_by_seeds"] == {"1": 1.5}
    assert summary["figure4_best"]["dtype"] == "bfloat16"
    assert [p["error"] for p in summary["failed_points"]] == ["OOM"]


@pytest.mark.slow
def test_tiny_suite_runs_end_to_end_on_cpu(tmp_path) -> None:
    env = dict(os.environ, TINY="1", OUT=str(tmp_path), TAG="tiny", PYTHON=sys.executable,
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_suite.sh")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((tmp_path / "gpu_suite_tiny.json").read_text())
    assert summary["steps"] == ["bf16", "f32", "lstm_unroll1", "social"]
    assert not summary["failed_points"]
    assert {p["dtype"] for p in summary["points"]} == {"float32", "bfloat16"}
    for point in summary["points"]:
        for field in POINT_FIELDS:
            assert field in point, field
        assert point["device_peak_bytes_per_seed"] is None  # CPU: no allocator statistics
        assert point["compiled_peak_bytes_per_seed"] > 0 and point["compile_s"] > 0
        assert point["figure4_projection"]["total_env_steps"] == 9_375_000_000
        assert point["figure4_projection"]["episode_steps"] == FIGURE4["episode_steps"]
    assert "1" in summary["bf16_speedup_by_seeds"]
    assert summary["xla_env"]["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.95"
