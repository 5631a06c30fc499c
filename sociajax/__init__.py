"""sociajax: emergent social learning (Ndousse et al., ICML 2021) in JAX, end to end."""

import os as _os

# XLA's CPU backend can wedge its multi-threaded Eigen pool while materialising the results of
# large vmapped programs: every worker idles and the result never arrives (seen here once in a
# test run of the trainer; reported by others, e.g. PyAutoFit#1530). Single-threaded Eigen
# avoids it and costs nothing measurable here (our convolutions are matmuls XLA emits itself:
# one social-scripted PPO update took 0.78 s either way). It only takes effect if this module
# is imported before JAX starts its CPU backend; set the flag yourself to choose otherwise.
if "xla_cpu_multi_thread_eigen" not in _os.environ.get("XLA_FLAGS", ""):
    _os.environ["XLA_FLAGS"] = (_os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()

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
