"""Scripted populations' returns and recorded episodes (implemented in
:mod:`sociajax.agents.rollouts`, below training, which also uses them)."""

from sociajax.agents.rollouts import record_episode, scripted_returns

__all__ = ["record_episode", "scripted_returns"]
