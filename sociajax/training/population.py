"""A population: learners, frozen networks and scripted policies sharing one world.

Every agent with a network (learner or frozen) uses the same :class:`SocialNet` structure,
so their parameters stack on a leading agent axis and act with one ``vmap``. Learners also
carry optax states (stacked the same way) and their own learning rate and auxiliary
coefficient as *data*: one compiled update serves novices (1e-4), experts (1e-5) and
learners without the auxiliary loss (coefficient 0). Scripted agents act from the env state.

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

from sociajax.agents.network import SocialNet, init_params
from sociajax.agents.ppo import PPOConfig, make_optimizer, set_learning_rate
from sociajax.agents.scripted import make_policy
from sociajax.envs.core import EnvState
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
        speed = self.network_config
        return SocialNet(use_aux=True, chunk=speed.chunk, lstm_unroll=speed.lstm_unroll)

    @functools.cached_property
    def optimizer(self):
        return make_optimizer(self.ppo)

    @functools.cached_property
    def scripted_policies(self) -> tuple[Any, ...]:
        return tuple(make_policy(self.agents[i].policy, self.agents[i].epsilon) for i in self.scripted_agents)

    def learner_ppo_configs(self) -> PPOConfig:
        """The PPO config with per-learner float fields stacked [L] (aux_coef 0 where a
        learner has ``aux=False``), for ``vmap(ppo_update)``. Its ``lr`` is informational:
        the update reads each learner's rate from its optimizer state."""
        aux = jnp.asarray([self.ppo.aux_coef if self.agents[i].aux else 0.0 for i in self.learner_agents], jnp.float32)
        lr = jnp.asarray([self.agents[i].lr for i in self.learner_agents], jnp.float32)
        n = len(self.learner_agents)
        stacked = jax.tree.map(lambda x: jnp.full((n,), x, jnp.float32), self.ppo)
        return _with(stacked, aux_coef=aux, lr=lr)

    # ------------------------------------------------------------------ state
    def init(self, key: jax.Array, loaded: Optional[dict[int, Any]] = None) -> PopulationState:
        """Fresh parameters for every learned agent (``loaded[agent]`` replaces an agent's
        initial params, e.g. a frozen expert from another run). Traceable (vmap over seeds)."""
        loaded = loaded or {}
        keys = jax.random.split(key, max(self.n_agents, 1))

        def params_of(agent: int) -> Any:
            if agent in loaded:
                return loaded[agent]
            return init_params(self.network, keys[agent])

        def stack(agents: Sequence[int]) -> Any:
            return jax.tree.map(lambda *xs: jnp.stack(xs), *[params_of(a) for a in agents])

        tx = self.optimizer
        learner_params = stack(self.learner_agents)
        learners = jax.vmap(lambda p: TrainState.create(apply_fn=self.network.apply, params=p, tx=tx))(
            learner_params
        )
        lrs = jnp.asarray([self.agents[i].lr for i in self.learner_agents], jnp.float32)
        learners = learners.replace(opt_state=set_learning_rate(learners.opt_state, lrs))
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

    def act(
        self,
        key: jax.Array,
        params: Any,
        carry: Carry,
        memories: tuple[Any, ...],
        obs: jax.Array,
        starts: jax.Array,
        env_state: EnvState,
        greedy: bool = False,
    ) -> tuple[jax.Array, Carry, tuple[Any, ...], dict[str, jax.Array]]:
        """Actions int32 [B, A] for a batch of B envs, with new carries and memories.

        obs uint8 [B, A, 21, 21, 3]; starts bool [B] (the obs begins an episode: carries
        reset). Returns also the learned agents' ``log_prob`` and ``value`` [L + F, B].
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
            logits = logits.astype(jnp.float32)
            if greedy:
                chosen = jnp.argmax(logits, -1)
            else:
                chosen = jax.random.categorical(key_net, logits)
            log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), chosen[..., None], -1)[..., 0]
            actions = actions.at[:, learned].set(chosen.T.astype(jnp.int32))
            extras = {"log_prob": log_prob, "value": value}
        new_memories = []
        for n, (agent, policy, memory) in enumerate(zip(self.scripted_agents, self.scripted_policies, memories)):
            keys = jax.random.split(jax.random.fold_in(key_script, n), num_envs)
            action, memory = jax.vmap(policy.act, in_axes=(0, 0, 0, None))(keys, memory, env_state, agent)
            actions = actions.at[:, agent].set(action.astype(jnp.int32))
            new_memories.append(memory)
        return actions, carry, tuple(new_memories), extras


def _with(config: PPOConfig, **changes: Any) -> PPOConfig:
    """``config`` with some leaves replaced, skipping validation (the values are arrays)."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(config)
    names = [path[-1].name for path, _ in leaves]
    values = [changes.get(name, leaf) for name, (_, leaf) in zip(names, leaves)]
    return jax.tree_util.tree_unflatten(treedef, values)
