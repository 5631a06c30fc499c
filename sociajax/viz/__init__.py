"""Pictures: episodes as GIFs (full grid plus agents' views) and learning curves."""

from sociajax.viz.curves import mean_ci, plot_learning_curves
from sociajax.viz.episodes import frames_with_views, save_gif

__all__ = ["frames_with_views", "mean_ci", "plot_learning_curves", "save_gif"]
