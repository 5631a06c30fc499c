"""Tile kinds, colours and the precomputed pixel atlas the renderers gather from.

Observations are built by *gathering* 3x3-pixel tiles from a small atlas computed once with
NumPy, never by drawing per step. Sprites follow the original renderer: each tile is drawn at
three times its size and averaged down (anti-aliasing), so the agent triangle is not a flat
colour. Colours and geometry are the original's (docs/differences.md lists where we differ).
"""

from __future__ import annotations

import functools
import math

import numpy as np

# Cell kinds stored in ``EnvState.grid``.
FLOOR, WALL, GOAL = 0, 1, 2
# Extra atlas rows that never appear in the grid: cells outside the map or not visible.
SHADOW = 3
NUM_TILE_KINDS = 4

WALL_COLOR = np.array([74, 65, 42], np.uint8)
GOAL_COLOR = np.array([255, 255, 0], np.uint8)
SHADOW_COLOR = np.array([35, 25, 30], np.uint8)
FLOOR_COLOR = np.array([0, 0, 0], np.uint8)
# Prestige interpolates between these two (low prestige red, high prestige blue).
LOW_PRESTIGE_COLOR = np.array([255, 0, 0], np.float32)
HIGH_PRESTIGE_COLOR = np.array([0, 0, 255], np.float32)

# Supersampling factor of the original renderer.
SUBDIVS = 3

# The agent sprite: a triangle pointing east in unit tile coordinates, rotated by dir * 90 deg.
_TRIANGLE = ((0.12, 0.19), (0.87, 0.50), (0.12, 0.81))


def _triangle_coverage(size: int, direction: int) -> np.ndarray:
    """Boolean [size, size] mask of pixel centres inside the agent triangle facing ``direction``.

    Mirrors the barycentric test and rotation of the MiniGrid renderer (float32 vertices,
    float64 sample points) so the atlas matches its pixels exactly; a test checks this.
    """
    a, b, c = (np.array(p, dtype=np.float32) for p in _TRIANGLE)
    theta = 0.5 * math.pi * direction
    cos_t, sin_t = math.cos(-theta), math.sin(-theta)
    mask = np.zeros((size, size), dtype=bool)
    v0, v1 = c - a, b - a
    dot00, dot01, dot11 = np.dot(v0, v0), np.dot(v0, v1), np.dot(v1, v1)
    inv_denom = 1 / (dot00 * dot11 - dot01 * dot01)
    for y in range(size):
        for x in range(size):
            xf, yf = (x + 0.5) / size - 0.5, (y + 0.5) / size - 0.5
            px = 0.5 + xf * cos_t - yf * sin_t
            py = 0.5 + yf * cos_t + xf * sin_t
            v2 = np.array((px, py)) - a
            dot02, dot12 = np.dot(v0, v2), np.dot(v1, v2)
            u = (dot11 * dot02 - dot01 * dot12) * inv_denom
            v = (dot00 * dot12 - dot01 * dot02) * inv_denom
            mask[y, x] = (u >= 0) and (v >= 0) and (u + v) < 1
    return mask


def _downsample(img: np.ndarray, factor: int) -> np.ndarray:
    """Block-average an image (the original's anti-aliasing step), truncating to uint8."""
    h, w = img.shape[:2]
    img = img.reshape(h // factor, factor, w // factor, factor, -1).astype(np.float64)
    return img.mean(axis=3).mean(axis=1).astype(np.uint8)


@functools.lru_cache(maxsize=None)
def agent_alpha(tile_px: int) -> np.ndarray:
    """uint8 [4 abs_dir, 4 view_dir, tile_px, tile_px]: the anti-aliased agent sprite intensity.

    Index ``[d, v]`` is an agent facing ``d`` as seen by an observer facing ``v``: the sprite is
    drawn facing ``d`` and then turned with the observer's view, as the original did, so an
    agent facing the same way as the observer points up. ``v = 3`` (north) is the identity, which
    the full-grid render uses. Values are the red channel of a white sprite, 0..255.
    """
    out = np.zeros((4, 4, tile_px, tile_px), np.uint8)
    for d in range(4):
        big = np.zeros((tile_px * SUBDIVS, tile_px * SUBDIVS, 3), np.uint8)
        big[_triangle_coverage(tile_px * SUBDIVS, d)] = 255
        tile = _downsample(big, SUBDIVS)[..., 0]
        for v in range(4):
            # The view of an observer facing v turns tiles clockwise (3 - v) % 4 quarter turns.
            out[d, v] = np.rot90(tile, k=-((3 - v) % 4))
    return out


@functools.lru_cache(maxsize=None)
def tile_atlas(tile_px: int, grid_lines: bool = False) -> np.ndarray:
    """uint8 [NUM_TILE_KINDS, tile_px, tile_px, 3]: one sprite per cell kind (floor, wall,
    goal, shadow). Walls, goals and shadow are flat; floor is black. ``grid_lines`` adds the
    faint cell border the original drew at large tile sizes (full-frame renders only)."""
    atlas = np.zeros((NUM_TILE_KINDS, tile_px, tile_px, 3), np.uint8)
    atlas[WALL] = WALL_COLOR
    atlas[GOAL] = GOAL_COLOR
    atlas[SHADOW] = SHADOW_COLOR
    if grid_lines:
        level = max(0, min(20, tile_px - 10))
        atlas[FLOOR, 0, :] = level
        atlas[FLOOR, :, -1] = level
    return atlas
