"""World shape (size, walls) and action set as config: CLI, validation, training, resume,
evaluation and transfer in a miniature world."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from sociajax.train import parse_args
from sociajax.training import AgentConfig, EnvConfig
from sociajax.training.config import static_config
from sociajax.training.logging import COLUMNS, read_metrics
from sociajax.training.run import loaded_params, train
from sociajax.training.trainer import make_train

from training_kit import NOVICE, ORACLE, tiny

MINI = EnvConfig("GoalCycle-3", size=9, n_walls=2, action_set="move", max_steps=16)


def test_cli_sets_the_world_shape_and_action_set_and_they_are_static() -> None:
    config, _ = parse_args(["--preset", "smoke", "--env.size", "9", "--env.n-walls", "2", "--env.action-set", "move"])
    assert (config.env.size, config.env.n_walls, config.env.action_set) == (9, 2, "move")
    trainer = make_train(config)
    assert (trainer.env.height, trainer.env.width, trainer.env.n_walls) == (9, 9, 2)
    assert trainer.population.num_actions == 3
    # each shape its own program: shape fields survive static_config and are not data
    assert static_config(config).env == config.env
    with pytest.raises(ValueError, match="env.size"):
        dataclasses.replace(config, conditions=("a: env.size=7",))
    saved = json.loads(config.to_json())
    assert saved["env"]["size"] == 9 and saved["env"]["action_set"] == "move"


def test_the_defaults_are_the_papers_world() -> None:
    trainer = make_train(tiny())
    assert (trainer.env.height, trainer.env.n_walls, trainer.population.num_actions) == (13, 18, 7)


@pytest.mark.parametrize(
    "env, message",
    [
        (EnvConfig("GoalCycle-3", size=4), "size must be >= 5, got size=4"),
        (EnvConfig("GoalCycle-3", size=0), "env.size must be a positive integer"),
        (EnvConfig("GoalCycle-3", size=5, n_walls=4), "n_walls \\+ n_goals \\+ n_agents = 10 does not fit in the 9"),
        (EnvConfig("GoalCycle-3", n_walls=-1), "env.n_walls must be a non-negative integer"),
        (EnvConfig("GoalCycle-3", action_set="all"), "env.action_set must be one of \\('paper', 'move'\\)"),
        (EnvConfig("FourRooms", size=7), "size must be >= 9, got size=7"),
        (EnvConfig("FourRooms", n_walls=2), "unknown option n_walls=2 for FourRooms"),
        (EnvConfig("Maze", size=8), "size must be odd"),
    ],
)
def test_bad_shapes_are_refused_by_name(env: EnvConfig, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny(env=env, agents=(NOVICE, ORACLE, ORACLE) if env.env_id.startswith("GoalCycle") else (NOVICE, ORACLE))


def test_the_policy_head_follows_the_action_set_and_only_moves_are_taken() -> None:
    from sociajax.training.rollout import collect

    trainer = make_train(tiny(env=MINI))
    population = trainer.population
    state = population.init(jax.random.PRNGKey(0))
    assert state.learners.params["policy_out"]["kernel"].shape[-1] == 3
    params = population.acting_params(state)
    rollout, _ = jax.jit(lambda key: collect(population, trainer.env, trainer.env_params, params, key, 8, 16))(
        jax.random.PRNGKey(1)
    )
    actions = np.asarray(rollout.actions)
    assert actions.max() <= 2 and len(np.unique(actions)) == 3


def test_a_9x9_run_trains_resumes_exactly_and_evaluates(tmp_path) -> None:
    whole = train(tiny(env=MINI, run_dir=str(tmp_path / "whole")))
    train(tiny(env=MINI, run_dir=str(tmp_path / "part"), total_env_steps=2 * 2 * 16))
    resumed = train(tiny(env=MINI, run_dir=str(tmp_path / "part")), resume=True)
    assert resumed.env_steps == whole.env_steps == [4 * 2 * 16]
    exact = [c for c in COLUMNS if c not in ("sps", "wall_s")]
    rows_whole = read_metrics(tmp_path / "whole" / "metrics.csv")
    rows_part = read_metrics(tmp_path / "part" / "metrics.csv")
    assert [[r[c] for c in exact] for r in rows_whole] == [[r[c] for c in exact] for r in rows_part]

    def evaluate(*flags: str) -> dict:
        result = subprocess.run(
            [sys.executable, "-m", "sociajax.evaluate", "--run-dir", str(tmp_path / "whole"), "--episodes", "2",
             "--no-gif", *flags],
            capture_output=True, text=True, timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    evaluate()
    own = json.loads((tmp_path / "whole" / "eval" / "GoalCycle-3.json").read_text())
    assert own["world"] == {"size": 9, "n_walls": 2, "max_steps": 16}  # the run's own world, not the default
    evaluate("--env", "GoalCycle-4", "--size", "9", "--n-walls", "0")
    moved = json.loads((tmp_path / "whole" / "eval" / "GoalCycle-4-9x9-w0.json").read_text())
    assert moved["world"] == {"size": 9, "n_walls": 0, "max_steps": 250}  # GoalCycle's default length
    evaluate("--env", "GoalCycle-4", "--size", "9", "--n-walls", "0", "--max-steps", "16")
    short = json.loads((tmp_path / "whole" / "eval" / "GoalCycle-4-9x9-w0-t16.json").read_text())
    assert short["world"]["max_steps"] == 16
    assert [a["role"] for a in moved["agents"]] == ["learner (agent 0)", "scripted:oracle", "scripted:oracle"]
    bad = subprocess.run(
        [sys.executable, "-m", "sociajax.evaluate", "--run-dir", str(tmp_path / "whole"), "--env", "FourRooms",
         "--size", "7", "--no-gif"],
        capture_output=True, text=True, timeout=600,
    )
    assert bad.returncode == 2 and "size must be >= 9, got size=7" in bad.stderr


def test_an_agent_of_another_action_set_is_refused_when_loaded(tmp_path) -> None:
    source = tiny(run_dir=str(tmp_path / "paper-actions"), agents=(NOVICE,), total_env_steps=2 * 16)
    train(source)
    frozen = AgentConfig(role="frozen", load_from=source.run_dir)
    config = tiny(env=MINI, run_dir=str(tmp_path / "novice"), agents=(NOVICE, frozen, ORACLE))
    with pytest.raises(ValueError, match="agents.1.load_from=.*does not fit.*action_set='move': 3 actions\\)$"):
        loaded_params(make_train(config))
