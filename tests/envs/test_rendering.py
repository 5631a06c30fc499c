"""Pixel-level parity of the egocentric views with the original's geometry and MiniGrid's rules.

Each reference here is written independently of sociajax's implementation: MiniGrid's own
``Grid.process_vis`` and sprite rasteriser, and a NumPy transcription of the original's
slice-and-rotate view extraction.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from minigrid.core.grid import Grid
from minigrid.core.world_object import Wall
from minigrid.utils import rendering as mg_render

import sociajax
from sociajax.envs import rendering, tiles

SHADOW = tuple(tiles.SHADOW_COLOR)


def _minigrid_mask(transparent: np.ndarray, agent_xy: tuple[int, int]) -> np.ndarray:
    """MiniGrid's visibility for a [rows, cols] transparency grid, as [rows, cols]."""
    size = transparent.shape[0]
    grid = Grid(size, size)
    for y in range(size):
        for x in range(size):
            if not transparent[y, x]:
                grid.set(x, y, Wall())
    return grid.process_vis(agent_xy).T


@pytest.mark.parametrize("view_offset", [0, 1])
def test_visibility_matches_minigrid_on_random_grids(view_offset: int) -> None:
    rng = np.random.default_rng(view_offset)
    size, count = 7, 1500
    own_row, own_col = size - 1 - view_offset, size // 2
    density = rng.uniform(0.0, 0.7, size=(count, 1, 1))
    transparent = rng.random((count, size, size)) >= density
    transparent[:, own_row, own_col] = True
    ours = np.asarray(jax.jit(lambda t: rendering.minigrid_visibility(t, own_row, own_col))(transparent))
    reference = np.stack([_minigrid_mask(t, (own_col, own_row)) for t in transparent])
    assert ours.shape == reference.shape
    assert int((ours != reference).sum()) == 0
    # The rule must be non-trivial on this data: some cells hidden, some visible.
    assert reference.mean() > 0.2 and reference.mean() < 0.9


def test_visibility_other_view_sizes_match_minigrid() -> None:
    rng = np.random.default_rng(7)
    for size in (5, 9):
        own_row, own_col = size - 2, size // 2
        transparent = rng.random((300, size, size)) > 0.3
        transparent[:, own_row, own_col] = True
        ours = np.asarray(rendering.minigrid_visibility(jnp.asarray(transparent), own_row, own_col))
        reference = np.stack([_minigrid_mask(t, (own_col, own_row)) for t in transparent])
        assert int((ours != reference).sum()) == 0


@pytest.mark.parametrize("tile_px", [3, 8, 16])
def test_agent_sprite_matches_minigrid_rasteriser(tile_px: int) -> None:
    """The atlas's agent triangle equals MiniGrid's drawing at 3x supersampling, averaged down."""
    for direction in range(4):
        big = np.zeros((tile_px * 3, tile_px * 3, 3), np.uint8)
        triangle = mg_render.point_in_triangle((0.12, 0.19), (0.87, 0.50), (0.12, 0.81))
        triangle = mg_render.rotate_fn(triangle, cx=0.5, cy=0.5, theta=0.5 * np.pi * direction)
        mg_render.fill_coords(big, triangle, (255, 255, 255))
        reference = mg_render.downsample(big, 3).astype(np.uint8)[..., 0]
        np.testing.assert_array_equal(tiles.agent_alpha(tile_px)[direction, 3], reference)


def _reference_view_cells(grid: np.ndarray, pos: tuple[int, int], direction: int, view_size=7, view_offset=1):
    """Cell kinds of the view, the original's way: slice a square of the map (outside cells
    empty), rotate it (direction + 1) quarter turns with the grid indexed [x, y], then draw
    cell [i, j] at image row j, column i. Returns (kinds [rows, cols] or -1 outside)."""
    height, width = grid.shape
    x, y = pos
    half = view_size // 2
    top = {
        0: (x - view_offset, y - half),
        1: (x - half, y - view_offset),
        2: (x - view_size + 1 + view_offset, y - half),
        3: (x - half, y - view_size + 1 + view_offset),
    }[direction]
    sub = np.full((view_size, view_size), -1)  # indexed [x, y]
    for i in range(view_size):
        for j in range(view_size):
            gx, gy = top[0] + i, top[1] + j
            if 0 <= gx < width and 0 <= gy < height:
                sub[i, j] = grid[gy, gx]
    k = (direction + 1) % 4
    # The original's rotate_grid on an [x, y] array: k quarter turns (k=1 flips x, then transposes).
    for _ in range(k):
        sub = np.moveaxis(sub[::-1, :], 0, 1)
    return sub.T  # image rows are y


def test_views_match_reference_geometry_and_occlusion() -> None:
    env, params = sociajax.make("GoalCycle-3", n_agents=1)
    keys = jax.random.split(jax.random.PRNGKey(3), 60)
    obs, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    obs, states = np.asarray(obs), jax.device_get(states)
    palette = {tiles.FLOOR: (0, 0, 0), tiles.WALL: tuple(tiles.WALL_COLOR), tiles.GOAL: tuple(tiles.GOAL_COLOR)}
    checked = 0
    for n in range(len(keys)):
        for direction in range(4):
            pos = tuple(int(v) for v in states.agent_pos[n, 0])
            state = jax.tree.map(lambda a: a[n], states).replace(agent_dir=jnp.array([direction], jnp.int32))
            view = np.asarray(env.get_obs(state, params))[0]
            cells = _reference_view_cells(np.asarray(states.grid[n]), pos, direction)
            transparent = (cells != tiles.WALL) & (cells != -1)
            transparent[5, 3] = True
            visible = _minigrid_mask(transparent, (3, 5))
            for r in range(7):
                for c in range(7):
                    if (r, c) == (5, 3):
                        continue  # the observer's own sprite
                    expected = palette[cells[r, c]] if visible[r, c] and cells[r, c] != -1 else SHADOW
                    tile = view[3 * r : 3 * r + 3, 3 * c : 3 * c + 3].reshape(-1, 3)
                    assert (tile == expected).all(), (n, direction, r, c, tile[0], expected)
                    checked += 1
    assert checked == 60 * 4 * 48


def test_agent_on_goal_is_blended_like_the_original() -> None:
    env, params = sociajax.make("GoalCycle-1", n_agents=2, size=5)
    layout = ["#####", "#...#", "#.0.#", "#...#", "#####"]
    # Agent 1 stands on the goal facing east; agent 0 looks at it from below (facing north).
    _, state = env.reset_from_layout(jax.random.PRNGKey(0), params, layout, [[2, 3], [2, 2]], [3, 0])
    state = state.replace(prestige=jnp.array([0.0, 3.0]))
    view = np.asarray(env.get_obs(state, params))[0]
    tile = view[12:15, 9:12].astype(np.int64)  # view row 4, column 3: one cell ahead
    mix = np.tanh(3.0 / 4.0)
    color = np.floor(mix * np.array([0, 0, 255.0]) + (1 - mix) * np.array([255.0, 0, 0])).astype(np.int64)
    # Seen by a north-facing observer, an east-facing agent points right: identity rotation.
    sprite = (tiles.agent_alpha(3)[0, 3].astype(np.int64)[..., None] * color) >> 8
    alpha = sprite.sum(-1, keepdims=True)
    top = alpha.max()
    expected = (tiles.GOAL_COLOR.astype(np.int64) * (top - alpha) + sprite * alpha) // top
    np.testing.assert_array_equal(tile, expected)
    assert not (tile == tiles.GOAL_COLOR).all(axis=-1).all()  # the agent is visible on the goal


def test_observer_points_up_in_every_direction() -> None:
    env, params = sociajax.make("GoalCycle-1", n_agents=1, size=5)
    layout = ["#####", "#...#", "#.0.#", "#...#", "#####"]
    for direction in range(4):
        obs, _ = env.reset_from_layout(jax.random.PRNGKey(0), params, layout, [[1, 1]], [direction])
        own = np.asarray(obs)[0, 15:18, 9:12, 0].astype(np.int64)
        expected = tiles.agent_alpha(3)[3, 3].astype(np.int64) * 255 >> 8
        np.testing.assert_array_equal(own, expected)


def test_full_frame_draws_tiles_and_agents() -> None:
    env, params = sociajax.make("GoalCycle-1", n_agents=1, size=5)
    layout = ["#####", "#...#", "#.0.#", "#...#", "#####"]
    _, state = env.reset_from_layout(jax.random.PRNGKey(0), params, layout, [[1, 3]], [0])
    frame = np.asarray(jax.jit(env.render, static_argnums=2)(state, params, 8))
    assert frame.shape == (40, 40, 3) and frame.dtype == np.uint8
    assert (frame[0:8, 0:8] == tiles.WALL_COLOR).all()
    assert (frame[16:24, 16:24] == tiles.GOAL_COLOR).all()
    agent_tile = frame[24:32, 8:16]
    assert agent_tile[..., 0].max() > 150 and agent_tile[..., 2].max() == 0  # red at prestige 0
