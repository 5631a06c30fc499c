"""Policies: scripted experts and distractors, the CNN-LSTM learner network and PPO."""

from sociajax.agents.network import SocialNet, action_distribution, init_params, param_count
from sociajax.agents.ppo import (
    LearnerData,
    Minibatch,
    PPOConfig,
    Rollout,
    create_train_state,
    gae,
    make_optimizer,
    minibatch_update,
    ppo_loss,
    ppo_update,
)
from sociajax.agents.scripted import (
    ExplorerCycler,
    GoalSeeker,
    Imperfect,
    OracleCycler,
    RandomPolicy,
    make_policy,
)

__all__ = [
    "ExplorerCycler",
    "GoalSeeker",
    "Imperfect",
    "LearnerData",
    "Minibatch",
    "OracleCycler",
    "PPOConfig",
    "RandomPolicy",
    "Rollout",
    "SocialNet",
    "create_train_state",
    "gae",
    "init_params",
    "make_optimizer",
    "make_policy",
    "minibatch_update",
    "param_count",
    "ppo_loss",
    "action_distribution",
    "ppo_update",
]
