"""Running policies in the envs: scripted rollouts, returns, recordings."""

from sociajax.eval.scripted import record_episode, scripted_returns
from sociajax.eval.throughput import rollout_throughput, rollout_throughputs

__all__ = ["record_episode", "rollout_throughput", "rollout_throughputs", "scripted_returns"]
