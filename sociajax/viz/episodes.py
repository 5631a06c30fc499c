"""Turn rendered episodes into GIFs (host side; rendering itself is jitted in the env)."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np


def frames_with_views(frames: np.ndarray, views: np.ndarray, view_scale: int = 4, gap: int = 4) -> np.ndarray:
    """Put each step's full frame beside the agents' egocentric views, stacked vertically.

    frames uint8 [T, H, W, 3]; views uint8 [T, A, h, w, 3]. Views are enlarged by
    ``view_scale`` (nearest neighbour) so the 21x21 observations are legible.
    Returns uint8 [T, H', W', 3].
    """
    frames, views = np.asarray(frames), np.asarray(views)
    if frames.ndim != 4 or views.ndim != 5 or frames.shape[0] != views.shape[0]:
        raise ValueError(f"expected frames [T,H,W,3] and views [T,A,h,w,3], got {frames.shape} and {views.shape}")
    steps, n_agents, vh, vw, _ = views.shape
    big = views.repeat(view_scale, axis=2).repeat(view_scale, axis=3)
    column_h = n_agents * vh * view_scale + (n_agents - 1) * gap
    height = max(frames.shape[1], column_h)
    width = frames.shape[2] + gap + vw * view_scale
    out = np.full((steps, height, width, 3), 255, np.uint8)
    out[:, : frames.shape[1], : frames.shape[2]] = frames
    x0 = frames.shape[2] + gap
    for agent in range(n_agents):
        y0 = agent * (vh * view_scale + gap)
        out[:, y0 : y0 + vh * view_scale, x0:] = big[:, agent]
    return out


def save_gif(path: str | os.PathLike, frames: Sequence[np.ndarray] | np.ndarray, fps: int = 8) -> str:
    """Write uint8 frames [T, H, W, 3] to an animated GIF that loops; returns the path."""
    import imageio.v3 as iio

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got fps={fps}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    iio.imwrite(path, frames, duration=1000 / fps, loop=0)
    return str(path)
