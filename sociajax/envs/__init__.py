"""Pure-JAX multi-agent gridworlds: Goal Cycle, Four Rooms and Maze."""

from sociajax.envs.core import ACTION_NAMES, NUM_ACTIONS, EnvParams, EnvState, MultiAgentGridEnv
from sociajax.envs.goal_cycle import GoalCycle, GoalCycleParams
from sociajax.envs.reach import FourRooms, Maze, MazeParams
from sociajax.envs.registry import make, registered_envs
from sociajax.envs.vector import VecEnv

__all__ = [
    "ACTION_NAMES",
    "NUM_ACTIONS",
    "EnvParams",
    "EnvState",
    "FourRooms",
    "GoalCycle",
    "GoalCycleParams",
    "Maze",
    "MazeParams",
    "MultiAgentGridEnv",
    "VecEnv",
    "make",
    "registered_envs",
]
