"""Running policies in the envs: scripted rollouts, returns, recordings."""

from sociajax.eval.scripted import record_episode, scripted_returns

__all__ = ["record_episode", "scripted_returns"]
