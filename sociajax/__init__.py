"""sociajax: emergent social learning (Ndousse et al., ICML 2021) in JAX, end to end."""

from sociajax.envs import (
    EnvParams,
    EnvState,
    FourRooms,
    GoalCycle,
    Maze,
    MultiAgentGridEnv,
    VecEnv,
    make,
    registered_envs,
)

__version__ = "0.1.0"

__all__ = [
    "EnvParams",
    "EnvState",
    "FourRooms",
    "GoalCycle",
    "Maze",
    "MultiAgentGridEnv",
    "VecEnv",
    "make",
    "registered_envs",
]
