"""Training: typed configs and presets, populations, rollouts, the compiled trainer and runs."""

from sociajax.training.config import PRESETS, AgentConfig, EnvConfig, NetworkConfig, TrainConfig, get_preset
from sociajax.training.population import Population, PopulationState
from sociajax.training.rollout import collect
from sociajax.training.trainer import RunState, Trainer, make_train

__all__ = [
    "PRESETS",
    "AgentConfig",
    "EnvConfig",
    "NetworkConfig",
    "Population",
    "PopulationState",
    "RunState",
    "TrainConfig",
    "Trainer",
    "collect",
    "get_preset",
    "make_train",
]
