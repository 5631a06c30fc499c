"""A population: learners, frozen networks and scripted policies sharing one world.

Every agent with a network (learner or frozen) uses the same :class:`SocialNet` structure,
so their parameters stack on a leading agent axis and act with one ``vmap``. Learners also
carry Adam's moments (stacked the same way); their learning rates, coefficients and
objectives are data (``agents.ppo.LearnerData``, built per run by
:mod:`sociajax.training.conditions`): one compiled update serves novices (1e-4), experts
(1e-5), learners without the auxiliary loss and imitation learners. Scripted agents act from
the env state.

Stack order: learners first (in agent order), then frozen agents. ``learned_agents`` maps a
stack position to its agent index in the env.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
from flax import struct
from flax.training.train_state import TrainState

from sociajax.agents.network import OBS_SHAPE, SocialNet, action_distribution, init_params
from sociajax.agents.ppo import PPOConfig, make_optimizer
from sociajax.agents.scripted import Imperfect, make_policy
from sociajax.envs.core import NUM_ACTIONS, EnvState
from sociajax.training.config import AgentConfig, NetworkConfig

Carry = tuple


@struct.dataclass
class PopulationState:
    """The trainable part of one seed's population.

    learners: flax ``TrainState`` stacked [L] (params, optax state with per-learner lr, step).
    frozen_params: network params stacked [F], or None when there are no frozen agents.
    """

    learners: TrainState
    frozen_params: Optional[Any]


@dataclasses.dataclass(frozen=True)
class Population:
    """Static description of who acts how (hashable; built from ``TrainConfig.agents``)."""

    agents: tuple[AgentConfig, ...]
    ppo: PPOConfig
    network_config: NetworkConfig = NetworkConfig()
    num_actions: int = NUM_ACTIONS  # the policy head's outputs: the env's actions 0..num_actions-1
    obs_shape: tuple[int, int, int] = OBS_SHAPE  # one agent's view (the env's obs_shape[1:])

    @property
    def n_agents(self) -> int:
        return len(self.agents)

    @property
    def learner_agents(self) -> tuple[int, ...]:
        return tuple(i for i, a in enumerate(self.agents) if a.role == "learner")

    @property
    def frozen_agents(self) -> tuple[int, ...]:
        return tuple(i for i, a in enumerate(self.agents) if a.role == "frozen")

    @property
    def learned_agents(self) -> tuple[int, ...]:
        """Agents with a network, in stack order (learners, then frozen)."""
        return self.learner_agents + self.frozen_agents

    @property
    def scripted_agents(self) -> tuple[int, ...]:
        return tuple(i for i, a in enumerate(self.agents) if a.role == "scripted")

    @functools.cached_property
    def network(self) -> SocialNet:
        net = self.network_config
        return SocialNet(
            num_actions=self.num_actions, use_aux=True, chunk=net.chunk, lstm_unroll=net.lstm_unroll,
            dtype=net.dtype, obs_shape=tuple(self.obs_shape),
        )

    @functools.cached_property
    def optimizer(self):
        return make_optimizer(self.ppo)

    @functools.cached_property
    def scripted_policies(self) -> tuple[Any, ...]:
        """The scripted agents' policies, without their ``epsilon``: that is data (per run,
        possibly traced) and is applied in :meth:`act`."""
        return tuple(make_policy(self.agents[i].policy) for i in self.scripted_agents)

    @property
    def epsilons(self) -> jax.Array:
        """f32 [A]: each agent's ``epsilon`` in this population's own config. A trainer's
        population is built from the static config, where every epsilon is 0: a run's own
        are in ``RunData.epsilon``."""
        return jnp.asarray([a.epsilon for a in self.agents], jnp.float32)

    # ------------------------------------------------------------------ state
    def init(self, key: jax.Array, loaded: Optional[dict[int, tuple[Any, Any]]] = None) -> PopulationState:
        """Fresh parameters for every learned agent; ``loaded[agent] = (params, use)`` replaces
        an agent's initial params where ``use`` (a bool, traced: e.g. a frozen expert from
        another run in some conditions only). Traceable (``lax.map`` over runs)."""
        loaded = loaded or {}
        keys = jax.random.split(key, max(self.n_agents, 1))

        def params_of(agent: int) -> Any:
            fresh = init_params(self.network, keys[agent])
            if agent not in loaded:
                return fresh
            params, use = loaded[agent]
            return jax.tree.map(lambda p, f: jnp.where(use, p, f), params, fresh)

        def stack(agents: Sequence[int]) -> Any:
            return jax.tree.map(lambda *xs: jnp.stack(xs), *[params_of(a) for a in agents])

        tx = self.optimizer
        learner_params = stack(self.learner_agents)
        learners = jax.vmap(lambda p: TrainState.create(apply_fn=self.network.apply, params=p, tx=tx))(
            learner_params
        )
        frozen = stack(self.frozen_agents) if self.frozen_agents else None
        return PopulationState(learners=learners, frozen_params=frozen)

    def acting_params(self, state: PopulationState) -> Any:
        """Params of every learned agent stacked in stack order [L + F]."""
        if state.frozen_params is None:
            return state.learners.params
        return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), state.learners.params, state.frozen_params)

    def initial_carry(self, num_envs: int) -> Carry:
        return self.network.initial_carry((len(self.learned_agents), num_envs))

    def init_memories(self, env_state: EnvState) -> tuple[Any, ...]:
        """Scripted policies' memories for a batch of envs (env_state leading axis = envs)."""
        return tuple(
            jax.vmap(policy.init, in_axes=(0, None))(env_state, agent)
            for agent, policy in zip(self.scripted_agents, self.scripted_policies)
        )

    def values(self, params: Any, carry: Carry, obs: jax.Array, starts: jax.Array) -> jax.Array:
        """f32 [N, B]: the value each of N stacked networks gives its view obs [N, B, ...]
        after its carry [N, B, H] (reset where ``starts`` [B]); a rollout's bootstrap."""

        def one(p, c, o):
            return self.network.apply({"params": p}, c, o, starts, method=SocialNet.step)[2]

        return jax.vmap(one)(params, carry, obs)

    def act(
        self,
        key: jax.Array,
        params: Any,
        carry: Carry,
        memories: tuple[Any, ...],
        obs: jax.Array,
        starts: jax.Array,
        env_state: EnvState,
        greedy: bool,
        epsilon: jax.Array,
    ) -> tuple[jax.Array, Carry, tuple[Any, ...], dict[str, jax.Array]]:
        """Actions int32 [B, A] for a batch of B envs, with new carries and memories.

        obs uint8 [B, A, 21, 21, 3]; starts bool [B] (the obs begins an episode: carries
        reset); ``greedy``: the most likely action instead of a sample; ``epsilon`` f32 [A]:
        each scripted agent's chance per step of a random move instead (a run's
        ``RunData.epsilon``, or :attr:`epsilons`). Returns also the learned agents'
        ``log_prob`` and ``value`` [L + F, B].
        """
        num_envs = obs.shape[0]
        key_net, key_script = jax.random.split(key)
        learned = jnp.asarray(self.learned_agents, jnp.int32)
        actions = jnp.zeros((num_envs, self.n_agents), jnp.int32)
        extras: dict[str, jax.Array] = {}
        if self.learned_agents:
            learned_obs = jnp.swapaxes(obs[:, learned], 0, 1)  # [L + F, B, ...]

            def one(p, c, o):
                return self.network.apply({"params": p}, c, o, starts, method=SocialNet.step)

            carry, logits, value, _ = jax.vmap(one)(params, carry, learned_obs)
            pi = action_distribution(logits)
            chosen = pi.mode() if greedy else pi.sample(seed=key_net)
            log_prob = pi.log_prob(chosen)
            actions = actions.at[:, learned].set(chosen.T.astype(jnp.int32))
            extras = {"log_prob": log_prob, "value": value}
        new_memories = []
        for n, (agent, expert, memory) in enumerate(zip(self.scripted_agents, self.scripted_policies, memories)):
            policy = Imperfect(expert, epsilon[agent])
            keys = jax.random.split(jax.random.fold_in(key_script, n), num_envs)
            action, memory = jax.vmap(policy.act, in_axes=(0, 0, 0, None))(keys, memory, env_state, agent)
            actions = actions.at[:, agent].set(action.astype(jnp.int32))
            new_memories.append(memory)
        return actions, carry, tuple(new_memories), extras

