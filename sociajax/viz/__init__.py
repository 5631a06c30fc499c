"""Pictures of episodes: full-grid frames with agents' views, written as GIFs."""

from sociajax.viz.episodes import frames_with_views, save_gif

__all__ = ["frames_with_views", "save_gif"]
