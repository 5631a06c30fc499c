"""Learning, end to end (slow): a novice beside scripted experts learns to score."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import sociajax
from sociajax.agents import make_policy
from sociajax.eval import scripted_returns
from sociajax.training import get_preset
from sociajax.training.logging import read_metrics
from sociajax.training.run import train


@pytest.mark.slow
def test_novice_beside_scripted_experts_beats_a_random_policy(tmp_path) -> None:
    """The social-scripted preset's social condition alone, 600k env steps (~6 minutes on 2
    CPU cores)."""
    config = dataclasses.replace(
        get_preset("social-scripted"), conditions=(), run_dir=str(tmp_path / "run"), total_env_steps=600_000,
        progress=False,
    )
    train(config)
    rows = [r for r in read_metrics(tmp_path / "run" / "metrics.csv") if r["agent"] == "0"]
    returns = np.array([float(r["return"]) for r in rows])
    env, params = sociajax.make(config.env.env_id, penalty=float(config.env.penalty))
    random = scripted_returns(
        env, params, [make_policy("random"), make_policy("oracle"), make_policy("oracle")],
        jax.random.PRNGKey(0), num_envs=256,
    )
    random_return = float(random[:, 0].mean())
    early, late = returns[:10].mean(), returns[-20:].mean()
    assert late > random_return + 0.4, (late, random_return)
    assert late > early + 0.4, (early, late)
