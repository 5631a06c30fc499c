"""Pixel-level parity of the egocentric views with the original's geometry, its line of sight,
and MiniGrid's rules.

Each reference here is written independently of sociajax's implementation: MiniGrid's own
``Grid.process_vis`` and sprite rasteriser, and NumPy transcriptions, cell by cell, of the
original's slice-and-rotate view extraction and of its line-of-sight rule as described in
the project's notes on the original environments.
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


def _original_mask(transparent: np.ndarray, own_row: int, own_col: int) -> np.ndarray:
    """The original's line of sight for a [rows, cols] transparency grid, as [rows, cols].

    Only the observer's cell starts visible. Pass 1 takes the rows from the one behind the
    observer up to row 1, pass 2 the rows from the observer's down to the last. In each row a
    sweep goes from the observer's column rightwards to the last column, then another from
    the column right of the observer's leftwards down to column 1; a visible transparent cell
    reveals its neighbour on the sweep's side, the cell beyond it in the pass's direction
    (above in pass 1, below in pass 2) and the diagonal between the two. A row behind the
    view (view offset 0) does not exist and is not swept.
    """
    rows, cols = transparent.shape
    seen = np.zeros((rows, cols), bool)
    seen[own_row, own_col] = True

    def sweep(row: int, toward: int) -> None:
        beyond = row + toward
        for columns, side in ((range(own_col, cols), 1), (range(own_col + 1, 0, -1), -1)):
            for col in columns:
                if not (seen[row, col] and transparent[row, col]):
                    continue
                if 0 <= col + side < cols:
                    seen[row, col + side] = True
                if 0 <= beyond < rows:
                    seen[beyond, col] = True
                    if 0 <= col + side < cols:
                        seen[beyond, col + side] = True

    for row in range(min(own_row + 1, rows - 1), 0, -1):
        sweep(row, -1)
    for row in range(own_row, rows):
        sweep(row, +1)
    return seen


def _random_transparency(rng: np.random.Generator, count: int, size: int, own: tuple[int, int]) -> np.ndarray:
    """bool [count, size, size]: grids from nearly open to mostly wall, the observer's cell open."""
    density = rng.uniform(0.0, 0.7, size=(count, 1, 1))
    transparent = rng.random((count, size, size)) >= density
    transparent[:, own[0], own[1]] = True
    return transparent


@pytest.mark.parametrize("size", [3, 5, 7, 9])
def test_original_visibility_matches_reference_on_random_grids(size: int) -> None:
    rng = np.random.default_rng(size)
    count = 1500 if size == 7 else 300
    seen = []
    for view_offset in range(size):
        own_row, own_col = size - 1 - view_offset, size // 2
        transparent = _random_transparency(rng, count, size, (own_row, own_col))
        ours = np.asarray(jax.jit(lambda t: rendering.original_visibility(t, own_row, own_col))(transparent))
        reference = np.stack([_original_mask(t, own_row, own_col) for t in transparent])
        assert ours.shape == reference.shape
        assert int((ours != reference).sum()) == 0, (size, view_offset)
        seen.append(reference.mean())
    assert 0.2 < min(seen) and np.mean(seen) < 0.97  # non-trivial data: cells both hidden and seen


# Hand-built cases in view coordinates ('#' opaque, '.' transparent, '@' the observer, at
# row 5, column 3 of a 7x7 view); expected masks by hand ('1' seen, '0' hidden).
HAND_CASES = {
    # The row behind is seen, even around a wall right behind the observer; the walls beside
    # it hide the rest of its own row.
    "wall directly behind": (
        [".......", ".......", ".......", ".......", ".......", "..#@#..", "...#..."],
        ["1111111", "1111111", "1111111", "1111111", "1111111", "0011100", "1111111"],
    ),
    # Column 0 is revealed but never reveals anything (its sweep stops at column 1); the last
    # column does, so sight runs up the right edge and not up the left one.
    "walls at the side edges": (
        [".......", ".......", ".......", ".......", ".#####.", "...@...", "......."],
        ["0000001", "0000001", "0000001", "0000001", "1111111", "1111111", "1111111"],
    ),
    # Beyond a wall line only the columns straight through its gaps are seen; sight does not
    # turn back toward the centre (MiniGrid's rule would).
    "cells beyond a wall line": (
        [".......", ".......", ".......", "#.###.#", ".......", "...@...", "......."],
        ["1100011", "1100011", "1100011", "1111111", "1111111", "1111111", "1111111"],
    ),
    # A full wall line hides everything beyond it, in both rules.
    "closed wall line": (
        [".......", ".......", "#######", ".......", ".......", "...@...", "......."],
        ["0000000", "0000000", "1111111", "1111111", "1111111", "1111111", "1111111"],
    ),
}


@pytest.mark.parametrize("case", sorted(HAND_CASES))
def test_original_visibility_hand_built(case: str) -> None:
    layout, expected_rows = HAND_CASES[case]
    transparent = np.array([[ch != "#" for ch in row] for row in layout])
    expected = np.array([[ch == "1" for ch in row] for row in expected_rows])
    assert layout[5][3] == "@"
    ours = np.asarray(rendering.original_visibility(jnp.asarray(transparent), 5, 3))
    np.testing.assert_array_equal(ours, expected)
    np.testing.assert_array_equal(_original_mask(transparent, 5, 3), expected)
    minigrid = _minigrid_mask(transparent, (3, 5))
    assert not minigrid[6].any()  # MiniGrid never shows the row behind
    if case == "cells beyond a wall line":
        assert minigrid[:3].sum() > expected[:3].sum()  # MiniGrid's sight turns past the gaps
    if case == "walls at the side edges":
        assert minigrid[:4, 0].all()  # in MiniGrid column 0 reveals the cells above it


def test_original_shows_the_row_behind_and_never_more_than_minigrid_ahead() -> None:
    """The relations the project measured against the original, on random grids."""
    rng = np.random.default_rng(11)
    transparent = _random_transparency(rng, 2000, 7, (5, 3))
    original = np.asarray(rendering.original_visibility(jnp.asarray(transparent), 5, 3))
    minigrid = np.asarray(rendering.minigrid_visibility(jnp.asarray(transparent), 5, 3))
    assert original[:, 6, 2:5].all()  # the three cells behind are always seen
    assert not minigrid[:, 6].any()
    assert not (original[:, :6] & ~minigrid[:, :6]).any()  # ahead: a subset of MiniGrid's
    assert (original[:, :6] != minigrid[:, :6]).any(axis=(1, 2)).mean() > 0.1  # and not equal


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


@pytest.mark.parametrize("occlusion, view_offset", [("original", 1), ("minigrid", 1), ("original", 2)])
def test_views_match_reference_geometry_and_occlusion(occlusion: str, view_offset: int) -> None:
    """Every cell of the views of random layouts and poses, all four directions, is the
    reference's: the original's geometry with the chosen line of sight (the default: the
    original's)."""
    options = {} if occlusion == "original" else {"occlusion": occlusion}
    env, params = sociajax.make("GoalCycle-3", n_agents=1, view_offset=view_offset, **options)
    own_row, own_col = 6 - view_offset, 3
    reference_mask = {
        "original": lambda t: _original_mask(t, own_row, own_col),
        "minigrid": lambda t: _minigrid_mask(t, (own_col, own_row)),
    }[occlusion]
    keys = jax.random.split(jax.random.PRNGKey(3), 60)
    _, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)

    def views_in_every_direction(state):
        turned = [state.replace(agent_dir=jnp.array([d], jnp.int32)) for d in range(4)]
        return jnp.stack([env.get_obs(s, params)[0] for s in turned])

    views = np.asarray(jax.jit(jax.vmap(views_in_every_direction))(states))  # [60, 4, 21, 21, 3]
    states = jax.device_get(states)
    palette = {tiles.FLOOR: (0, 0, 0), tiles.WALL: tuple(tiles.WALL_COLOR), tiles.GOAL: tuple(tiles.GOAL_COLOR)}
    checked = hidden = 0
    for n in range(len(keys)):
        for direction in range(4):
            pos = tuple(int(v) for v in states.agent_pos[n, 0])
            cells = _reference_view_cells(np.asarray(states.grid[n]), pos, direction, view_offset=view_offset)
            transparent = (cells != tiles.WALL) & (cells != -1)
            transparent[own_row, own_col] = True
            visible = reference_mask(transparent)
            for r in range(7):
                for c in range(7):
                    if (r, c) == (own_row, own_col):
                        continue  # the observer's own sprite
                    seen = visible[r, c] and cells[r, c] != -1
                    expected = palette[cells[r, c]] if seen else SHADOW
                    tile = views[n, direction, 3 * r : 3 * r + 3, 3 * c : 3 * c + 3].reshape(-1, 3)
                    assert (tile == expected).all(), (n, direction, r, c, tile[0], expected)
                    checked += 1
                    hidden += not seen
    assert checked == 60 * 4 * 48
    assert 0.05 * checked < hidden < 0.6 * checked  # occlusion matters on this data


@pytest.mark.parametrize("occlusion", ["original", "minigrid"])
def test_expert_directly_behind_the_novice(occlusion: str) -> None:
    """The original shows the row behind the observer, so a novice sees an expert following it;
    MiniGrid's rule hides it."""
    env, params = sociajax.make("GoalCycle-1", n_agents=2, size=5, occlusion=occlusion)
    layout = ["#####", "#...#", "#.0.#", "#...#", "#####"]
    # Agent 0 (the novice) faces north at (1, 2); agent 1 (the expert) stands right behind it.
    obs, _ = env.reset_from_layout(jax.random.PRNGKey(0), params, layout, [[1, 2], [1, 3]], [3, 3])
    behind = np.asarray(obs)[0, 18:21, 9:12].reshape(-1, 3)  # view row 6, column 3
    if occlusion == "original":
        assert not (behind == SHADOW).all(axis=-1).any() and not (behind == 0).all()
        assert behind[:, 0].max() > 150 and behind[:, 2].max() == 0  # the expert, red at prestige 0
        wall = np.asarray(obs)[0, 18:21, 6:9].reshape(-1, 3)  # row 6, column 2: the wall at (0, 3)
        assert (wall == tiles.WALL_COLOR).all()
    else:
        assert (behind == SHADOW).all()
    # Ahead, both rules agree: the expert sees the novice one cell in front of it.
    ahead = np.asarray(obs)[1, 12:15, 9:12].reshape(-1, 3)
    assert behind.shape == ahead.shape and ahead[:, 0].max() > 150


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
