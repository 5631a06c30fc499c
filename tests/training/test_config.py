"""Configs: bad values are refused with the field's CLI path; presets are valid and sized."""

from __future__ import annotations

import json

import pytest

from sociajax.agents.ppo import PPOConfig
from sociajax.train import parse_args
from sociajax.training import PRESETS, AgentConfig, EnvConfig, NetworkConfig, TrainConfig, get_preset
from sociajax.training.config import condition_configs, static_config
from sociajax.training.config import rollout_length

from training_kit import NOVICE, ORACLE, tiny


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"agents": (NOVICE, AgentConfig(role="scripted", policy="teleporter"))}, "agents.1.policy"),
        ({"agents": (AgentConfig(lr=-1e-4),)}, "agents.0.lr"),
        ({"agents": (NOVICE, AgentConfig(role="scripted", epsilon=1.5))}, "agents.1.epsilon"),
        ({"agents": (AgentConfig(epsilon=0.2),)}, "agents.0.epsilon applies to scripted agents only"),
        ({"agents": (NOVICE, AgentConfig(role="boss"))}, "agents.1.role"),
        ({"agents": (ORACLE, ORACLE)}, "role 'learner'"),
        ({"agents": ()}, "agents"),
        ({"env": EnvConfig("GoalCycle-3", max_steps=0)}, "env.max_steps"),
        ({"env": EnvConfig("Tetris")}, "Tetris"),
        ({"num_seeds": 0}, "num_seeds"),
        ({"total_env_steps": 2.5}, "total_env_steps"),
        ({"updates_per_chunk": 0}, "updates_per_chunk"),
        ({"run_loop": "scan"}, "run_loop"),
        ({"seed": -1}, "seed"),
        ({"ppo": PPOConfig(num_envs=2, minibatch_segments=64)}, "minibatch_segments"),
        ({"network": NetworkConfig(chunk=-1)}, "network.chunk"),
        ({"network": NetworkConfig(lstm_unroll=0)}, "network.lstm_unroll"),
        ({"network": NetworkConfig(lstm_unroll=True)}, "network.lstm_unroll"),
    ],
)
def test_bad_values_name_the_field(changes, field) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        tiny(**changes)


def test_presets_are_valid_and_the_paper_ones_use_the_papers_schedule() -> None:
    assert {"smoke", "social-scripted", "paper-social", "paper-solo"} <= set(PRESETS)
    for name in ("paper-social", "paper-solo"):
        config = get_preset(name)
        assert config.ppo == PPOConfig()  # 128 episodes, 20 x 512 x 16, the paper's coefficients
        assert all(a.lr == 1e-4 and a.aux for a in config.agents if a.role == "learner")
        assert rollout_length(config) == 256  # 250-step episodes padded to 16-step segments
    social = get_preset("social-scripted")
    assert [a.role for a in social.agents] == ["learner", "scripted", "scripted"]
    assert social.agents[0].aux and social.env.env_id == "GoalCycle-3"
    # the main job puts a solo control beside the social novice, in the same program
    named = dict(condition_configs(social))
    assert list(named) == ["social", "solo"]
    assert [float(a.presence) for a in named["social"].agents] == [1, 1, 1]
    assert [float(a.presence) for a in named["solo"].agents] == [1, 0, 0]
    assert static_config(named["social"]) == static_config(named["solo"])
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("nope")


def test_config_round_trips_through_json() -> None:
    config = tiny(agents=(NOVICE, AgentConfig(role="scripted", policy="random", epsilon=0.5)),
                  network=NetworkConfig(lstm_unroll=4))
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config


def test_a_saved_config_from_before_network_settings_loads_with_defaults() -> None:
    data = json.loads(tiny().to_json())
    del data["network"]
    assert TrainConfig.from_dict(data) == tiny()


def test_unknown_fields_in_a_saved_config_are_named() -> None:
    data = json.loads(tiny().to_json())
    data["ppo"]["learning_rate"] = 1.0
    with pytest.raises(ValueError, match=r"unknown field ppo\.learning_rate"):
        TrainConfig.from_dict(data)


def test_cli_flags_override_the_preset() -> None:
    config, resume = parse_args(
        ["--preset", "smoke", "--run-dir", "x", "--num-seeds", "3", "--agents.0.lr", "3e-4",
         "--ppo.num-minibatches", "3", "--env.penalty", "-0.5", "--network.lstm-unroll", "8", "--run-loop", "map", "--resume"]
    )
    assert resume and config.run_dir == "x" and config.num_seeds == 3 and config.run_loop == "map"
    assert config.network == NetworkConfig(chunk=None, lstm_unroll=8)
    assert config.agents[0].lr == 3e-4 and config.ppo.num_minibatches == 3 and config.env.penalty == "-0.5"
    assert config.agents[1:] == get_preset("smoke").agents[1:]


def test_cli_rejects_a_bad_value_with_its_field(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--preset", "smoke", "--num-seeds", "0"])
    assert exit_.value.code != 0
    assert "num_seeds must be a positive integer, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--preset", "no-such-preset"])
    assert "unknown preset" in str(exit_.value.code)


def test_each_fields_kind_is_declared_once_and_the_lists_follow_from_it() -> None:
    """The data fields, the static config, the program key and what --resume may change all
    come from the field markers (sociajax.fields)."""
    import dataclasses

    from sociajax import fields
    from sociajax.training.config import DATA_FIELDS, RESUMABLE_CHANGES, program_config

    agent_data = {"lr", "aux", "aux_target", "objective", "imitate", "presence", "epsilon", "load_from",
                  "load_agent", "load_seed", "load_update"}
    ppo_data = {"gamma", "gae_lambda", "clip_eps", "value_coef", "entropy_coef", "aux_coef", "target_kl", "hard_kl",
                "max_grad_norm"}
    assert set(DATA_FIELDS) == {"env.penalty"} | {f"agents.N.{n}" for n in agent_data} | {f"ppo.{n}" for n in ppo_data}
    assert all(doc for doc in DATA_FIELDS.values())
    assert set(RESUMABLE_CHANGES) == {"total_env_steps", "checkpoint_every", "keep_checkpoints", "tensorboard",
                                      "baseline_episodes", "progress"}
    assert {f.name for f in fields.of_kind(TrainConfig, "host")} == set(RESUMABLE_CHANGES) | {"seed", "run_dir"}
    # where the derivations look: data fields in env, agents, ppo (and TrainConfig.conditions),
    # host fields at the top level only; a marker anywhere else would be silently ignored
    assert not fields.of_kind(NetworkConfig, "data") and not fields.of_kind(NetworkConfig, "host")
    assert not any(fields.of_kind(cls, "host") for cls in (EnvConfig, AgentConfig, PPOConfig))
    assert [f.name for f in fields.of_kind(TrainConfig, "data")] == ["conditions"]

    busy = tiny(
        env=EnvConfig("GoalCycle-3", max_steps=16, penalty="-0.5"),
        agents=(AgentConfig(lr=3e-4, aux=False), dataclasses.replace(ORACLE, presence="0.5")),
        ppo=PPOConfig(num_envs=2, num_minibatches=2, minibatch_segments=2, recompute_every=1, gamma=0.9),
        conditions=("a: agents.0.lr=1e-3",), seed=7, total_env_steps=64, run_dir="elsewhere", progress=True,
    )
    static = static_config(busy)
    assert static.env.penalty is None and static.conditions == () and static.ppo.gamma == PPOConfig().gamma
    assert static.agents[0] == AgentConfig() and static.agents[1] == ORACLE
    assert (static.seed, static.run_dir, static.ppo.num_envs, static.env.max_steps) == (7, "elsewhere", 2, 16)
    keyed = program_config(busy)
    assert (keyed.seed, keyed.run_dir, keyed.total_env_steps) == (0, "runs/default", 1_000_000)
    assert keyed == program_config(dataclasses.replace(busy, seed=3, run_dir="x", total_env_steps=32, conditions=()))
    assert keyed != program_config(dataclasses.replace(busy, num_seeds=2))
