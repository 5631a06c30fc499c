"""Training: typed configs and presets, populations, rollouts, the compiled trainer and runs."""

from sociajax.training.conditions import RunData
from sociajax.training.config import DATA_FIELDS, AgentConfig, EnvConfig, NetworkConfig, TrainConfig, grid_conditions, static_config
from sociajax.training.presets import PRESETS, get_preset
from sociajax.training.schedule import Schedule, parse_schedule
from sociajax.training.population import Population, PopulationState
from sociajax.training.rollout import collect
from sociajax.training.trainer import RunState, Trainer, make_train

__all__ = [
    "DATA_FIELDS",
    "PRESETS",
    "AgentConfig",
    "EnvConfig",
    "NetworkConfig",
    "Population",
    "PopulationState",
    "RunData",
    "RunState",
    "Schedule",
    "TrainConfig",
    "Trainer",
    "collect",
    "get_preset",
    "grid_conditions",
    "make_train",
    "parse_schedule",
    "static_config",
]
