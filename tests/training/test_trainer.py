"""The compiled trainer: vmapped population == one-by-one updates, determinism, one compile,
resume equality, frozen agents, sharded seeds."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from training_kit import NOVICE, ORACLE, tiny

from sociajax.agents.ppo import LearnerData, ppo_update
from sociajax.training import AgentConfig, EnvConfig, NetworkConfig, make_train
from sociajax.training.logging import COLUMNS, read_metrics
from sociajax.training.rollout import collect
from sociajax.training.run import train


def _leaves_equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _run_chunks(config, count: int):
    trainer = make_train(config)
    state = trainer.place(trainer.init(trainer.seed_keys()))
    metrics = []
    for _ in range(count):
        state, m = trainer.chunk(state)
        metrics.append(jax.device_get(m))
    return trainer, state, metrics


@pytest.mark.slow  # 130-220 s on 2 cores: the default suite stays near 15 minutes
def test_vmapped_population_update_equals_per_learner_updates() -> None:
    # Two learners with different rates, one without the aux loss, beside a scripted agent.
    agents = (
        AgentConfig(role="learner", lr=1e-3),
        ORACLE,
        AgentConfig(role="learner", lr=1e-4, aux=False),
    )
    config = tiny(agents=agents)
    trainer = make_train(config)
    population = trainer.population
    state = jax.tree.map(lambda x: x[0], trainer.init(trainer.seed_keys()))
    params = population.acting_params(state.population)
    rollout, _ = collect(population, trainer.env, trainer.env_params, params, jax.random.PRNGKey(3),
                         config.ppo.num_envs, trainer.rollout_steps)
    keys = jax.random.split(jax.random.PRNGKey(4), 2)
    from sociajax.training.rollout import ROLLOUT_AXES

    together, metrics = jax.jit(
        jax.vmap(lambda s, r, k, d: ppo_update(s, r, k, config.ppo, d), in_axes=(0, ROLLOUT_AXES, 0, 0))
    )(state.population.learners, rollout, keys, state.data.learners)
    for k, agent in enumerate(population.learner_agents):
        own = jax.tree.map(lambda x: x[k], state.population.learners)
        own_rollout = jax.tree.map(lambda x: x[:, k], rollout).replace(
            init_carry=jax.tree.map(lambda c: c[k], rollout.init_carry)
        )
        own_data = LearnerData.of(
            config.ppo, lr=agents[agent].lr, aux_coef=config.ppo.aux_coef if agents[agent].aux else 0.0
        )
        alone, own_metrics = jax.jit(functools.partial(ppo_update, config=config.ppo, data=own_data))(
            own, own_rollout, keys[k]
        )
        np.testing.assert_allclose(float(metrics["loss"][k]), float(own_metrics["loss"]), rtol=1e-5, atol=1e-6)
        for x, y in zip(jax.tree.leaves(alone.params), jax.tree.leaves(jax.tree.map(lambda p: p[k], together.params))):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
        assert int(alone.step) == int(together.step[k])
    # the learner without the aux loss had zero aux weight, the other a positive one
    assert float(metrics["aux_loss"][0]) > 0


def test_the_rollout_holds_the_first_recomputes_targets_and_reusing_them_changes_no_numbers() -> None:
    """What acting computes (carries at segment starts, the last view's value) gives the
    first recompute's targets, to float rounding."""
    from sociajax.agents.ppo import recompute_targets, rollout_targets

    config = tiny(run_dir="unused-r1")
    assert config.ppo.reuse_rollout
    trainer = make_train(config)
    population = trainer.population
    state = jax.tree.map(lambda x: x[0], trainer.init(trainer.seed_keys()))
    params = population.acting_params(state.population)
    rollout, _ = collect(population, trainer.env, trainer.env_params, params, jax.random.PRNGKey(3),
                         config.ppo.num_envs, trainer.rollout_steps, segment_len=config.ppo.segment_len)
    own = jax.tree.map(lambda x: x[:, 0], rollout).replace(
        init_carry=jax.tree.map(lambda c: c[0], rollout.init_carry), last_value=rollout.last_value[0]
    )
    learner = jax.tree.map(lambda x: x[0], state.population.learners)
    fresh = recompute_targets(learner.params, learner.apply_fn, own, config.ppo)
    reused = rollout_targets(own, config.ppo)
    for a, b in zip(jax.tree.leaves(fresh), jax.tree.leaves(reused)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # two programs, two updates each (about 2 minutes on 2 cores)
def test_training_with_the_reused_first_recompute_equals_training_without() -> None:
    config = tiny(run_dir="unused-r1")
    _, state_on, on = _run_chunks(config, 2)
    off_config = tiny(run_dir="unused-r2", ppo=dataclasses.replace(config.ppo, reuse_rollout=False))
    _, state_off, off = _run_chunks(off_config, 2)
    for m_on, m_off in zip(on, off):
        for name in ("return", "loss", "aux_loss", "value_loss", "approx_kl_final", "num_steps"):
            np.testing.assert_allclose(m_on[name], m_off[name], rtol=1e-4, atol=1e-6)
    for a, b in zip(jax.tree.leaves(state_on.population.learners.params), jax.tree.leaves(state_off.population.learners.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-5)


def test_programs_that_clone_do_not_reuse_the_rollout() -> None:
    """An imitation learner's rollout holds another agent's views: its program recomputes."""
    from sociajax.training.config import static_config

    plain = tiny()
    cloning = tiny(conditions=("social: agents.0.aux=true", "il: agents.0.objective=bc agents.0.imitate=1"))
    assert static_config(plain).ppo.reuse_rollout
    assert not static_config(cloning).ppo.reuse_rollout
    # the choice is the program's: its conditions, each seen inside it, stay one program
    from sociajax.training.config import condition_static_configs

    statics = list(condition_static_configs(cloning).values())
    assert len(statics) == 2 and statics[0] == statics[1] and not statics[0].ppo.reuse_rollout
    assert not static_config(tiny(ppo=dataclasses.replace(plain.ppo, reuse_rollout=False))).ppo.reuse_rollout


def test_same_seed_same_metrics_and_one_compile() -> None:
    config = tiny(run_dir="unused-a")
    trainer, state_a, first = _run_chunks(config, 2)
    _, state_b, second = _run_chunks(config, 2)
    for a, b in zip(first, second):
        assert _leaves_equal(a, b)
    assert _leaves_equal(state_a, state_b)
    assert trainer.chunk._cache_size() == 1  # four chunks, one compiled program
    assert int(state_a.update[0]) == 2
    # a different seed gives different numbers
    _, _, other = _run_chunks(tiny(seed=5), 1)
    assert not _leaves_equal(first[0]["return"], other[0]["return"]) or not _leaves_equal(
        first[0]["loss"], other[0]["loss"]
    )


@pytest.mark.slow  # 130-220 s on 2 cores: the default suite stays near 15 minutes
def test_scanned_chunks_equal_single_update_chunks() -> None:
    """Updates draw their keys from the update index: grouping does not change numbers."""
    _, state_single, single = _run_chunks(tiny(run_dir="unused-b"), 2)
    trainer, state_scan, scanned = _run_chunks(tiny(run_dir="unused-c", updates_per_chunk=2), 1)
    assert trainer.updates_per_chunk == 2 and trainer.chunk._cache_size() == 1
    for name in ("return", "loss", "aux_loss", "env_steps"):
        np.testing.assert_allclose(
            np.concatenate([m[name] for m in single], 1), scanned[0][name], rtol=1e-5, atol=1e-6
        )


@pytest.mark.slow  # 130-220 s on 2 cores: the default suite stays near 15 minutes
def test_network_speed_settings_change_no_numbers() -> None:
    """``TrainConfig.network`` reaches the learners' network and changes only how it runs."""
    _, _, plain = _run_chunks(tiny(run_dir="unused-n1"), 1)
    trainer, _, tuned = _run_chunks(tiny(run_dir="unused-n2", network=NetworkConfig(chunk=8, lstm_unroll=3)), 1)
    assert (trainer.population.network.chunk, trainer.population.network.lstm_unroll) == (8, 3)
    for name in ("return", "loss", "aux_loss", "value_loss", "approx_kl_final"):
        np.testing.assert_allclose(plain[0][name], tuned[0][name], rtol=1e-4, atol=1e-6)


@pytest.mark.slow  # 130-220 s on 2 cores: the default suite stays near 15 minutes
def test_frozen_agent_loads_params_and_never_changes(tmp_path) -> None:
    source = tiny(run_dir=str(tmp_path / "expert"), total_env_steps=2 * 2 * 16)
    train(source)
    from sociajax.training.checkpoint import load_agent_params

    expert = load_agent_params(source.run_dir, agent=0)
    config = tiny(
        run_dir=str(tmp_path / "novice"),
        agents=(NOVICE, AgentConfig(role="frozen", load_from=source.run_dir, load_agent=0)),
    )
    trainer = make_train(config)
    from sociajax.training.run import loaded_params

    state = trainer.init(trainer.seed_keys(), loaded_params(trainer))
    frozen_before = jax.tree.map(lambda x: x[0, 0], state.population.frozen_params)
    assert _leaves_equal(frozen_before, expert)
    learner_before = jax.tree.map(np.asarray, state.population.learners.params)
    state, _ = trainer.chunk(state)
    assert _leaves_equal(jax.tree.map(lambda x: x[0, 0], state.population.frozen_params), expert)
    assert not _leaves_equal(state.population.learners.params, learner_before)


@pytest.mark.parametrize("learners", [1, 2])
def test_looped_runs_and_learners_give_the_numbers_of_batched_ones(learners: int) -> None:
    """``run_loop="map"`` steps the runs, and each run's learners, one after another in one
    program (one learner: its update unbatched): a speed setting, the numbers of ``"vmap"``
    to float rounding."""
    agents = (NOVICE, dataclasses.replace(NOVICE, lr=3e-4), ORACLE)[2 - learners:]
    trainer, looped_state, looped = _run_chunks(
        tiny(run_dir="unused-m1", num_seeds=2, agents=agents, run_loop="map"), 1)
    _, batched_state, batched = _run_chunks(tiny(run_dir="unused-m2", num_seeds=2, agents=agents), 1)
    assert trainer.chunk._cache_size() == 1
    for name in ("return", "loss", "aux_loss", "value_loss", "approx_kl_final"):
        np.testing.assert_allclose(looped[0][name], batched[0][name], rtol=1e-4, atol=1e-6)
    for a, b in zip(jax.tree.leaves(looped_state.population.learners.params),
                    jax.tree.leaves(batched_state.population.learners.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-5)


def test_resume_gives_the_numbers_of_one_uninterrupted_run(tmp_path) -> None:
    whole = train(tiny(run_dir=str(tmp_path / "whole"), total_env_steps=4 * 2 * 16))
    part = train(tiny(run_dir=str(tmp_path / "part"), total_env_steps=2 * 2 * 16))
    assert part.updates == 2 and whole.updates == 4
    resumed = train(tiny(run_dir=str(tmp_path / "part"), total_env_steps=4 * 2 * 16), resume=True)
    assert resumed.updates == 4 and resumed.env_steps == whole.env_steps
    rows_whole = read_metrics(tmp_path / "whole" / "metrics.csv")
    rows_resumed = read_metrics(tmp_path / "part" / "metrics.csv")
    assert list(rows_whole[0]) == list(COLUMNS)
    assert len(rows_whole) == len(rows_resumed) == 4 * 3  # updates x agents (one seed)
    exact = [c for c in COLUMNS if c not in ("sps", "wall_s")]
    assert [[r[c] for c in exact] for r in rows_whole] == [[r[c] for c in exact] for r in rows_resumed]
    assert (tmp_path / "part" / "learning_curve.png").stat().st_size > 0


def test_the_random_baseline_faces_the_first_conditions_penalty_and_presence(tmp_path) -> None:
    """The learning curve's floor is a random agent in the world the learners train in: at
    the run's penalty (not the env's default) and with its experts' presence."""
    from sociajax.training.run import random_baseline

    def baseline(name: str, **changes) -> list[float]:
        config = tiny(run_dir=str(tmp_path / name), env=EnvConfig("GoalCycle-3", max_steps=64, **changes.pop("env", {})),
                      baseline_episodes=32, **changes)
        (tmp_path / name).mkdir()
        return random_baseline(make_train(config), tmp_path / name)

    free = baseline("free", env={"penalty": 0.0})
    costly = baseline("costly", env={"penalty": -5.0})
    assert free[0] >= 0 and costly[0] < free[0]  # same random episodes, only the penalty differs
    solo = baseline("solo", env={"penalty": 0.0}, conditions=("solo: agents.1.presence=0 agents.2.presence=0",))
    assert solo[1] == solo[2] == 0 and free[1] > 0  # absent experts earn nothing


def test_starting_over_an_existing_run_is_refused(tmp_path) -> None:
    config = tiny(run_dir=str(tmp_path / "run"), total_env_steps=2 * 16, baseline_episodes=4)
    train(config)
    baseline = json.loads((tmp_path / "run" / "baseline.json").read_text())
    assert baseline["episodes"] == 4 and len(baseline["random_policy_return"]) == 3
    assert baseline["random_policy_return"][1] > 0  # the oracles still score beside a random agent
    with pytest.raises(FileExistsError, match="--resume"):
        train(config)
    with pytest.raises(ValueError, match="agents"):
        train(dataclasses.replace(config, agents=(NOVICE,)), resume=True)


@pytest.mark.slow  # 130-220 s on 2 cores: the default suite stays near 15 minutes
def test_seeds_are_sharded_over_devices_and_match_single_seed_runs() -> None:
    """On a host forced to 4 CPU devices, 4 seeds run sharded, one per device, and seed i of
    the sweep equals a run with seed + i alone."""
    script = textwrap.dedent(
        """
        import sys, jax, numpy as np
        sys.path.insert(0, sys.argv[1])
        from training_kit import tiny
        from sociajax.training import make_train
        assert jax.device_count() == 4, jax.devices()
        def run(config):
            trainer = make_train(config)
            state = trainer.place(trainer.init(trainer.seed_keys()))
            state, metrics = trainer.chunk(state)
            return trainer, state, jax.device_get(metrics)
        trainer, state, sweep = run(tiny(seed=10, num_seeds=4))
        assert trainer.sharding is not None
        assert len(state.key.sharding.device_set) == 4, state.key.sharding
        for i in (0, 3):
            _, _, alone = run(tiny(seed=10 + i, num_seeds=1))
            for name in ("return", "loss", "aux_loss"):
                np.testing.assert_allclose(sweep[name][i], alone[name][0], rtol=1e-5, atol=1e-6)
        print("OK")
        """
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-c", script, os.path.dirname(__file__)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


def test_multi_seed_init_finishes_on_cpu() -> None:
    """Initialising several seeds of a 3-learner population must finish. Batched (vmapped)
    QR calls of the orthogonal initialisers left XLA's CPU runtime waiting forever in about
    half of such runs; run in a subprocess so a regression fails on a timeout, not a hang."""
    script = textwrap.dedent(
        """
        import sys, jax
        sys.path.insert(0, sys.argv[1])
        from training_kit import NOVICE, tiny
        from sociajax.training import make_train
        trainer = make_train(tiny(agents=(NOVICE,) * 3, num_seeds=4))
        for _ in range(6):
            jax.block_until_ready(trainer.init(trainer.seed_keys()))
        print("OK")
        """
    )
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    try:
        result = subprocess.run(
            [sys.executable, "-c", script, os.path.dirname(__file__)], env=env, capture_output=True, text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("initialising 4 seeds did not finish within 120 s (the batched-QR hang is back)")
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


def test_init_of_a_sweep_equals_init_of_each_seed() -> None:
    """Seed i of a sweep starts from exactly the params a run with seed + i alone starts from."""
    sweep = make_train(tiny(seed=5, num_seeds=2))
    states = sweep.init(sweep.seed_keys())
    alone = make_train(tiny(seed=6))
    state = alone.init(alone.seed_keys())
    second = jax.tree.map(lambda x: x[1:], states)
    assert _leaves_equal(second, state)
