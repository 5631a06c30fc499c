"""Conditions as data: grids of conditions x seeds in one program, schedules, presence,
imitation learners in the population, seed-matched expert loading, the static/data split."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from training_kit import NOVICE, ORACLE, tiny

import sociajax
from sociajax.training import AgentConfig, TrainConfig, grid_conditions, make_train, parse_schedule
from sociajax.training.config import condition_configs, set_field, static_config
from sociajax.training.logging import COLUMNS, read_metrics
from sociajax.training.run import loaded_params, train
from sociajax.training.schedule import Schedule


def _chunks(config, count):
    """Run ``count`` chunks through the program cache (configs that differ only in data
    share one compiled program, as ``train`` does)."""
    trainer = make_train(config)
    state = trainer.init(trainer.seed_keys(), loaded_params(trainer))
    chunk = trainer.compiled_chunk(state)
    out = []
    for _ in range(count):
        state, metrics = chunk(state)
        out.append(jax.device_get(metrics))
    return trainer, state, {k: np.concatenate([m[k] for m in out], 1) for k in out[0]}


CONDITIONS = (
    "fast: agents.0.lr=1e-3 agents.2.epsilon=0.5",
    "vanilla-absent: agents.0.aux=false agents.1.presence=0 ppo.entropy_coef=0.01",
)


def test_a_grid_of_two_conditions_equals_the_two_configs_run_separately() -> None:
    grid = tiny(conditions=CONDITIONS)
    trainer, _, together = _chunks(grid, 2)
    assert trainer.conditions == ("fast", "vanilla-absent") and trainer.num_runs == 2
    for c, (_, alone_config) in enumerate(condition_configs(grid)):
        _, _, alone = _chunks(alone_config, 2)
        for name in ("return", "loss", "aux_loss", "value_loss", "entropy", "present", "env_steps"):
            np.testing.assert_allclose(together[name][c : c + 1], alone[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # the second condition's expert never took part: no return, presence 0 logged
    assert np.isnan(together["return"][1, :, 1]).all() and (together["present"][1, :, 1] == 0).all()
    assert (together["present"][0, :, 1] == 1).all()


def test_configs_that_differ_only_in_data_share_one_program_and_static_fields_are_refused() -> None:
    a = make_train(tiny(run_dir="unused-p1"))
    b = make_train(set_field(set_field(tiny(run_dir="unused-p2"), "env.penalty", "-0.5"), "agents.0.lr", "3e-4"))
    c = make_train(tiny(run_dir="unused-p3", ppo=dataclasses.replace(tiny().ppo, num_minibatches=1)))
    assert a.program_key == b.program_key != c.program_key
    assert static_config(dataclasses.replace(b.config, run_dir="unused-p1")) == static_config(a.config)
    for bad, field in (("ppo.num_envs=2,4", "ppo.num_envs"), ("agents.1.role=frozen,scripted", "agents.1.role"),
                       ("agents.0.no_such_field=1,2", "no_such_field"), ("env.max_steps=8,16", "env.max_steps")):
        with pytest.raises(ValueError, match=field):
            tiny(conditions=grid_conditions([bad]))
    with pytest.raises(ValueError, match="agents.0.lr"):
        tiny(conditions=("agents.0.lr=fast",))
    with pytest.raises(ValueError, match="agents.1.presence"):
        tiny(conditions=("agents.1.presence=1.5",))
    with pytest.raises(ValueError, match="unique"):
        tiny(conditions=("x: agents.0.lr=1e-3", "x: agents.0.lr=1e-4"))


def test_a_condition_is_validated_whole_so_its_fields_may_come_in_any_order() -> None:
    """Imitating a learner needs ``imitate`` set: ``objective=bc`` before it used to be
    refused halfway through the condition, as if ``imitate`` were missing."""
    learners = tiny(agents=(NOVICE, NOVICE, NOVICE))
    config = dataclasses.replace(
        learners, conditions=("il: agents.0.objective=bc agents.0.imitate=1", "rl: agents.0.lr=1e-4")
    )
    [(_, il), _] = condition_configs(config)
    assert il.agents[0].objective == "bc" and il.agents[0].imitate == 1
    with pytest.raises(ValueError, match="conditions: 'il': agents.0.objective='bc' needs another agent"):
        dataclasses.replace(learners, conditions=("il: agents.0.objective=bc",))


def test_a_scripted_experts_epsilon_is_data_and_zero_acts_exactly_as_the_expert() -> None:
    """Imperfect experts (epsilon-random moves) and perfect ones train in one program, and an
    expert at epsilon 0 acts exactly as the plain policy with the same keys: runs made before
    epsilon became data keep their numbers. Agent 1 is a random mover, whose actions depend
    on its key (a deterministic oracle would hide a changed key stream)."""
    from sociajax.agents.scripted import make_policy

    assert make_train(tiny(conditions=("agents.1.epsilon=0.5",))).program_key == make_train(tiny()).program_key
    with pytest.raises(ValueError, match="agents.1.epsilon"):
        tiny(conditions=("agents.1.epsilon=1.5",))
    mover = AgentConfig(role="scripted", policy="random")
    population = make_train(tiny(agents=(NOVICE, mover, ORACLE))).population
    env, env_params = sociajax.make("GoalCycle-3", n_agents=3, max_steps=16)
    num_envs = 256
    state = jax.vmap(env.reset_state, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(3), num_envs), env_params)
    obs = jax.vmap(env.get_obs, in_axes=(0, None))(state, env_params)
    params = population.acting_params(population.init(jax.random.PRNGKey(0)))
    memories = population.init_memories(state)
    key = jax.random.PRNGKey(1)

    def actions(epsilon):
        acted, *_ = population.act(key, params, population.initial_carry(num_envs), memories, obs,
                                   jnp.ones(num_envs, bool), state, False, jnp.asarray(epsilon, jnp.float32))
        return np.asarray(acted)

    # the plain policies, keyed as Population.act keys its n-th scripted agent
    key_script = jax.random.split(key)[1]
    plain = {
        agent: np.asarray(jax.vmap(make_policy(name).act, in_axes=(0, 0, 0, None))(
            jax.random.split(jax.random.fold_in(key_script, n), num_envs), memories[n], state, agent)[0])
        for n, (agent, name) in enumerate(((1, "random"), (2, "oracle")))
    }
    perfect, blunt = actions([0.0, 0.0, 0.0]), actions([0.0, 0.0, 1.0])
    np.testing.assert_array_equal(perfect[:, 1], plain[1])
    np.testing.assert_array_equal(perfect[:, 2], plain[2])
    np.testing.assert_array_equal(blunt[:, :2], perfect[:, :2])  # the others untouched
    assert set(np.unique(blunt[:, 2])) <= {0, 1, 2}  # random moves only
    assert 0.5 < np.mean(blunt[:, 2] != plain[2]) < 0.85  # 2/3 of random moves differ from the oracle's


def test_grids_multiply_and_split_schedules_on_bars() -> None:
    assert grid_conditions(["agents.0.aux=true,false", "env.penalty=0,-1.5"]) == (
        "agents.0.aux=true env.penalty=0", "agents.0.aux=true env.penalty=-1.5",
        "agents.0.aux=false env.penalty=0", "agents.0.aux=false env.penalty=-1.5",
    )
    assert grid_conditions(["env.penalty=-0.5,-1.0@8|-1.5"]) == ("env.penalty=-0.5,-1.0@8", "env.penalty=-1.5")


def test_schedules_parse_and_bad_ones_name_the_field() -> None:
    assert parse_schedule("x", "-0.5,-1.0@81920,-1.5@163840") == ((0, -0.5), (81920, -1.0), (163840, -1.5))
    assert parse_schedule("x", 0.25) == ((0, 0.25),)
    schedule = Schedule.of(parse_schedule("x", "1,0.25@10"), 3)
    assert [float(schedule.at(jnp.int32(e))) for e in (0, 9, 10, 10**6)] == [1.0, 1.0, 0.25, 0.25]
    for text in ("abc", "1,2", "1,2@5,3@5", "1@3", "1,2@-1"):
        with pytest.raises(ValueError, match="env.penalty"):
            tiny(env=dataclasses.replace(tiny().env, penalty=text))


def test_a_penalty_schedule_switches_at_the_right_episode_and_is_logged(tmp_path) -> None:
    """2 episodes per update: updates 1-2 start at episodes 0 and 2 (-0.5), update 3 at
    episode 4 (-1.0), update 4 at episode 6 (-1.5); the env really pays the value in force."""
    config = tiny(run_dir=str(tmp_path / "curriculum"), env=dataclasses.replace(tiny().env, penalty="-0.5,-1.0@4,-1.5@6"))
    train(config)
    rows = [r for r in read_metrics(tmp_path / "curriculum" / "metrics.csv") if r["agent"] == "0"]
    assert [float(r["penalty"]) for r in rows] == [-0.5, -0.5, -1.0, -1.5]
    assert [int(r["episodes"]) for r in rows] == [2, 4, 6, 8]
    trainer = make_train(config)
    data = jax.tree.map(lambda x: x[0], trainer.run_data)
    assert float(trainer.env_params_at(data, jnp.int32(5)).penalty) == -1.0
    assert float(trainer.env_params_at(data, jnp.int32(7)).penalty) == -1.5


def test_presence_is_drawn_per_episode_within_two_percent_and_together() -> None:
    env, params = sociajax.make("GoalCycle-3")
    params = params.replace(presence=jnp.array([1.0, 0.25, 0.25]))
    keys = jax.random.split(jax.random.PRNGKey(0), 20_000)
    present = np.asarray(jax.jit(jax.vmap(lambda k: env.reset_state(k, params).present))(keys))
    assert present[:, 0].all()
    assert abs(present[:, 1].mean() - 0.25) < 0.02
    np.testing.assert_array_equal(present[:, 1], present[:, 2])  # one draw per episode
    # the layout does not depend on presence
    a = env.reset_state(keys[0], params)
    b = env.reset_state(keys[0], params.replace(presence=1.0))
    np.testing.assert_array_equal(a.grid, b.grid)
    np.testing.assert_array_equal(a.agent_pos, b.agent_pos)
    with pytest.raises(ValueError, match="presence"):
        sociajax.make("GoalCycle-3", presence=1.5)


def test_an_absent_agent_is_invisible_and_inactive() -> None:
    env, params = sociajax.make("GoalCycle-3", size=7)
    layout = ["#######", "#0....#", "#.....#", "#.....#", "#.....#", "#1...2#", "#######"]
    # agent 1 stands right in front of agent 0 (both face north); agent 2 elsewhere
    obs, state = env.reset_from_layout(None, params, layout, [[3, 4], [3, 3], [5, 1]], [3, 3, 0])
    absent = state.replace(present=jnp.array([True, False, True]))
    seen_absent = np.asarray(env.get_obs(absent, params))[0]
    assert not np.array_equal(np.asarray(obs)[0], seen_absent)  # the present agent 1 was drawn
    hidden = env.get_obs(state.replace(agent_pos=state.agent_pos.at[1].set(jnp.array([3, 4]))), params)
    np.testing.assert_array_equal(seen_absent, np.asarray(hidden)[0])  # as if only the observer stood there
    step = jax.jit(env.step_state)
    s = absent
    total = np.zeros(3)
    for _ in range(6):
        s, reward, _ = step(s, jnp.array([2, 2, 2]), params)
        total += np.asarray(reward)
    np.testing.assert_array_equal(s.agent_pos[1], [3, 3])  # never moved
    assert total[1] == 0 and float(s.prestige[1]) == 0.0
    frame = np.asarray(env.render(absent, params))
    with_agent = np.asarray(env.render(state, params))
    tile = 16
    assert not np.array_equal(frame[3 * tile : 4 * tile, 3 * tile : 4 * tile], with_agent[3 * tile : 4 * tile, 3 * tile : 4 * tile])


def test_an_absent_agent_does_not_hold_up_a_reach_episode() -> None:
    env, params = sociajax.make("FourRooms", presence=jnp.array([1.0, 0.0]))
    state = env.reset_state(jax.random.PRNGKey(0), params)
    state = state.replace(agent_done=jnp.array([True, False]))
    _, _, done = env.step_state(state, jnp.array([0, 0]), params)
    assert bool(done)


def test_an_imitation_learner_trains_in_the_same_program_as_rl_novices() -> None:
    grid = tiny(conditions=("rl: agents.0.objective=ppo", "il: agents.0.objective=bc"))
    trainer, state, metrics = _chunks(grid, 1)
    np.testing.assert_array_equal(np.asarray(trainer.run_data.data_agents)[:, 0], [0, 1])  # IL clones agent 1
    assert bool(trainer.run_data.learners.bc[1, 0]) and not bool(trainer.run_data.learners.bc[0, 0])
    assert np.isfinite(metrics["bc_loss"]).all()
    # the IL learner's loss is its cloning loss alone
    np.testing.assert_allclose(metrics["loss"][1], metrics["bc_loss"][1], rtol=1e-6)
    with pytest.raises(ValueError, match="agents.1.objective"):
        tiny(agents=(NOVICE, AgentConfig(role="frozen", objective="bc"), ORACLE))
    with pytest.raises(ValueError, match="agents.0.imitate"):
        tiny(agents=(AgentConfig(objective="bc", imitate=0), ORACLE, ORACLE))


def test_experts_load_seed_matched_and_by_update(tmp_path) -> None:
    source = tiny(run_dir=str(tmp_path / "expert"), num_seeds=2, agents=(NOVICE,), total_env_steps=2 * 2 * 16)
    train(source)  # 2 updates, a checkpoint after each
    from sociajax.training.checkpoint import load_agent_params

    frozen = AgentConfig(role="frozen", load_from=source.run_dir)
    config = tiny(run_dir=str(tmp_path / "novice"), num_seeds=2, agents=(NOVICE, frozen, ORACLE))
    trainer = make_train(config)
    state = trainer.init(trainer.seed_keys(), loaded_params(trainer))
    for seed in (0, 1):
        expert = load_agent_params(source.run_dir, 0, seed)
        got = jax.tree.map(lambda x: x[seed, 0], state.population.frozen_params)
        assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expert)))
    assert not np.array_equal(
        jax.tree.leaves(state.population.frozen_params)[0][0], jax.tree.leaves(state.population.frozen_params)[0][1]
    )
    fixed = dataclasses.replace(config, agents=(NOVICE, dataclasses.replace(frozen, load_seed=0), ORACLE))
    trainer = make_train(fixed)
    state = trainer.init(trainer.seed_keys(), loaded_params(trainer))
    leaf = jax.tree.leaves(state.population.frozen_params)[0]
    np.testing.assert_array_equal(leaf[0], leaf[1])
    # an earlier checkpoint is another expert; a missing one is named
    early = load_agent_params(source.run_dir, 0, 0, update=1)
    late = load_agent_params(source.run_dir, 0, 0)
    assert not np.array_equal(jax.tree.leaves(early)[0], jax.tree.leaves(late)[0])
    # imperfect experts from an earlier checkpoint in one condition, the last in another: one program
    grid = dataclasses.replace(config, conditions=("early: agents.1.load_update=1", "late: agents.1.load_update=2"))
    trainer = make_train(grid)
    state = trainer.init(trainer.seed_keys(), loaded_params(trainer))
    np.testing.assert_array_equal(jax.tree.leaves(state.population.frozen_params)[0][0, 0], jax.tree.leaves(early)[0])
    bad = dataclasses.replace(config, agents=(NOVICE, dataclasses.replace(frozen, load_update=7), ORACLE))
    with pytest.raises(ValueError, match="update 7"):
        loaded_params(make_train(bad))
    too_many = dataclasses.replace(config, num_seeds=3)
    with pytest.raises(ValueError, match="load_seed"):
        loaded_params(make_train(too_many))


def test_a_grid_run_logs_conditions_and_resumes_bit_exactly(tmp_path) -> None:
    grid = dict(conditions=CONDITIONS, num_seeds=2)
    whole = train(tiny(run_dir=str(tmp_path / "whole"), total_env_steps=4 * 2 * 16, **grid))
    train(tiny(run_dir=str(tmp_path / "part"), total_env_steps=2 * 2 * 16, **grid))
    resumed = train(tiny(run_dir=str(tmp_path / "part"), total_env_steps=4 * 2 * 16, **grid), resume=True)
    assert resumed.env_steps == whole.env_steps and set(whole.late_return) == {"fast", "vanilla-absent"}
    rows_whole = read_metrics(tmp_path / "whole" / "metrics.csv")
    rows_resumed = read_metrics(tmp_path / "part" / "metrics.csv")
    assert len(rows_whole) == 4 * 2 * 2 * 3  # updates x conditions x seeds x agents
    assert {r["condition"] for r in rows_whole} == {"fast", "vanilla-absent"}
    exact = [c for c in COLUMNS if c not in ("sps", "wall_s")]
    assert [[r[c] for c in exact] for r in rows_whole] == [[r[c] for c in exact] for r in rows_resumed]
    config = TrainConfig.from_dict(__import__("json").loads((tmp_path / "whole" / "config.json").read_text()))
    assert config.conditions == CONDITIONS


def test_cli_grid_builds_the_product_and_refuses_static_fields() -> None:
    from sociajax.train import parse_args

    config, _ = parse_args(["--preset", "smoke", "--grid", "agents.0.aux=true,false", "--grid", "env.penalty=0,-1.5"])
    assert len(config.conditions) == 4
    with pytest.raises(SystemExit, match="ppo.num_envs"):
        parse_args(["--preset", "smoke", "--grid", "ppo.num_envs=4,8"])


def test_a_scripted_experts_logged_return_equals_scripted_returns_on_the_same_episodes() -> None:
    """The returns a run logs for its scripted experts are those of ``scripted_returns`` on
    the same layouts: the expert level every figure draws is the expert's real score. The
    novice sits the episodes out (presence 0), so the deterministic oracles play alone."""
    from sociajax.agents.scripted import make_policy
    from sociajax.eval.scripted import scripted_returns

    num_envs = tiny().ppo.num_envs  # presence is data: the program the other 2-run tests compile
    config = tiny(agents=(dataclasses.replace(NOVICE, presence="0"), ORACLE, ORACLE), num_seeds=2)
    trainer, state, metrics = _chunks(config, 2)
    initial = trainer.init(trainer.seed_keys(), loaded_params(trainer))
    env, env_params = sociajax.make("GoalCycle-3", n_agents=3, max_steps=16, presence=jnp.asarray([0.0, 1.0, 1.0]))
    policies = [make_policy("random"), make_policy("oracle"), make_policy("oracle")]
    for run in range(trainer.num_runs):
        for update in range(2):
            key_rollout, _ = jax.random.split(jax.random.fold_in(initial.key[run], update))
            expected = np.asarray(scripted_returns(env, env_params, policies, key_rollout, num_envs=num_envs))
            logged = metrics["return"][run, update]
            np.testing.assert_allclose(logged[1:], expected[:, 1:].mean(0), rtol=1e-6)
            assert np.isnan(logged[0])  # the novice took part in no episode
    assert metrics["return"][:, :, 1:].mean() > 0.5  # the oracles score: the comparison is not 0 == 0


def test_a_checkpoint_from_before_epsilon_was_data_still_loads(tmp_path) -> None:
    """Run folders saved before ``RunData.epsilon`` existed (e.g. trained experts) load, with
    the epsilons their config gives, and everything else as saved."""
    import json

    from sociajax.training.checkpoint import Checkpointer, load_run

    imperfect = dataclasses.replace(ORACLE, epsilon=0.3)
    config = tiny(run_dir=str(tmp_path / "old"), agents=(NOVICE, ORACLE, imperfect))
    trainer = make_train(config)
    state = trainer.init(trainer.seed_keys(), loaded_params(trainer))
    saved_data = {f.name: getattr(state.data, f.name) for f in dataclasses.fields(state.data) if f.name != "epsilon"}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(json.dumps(config.to_dict()))
    checkpointer = Checkpointer(tmp_path / "old")
    checkpointer.save(0, state.replace(data=saved_data), {"update": 0, "env_steps": [0], "wall_s": 0.0})
    checkpointer.close()
    run = load_run(tmp_path / "old")
    np.testing.assert_array_equal(np.asarray(run.state.data.epsilon), np.float32([[0.0, 0.0, 0.3]]))
    restored = jax.device_get(run.state.replace(data=run.state.data.replace(epsilon=state.data.epsilon)))
    jax.tree.map(np.testing.assert_array_equal, restored, jax.device_get(state))  # the rest as saved
