"""Evaluate trained populations: returns with confidence intervals, zero-shot transfer to
other worlds, and recorded episodes.

A run folder is loaded from its ``config.json`` and last checkpoint (all seeds). In the
training world the whole population plays as it trained. In another world (``env_id``) one
learned agent of the run is put as agent 0 beside scripted partners (by default the world's
experts: ``oracle`` in Goal Cycle, ``seeker`` in Four Rooms and Maze), which is the paper's
"with expert" transfer test; no partners is the solo test. A partner may also be a trained
agent of another run (``frozen:RUN_DIR[:AGENT]``), kept frozen, matched by seed index, and
partners may be mixed
(``seeker,random,random``: an expert with two distractors).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from sociajax.envs.core import EnvParams, MultiAgentGridEnv
from sociajax.envs.registry import make
from sociajax.training.checkpoint import LoadedRun
from sociajax.training.config import AgentConfig, shape_overrides
from sociajax.training.population import Population
from sociajax.training.rollout import collect
from sociajax.training.trainer import make_train
from sociajax.viz.curves import mean_ci

DEFAULT_PARTNER = {"GoalCycle": ("oracle", 2), "FourRooms": ("seeker", 1), "Maze": ("seeker", 1)}


def world_experts(env_id: str) -> tuple[str, int]:
    """(scripted expert policy, how many) of a world's "with experts" test: two oracles in
    Goal Cycle, one goal seeker in Four Rooms and Maze (and any other world)."""
    return DEFAULT_PARTNER.get(env_id.split("-")[0], ("seeker", 1))


@dataclasses.dataclass(frozen=True)
class Setup:
    """Who plays where in an evaluation."""

    env_id: str
    population: Population
    roles: tuple[str, ...]  # as reported (the run's roles, or "evaluated"/"scripted:NAME")
    epsilon: Optional[np.ndarray] = None  # f32 [R, A]: scripted agents' per-run imperfection (None: as configured)

    def run_epsilon(self, num_runs: int) -> np.ndarray:
        """f32 [R, A]: each run's scripted-agent epsilons."""
        if self.epsilon is not None:
            return np.asarray(self.epsilon, np.float32)
        return np.broadcast_to(np.asarray(self.population.epsilons), (num_runs, self.population.n_agents))


def evaluation_setup(
    run: LoadedRun,
    env_id: Optional[str] = None,
    agent: Optional[int] = None,
    partner: Optional[str] = None,
    num_partners: Optional[int] = None,
    size: Optional[int] = None,
    n_walls: Optional[int] = None,
    max_steps: Optional[int] = None,
) -> tuple[Setup, MultiAgentGridEnv, EnvParams, Any]:
    """(setup, env, env params [R], acting params [R, L+F, ...]) for an evaluation over the
    run's R runs (conditions x seeds). In the training world each run plays under its
    penalty and presence in force at the checkpoint; elsewhere under the world's defaults.

    ``size``, ``n_walls`` and ``max_steps`` shape the evaluation world; None keeps the run's
    own in its own world id and the world's default in another (a miniature's transfer worlds
    are named explicitly, e.g. ``size=7, n_walls=0, max_steps=64`` for GoalCycle-4)."""
    config = run.config
    trainer = make_train(config)
    train_pop = trainer.population
    num_runs = trainer.num_runs

    def stacked_params(params: EnvParams) -> EnvParams:
        """The same params for every run (a transfer world has no schedules)."""
        return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (num_runs,) + jnp.shape(x)), params)
    if num_partners is not None and num_partners < 0:
        raise ValueError(f"num_partners must be a non-negative integer, got {num_partners!r}")
    env_id = config.env.env_id if env_id is None else env_id
    own_shape = {}
    if env_id == config.env.env_id:
        own_shape = shape_overrides(config.env)
        if config.env.max_steps is not None:
            own_shape["max_steps"] = config.env.max_steps
    asked = (("size", size), ("n_walls", n_walls), ("max_steps", max_steps))
    shape = {**own_shape, **{k: v for k, v in asked if v is not None}}
    same_world = (
        env_id == config.env.env_id and shape == own_shape
        and agent is None and partner is None and num_partners is None
    )
    if same_world:
        params = jax.vmap(train_pop.acting_params)(run.state.population)
        roles = tuple(a.role for a in config.agents)
        setup = Setup(config.env.env_id, train_pop, roles, np.asarray(run.state.data.epsilon, np.float32))
        episodes = run.state.update * config.ppo.num_envs
        env_params = jax.vmap(trainer.env_params_at)(run.state.data, episodes)
        return setup, trainer.env, env_params, params
    agent = train_pop.learner_agents[0] if agent is None else agent
    if agent not in train_pop.learned_agents:
        raise ValueError(f"agent={agent} has no network in this run (roles {[a.role for a in config.agents]})")
    default_partner, default_count = world_experts(env_id)
    partners = partner_list(default_partner if partner is None else partner, num_partners, default_count)
    # The evaluated agent, then the partners in the order given. The population stacks
    # learners, then frozen agents, each in agent order: the params below follow that.
    frozen = [p for p in partners if p.startswith(FROZEN_PREFIX)]
    agents = (AgentConfig(role="learner"),) + tuple(
        AgentConfig(role="frozen") if p.startswith(FROZEN_PREFIX) else AgentConfig(role="scripted", policy=p)
        for p in partners
    )
    try:
        env, env_params = _world(env_id, len(agents), tuple(sorted(shape.items())))
        population = Population(agents, config.ppo, config.network, train_pop.num_actions, train_pop.obs_shape)
        population.scripted_policies  # validates partner names
    except ValueError as err:
        raise ValueError(f"env/partner: {err}") from None
    position = train_pop.learned_agents.index(agent)
    stacked = jax.vmap(train_pop.acting_params)(run.state.population)
    params = jax.tree.map(lambda x: x[:, position : position + 1], stacked)
    seed_index = np.arange(num_runs) % config.num_seeds
    for spec in frozen:
        partner_params = _frozen_partner_params(spec, seed_index, config.num_seeds, train_pop.num_actions)
        params = jax.tree.map(lambda a, b: jnp.concatenate([a, b[:, None]], 1), params, partner_params)
    roles = (f"{config.agents[agent].role} (agent {agent})",) + tuple(
        p if p.startswith(FROZEN_PREFIX) else f"scripted:{p}" for p in partners
    )
    return Setup(env_id, population, roles), env, stacked_params(env_params), params


@functools.lru_cache(maxsize=16)
def _world(env_id: str, n_agents: int, shape: tuple[tuple[str, int], ...] = ()) -> tuple[MultiAgentGridEnv, EnvParams]:
    """One env object per world and shape: the compiled evaluation (``_returns_fn``) is cached
    on the env object, so a fresh one per call would compile it again every time."""
    return make(env_id, n_agents=n_agents, **dict(shape))


FROZEN_PREFIX = "frozen:"


def partner_list(partner: str, num_partners: Optional[int], default_count: int) -> list[str]:
    """The partners ``partner`` names: ``none``; a scripted policy (``num_partners`` of it,
    default ``default_count``); or a comma-separated list, one entry a partner, each a
    policy name or ``frozen:RUN_DIR[:AGENT]`` (a trained agent of another run, frozen)."""
    if partner == "none":
        return []
    if "," in partner or partner.startswith(FROZEN_PREFIX):
        listed = [p.strip() for p in partner.split(",")]
        if num_partners is not None and num_partners != len(listed):
            raise ValueError(f"num_partners={num_partners} but partner {partner!r} lists {len(listed)}")
        if any(not p or p == "none" for p in listed):
            raise ValueError(f"partner {partner!r}: an empty or 'none' entry in a list")
        return listed
    return [partner] * (default_count if num_partners is None else num_partners)


def _frozen_partner_params(spec: str, seed_index: np.ndarray, num_seeds: int, num_actions: int) -> Any:
    """Params [R, ...] of the partner ``frozen:RUN_DIR[:AGENT]`` (default: its run's first
    learner), matched by seed index: the evaluated run's ``i``-th seed meets the ``i``-th
    seed of that run's first condition, so that run needs at least as many seeds."""
    from sociajax.training.checkpoint import load_run

    body = spec[len(FROZEN_PREFIX):]
    run_dir, _, agent_text = body.rpartition(":") if body.rpartition(":")[2].isdigit() else (body, "", "")
    other = load_run(run_dir)
    trainer = make_train(other.config)
    learned = trainer.population.learned_agents
    agent = int(agent_text) if agent_text else trainer.population.learner_agents[0]
    if agent not in learned:
        raise ValueError(f"partner {spec!r}: agent {agent} has no network (roles {[a.role for a in other.config.agents]})")
    if other.config.num_seeds < num_seeds:
        raise ValueError(
            f"partner {spec!r}: partners are seed-matched, but {run_dir} has num_seeds={other.config.num_seeds} "
            f"for {num_seeds} evaluated seeds"
        )
    if trainer.population.num_actions != num_actions:
        raise ValueError(
            f"partner {spec!r}: its policy has {trainer.population.num_actions} actions "
            f"(env.action_set={other.config.env.action_set!r}), the evaluated agent's {num_actions}"
        )
    stacked = jax.vmap(trainer.population.acting_params)(other.state.population)  # [R', L' + F', ...]
    position = learned.index(agent)
    return jax.tree.map(lambda x: x[jnp.asarray(seed_index), position], stacked)


@functools.lru_cache(maxsize=8)
def _returns_fn(population: Population, env: MultiAgentGridEnv, num_episodes: int, num_steps: int, greedy: bool):
    def one(env_params, params, key, epsilon):
        _, stats = collect(population, env, env_params, params, key, num_episodes, num_steps, greedy, epsilon=epsilon)
        return jnp.where(stats.present, stats.returns, jnp.nan)

    return jax.jit(jax.vmap(one))


def episode_returns(
    setup: Setup,
    env: MultiAgentGridEnv,
    env_params: EnvParams,
    params: Any,
    num_episodes: int,
    key: jax.Array,
    greedy: bool = False,
) -> np.ndarray:
    """float [R, num_episodes, A]: each agent's return in fresh episodes, per run (NaN where
    the agent was absent). ``env_params`` is stacked over runs (``evaluation_setup``)."""
    num_runs = jax.tree.leaves(params)[0].shape[0]
    max_steps = int(np.max(np.asarray(env_params.max_steps)))
    fn = _returns_fn(setup.population, env, num_episodes, max_steps, greedy)
    return np.asarray(fn(env_params, params, jax.random.split(key, num_runs), setup.run_epsilon(num_runs)))


def summarize(
    returns: np.ndarray, roles: tuple[str, ...], conditions: Optional[list[str]] = None
) -> list[dict[str, Any]]:
    """Per condition and agent: mean return and 95% CI (over seed means when several seeds,
    else over episodes; episodes the agent was absent from left out), and the share of its
    episodes with a positive return. ``conditions`` names each run (default: one condition)."""
    conditions = conditions or ["base"] * returns.shape[0]
    out = []
    for name in dict.fromkeys(conditions):
        runs = returns[[i for i, c in enumerate(conditions) if c == name]]
        for a, role in enumerate(roles):
            values = runs[:, :, a]
            taken = ~np.isnan(values)
            if not taken.any():
                continue  # never present
            per_seed = np.array([v[t].mean() if t.any() else np.nan for v, t in zip(values, taken)])
            if len(runs) > 1:
                mean, half = mean_ci(per_seed[~np.isnan(per_seed)])
                over = "seeds"
            else:
                mean, half = mean_ci(values[0][taken[0]])
                over = "episodes"
            out.append(
                {
                    "condition": name,
                    "agent": a,
                    "role": role,
                    "mean_return": float(mean),
                    "ci95": float(half),
                    "ci_over": over,
                    "positive_share": float((values[taken] > 0).mean()),
                    "per_seed_mean": per_seed.tolist(),
                }
            )
    return out


def record_episode_frames(
    setup: Setup,
    env: MultiAgentGridEnv,
    env_params: EnvParams,
    params: Any,
    key: jax.Array,
    greedy: bool = False,
    tile_px: int = 16,
    epsilon: Optional[np.ndarray] = None,
) -> dict[str, np.ndarray]:
    """One episode of one seed's population (``params`` [L+F, ...]) with every step drawn:
    ``frames`` [T+1, H*t, W*t, 3], ``views`` [T+1, A, 21, 21, 3], ``rewards`` [T, A].
    ``epsilon`` f32 [A]: that run's scripted-agent epsilons (``setup.run_epsilon(R)[r]``;
    default: as configured)."""
    epsilon = setup.population.epsilons if epsilon is None else jnp.asarray(epsilon, jnp.float32)
    population = setup.population
    num_steps = int(env_params.max_steps)

    @jax.jit
    def run(params, key):
        key_reset, key_run = jax.random.split(key)
        state = jax.vmap(env.reset_state, in_axes=(0, None))(key_reset[None], env_params)
        obs = jax.vmap(env.get_obs, in_axes=(0, None))(state, env_params)

        def body(carry, t):
            state, obs, rnn, memories, starts, over = carry
            actions, rnn, memories, _ = population.act(
                jax.random.fold_in(key_run, t), params, rnn, memories, obs, starts, state, greedy, epsilon
            )
            state, reward, done = jax.vmap(env.step_state, in_axes=(0, 0, None))(state, actions, env_params)
            obs = jax.vmap(env.get_obs, in_axes=(0, None))(state, env_params)
            reward = jnp.where(over[:, None], 0.0, reward)
            out = (env.render(jax.tree.map(lambda x: x[0], state), env_params, tile_px), obs[0], reward[0], over[0])
            return (state, obs, rnn, memories, jnp.zeros_like(starts), over | done), out

        init = (state, obs, population.initial_carry(1), population.init_memories(state), jnp.ones(1, bool), jnp.zeros(1, bool))
        _, (frames, views, rewards, over) = jax.lax.scan(body, init, jnp.arange(num_steps))
        first = env.render(jax.tree.map(lambda x: x[0], state), env_params, tile_px)
        return jnp.concatenate([first[None], frames]), jnp.concatenate([obs[:1], views]), rewards, over

    frames, views, rewards, over = jax.device_get(run(params, key))
    length = int((~over).sum())  # steps until (and including) the one that ended the episode
    return {"frames": frames[: length + 1], "views": views[: length + 1], "rewards": rewards[:length]}
