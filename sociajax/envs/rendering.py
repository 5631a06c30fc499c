"""Egocentric RGB views with line of sight (the original's rule or MiniGrid's), and full-grid
frames, as pure JAX gathers.

Everything per-step is a gather from the precomputed atlas in :mod:`sociajax.envs.tiles` plus
a few integer ops for agent sprites (their colour changes with prestige), so rendering stays
cheap enough to run for every agent on every step of thousands of vmapped episodes.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sociajax.envs import tiles
from sociajax.envs.grid_ops import spread_bits

# Unit vectors (dx, dy) for directions 0 east, 1 south, 2 west, 3 north (MiniGrid convention).
DIR_VEC = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], np.int32)


@functools.lru_cache(maxsize=None)
def view_offsets(view_size: int, view_offset: int) -> np.ndarray:
    """int32 [4, view_size**2, 2]: world (dx, dy) of each view cell, row-major, per direction.

    The observer sits at view row ``view_size - 1 - view_offset``, centre column, looking up
    the image: row r is ``(view_size - 1 - view_offset) - r`` cells ahead, column c is
    ``c - view_size // 2`` cells to the right.
    """
    own_row, own_col = view_size - 1 - view_offset, view_size // 2
    out = np.zeros((4, view_size * view_size, 2), np.int32)
    for d in range(4):
        fwd = DIR_VEC[d]
        right = np.array([-fwd[1], fwd[0]])
        for r in range(view_size):
            for c in range(view_size):
                out[d, r * view_size + c] = fwd * (own_row - r) + right * (c - own_col)
    return out


def minigrid_visibility(transparent: jax.Array, own_row: int, own_col: int) -> jax.Array:
    """bool [..., V, V] visibility mask, exactly MiniGrid's ``Grid.process_vis`` rule.

    ``transparent`` is bool [..., V rows, V cols]. MiniGrid sweeps rows from the bottom up,
    each left-to-right then right-to-left: a visible transparent cell reveals its side
    neighbour in the sweep direction and the cells above it and diagonally above ahead. Here
    each row is packed into an int (bit c = column c) and each sweep is a doubling prefix
    scan, so the whole rule is a few dozen integer ops per row, fused by XLA.
    """
    size = transparent.shape[-1]
    full = (1 << size) - 1
    first, last = 1, 1 << (size - 1)
    bits = jnp.asarray(1 << np.arange(size), jnp.int32)
    see_rows = jnp.sum(jnp.where(transparent, bits, 0), axis=-1)  # [..., V] packed
    carried = jnp.zeros(transparent.shape[:-2], jnp.int32)
    rows: list[jax.Array] = [carried] * size
    for j in reversed(range(size)):
        see = see_rows[..., j]
        mask = carried | (1 << own_col) if j == own_row else carried
        # Left-to-right sweep over columns 0..V-2.
        sent_right = spread_bits(mask & see, see, size, toward_high=True) & ~last & full
        mask = mask | ((sent_right << 1) & full)
        # Right-to-left sweep over columns V-1..1.
        sent_left = spread_bits(mask & see, see, size, toward_high=False) & ~first & full
        mask = mask | (sent_left >> 1)
        rows[j] = mask
        if j > 0:
            carried = (sent_right | (sent_right << 1) | sent_left | (sent_left >> 1)) & full
    per_cell = _materialize(jnp.stack(rows, axis=-1), repeat=size)
    return (per_cell.reshape(per_cell.shape[:-1] + (size, size)) & bits) != 0


def original_visibility(transparent: jax.Array, own_row: int, own_col: int) -> jax.Array:
    """bool [..., V, V] visibility mask by the original code's line-of-sight rule.

    The paper's agents saw this, not MiniGrid's ``process_vis``: it shows the row behind the
    observer and hides other strips behind walls. Only the observer's cell starts visible.
    Pass 1 goes up the rows from the observer's to row 1, pass 2 down from the observer's to
    the last; each row is swept from the observer's column rightwards to the edge, then from
    the column right of it leftwards down to column 1. A visible transparent cell reveals its
    side neighbour in the sweep direction, the cell above it (pass 1) or below it (pass 2), and
    the diagonal between the two. So column 0 and row 0 are revealed but never reveal anything,
    and the row behind is reached only from the observer's row in pass 2 (when pass 1 sweeps
    it, nothing there is visible yet). With the observer on the last row (view offset 0) the
    original read one row past its array; here that row does not exist. Rows are packed ints
    and sweeps doubling prefix scans, as in :func:`minigrid_visibility`; both passes share the
    observer's row's sweep, which pass 2 would only repeat.
    """
    size = transparent.shape[-1]
    full = (1 << size) - 1
    right_cols = full & ~((1 << own_col) - 1)  # the rightward sweep: own_col .. V-1
    left_cols = ((1 << (own_col + 2)) - 1) & ~1 & full  # the leftward sweep: own_col+1 .. 1
    bits = jnp.asarray(1 << np.arange(size), jnp.int32)
    see_rows = jnp.sum(jnp.where(transparent, bits, 0), axis=-1)  # [..., V] packed

    def sweep(mask: jax.Array, see: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One row's two sweeps: (its mask, the cells it reveals in the next row)."""
        sent_right = spread_bits(mask & see & right_cols, see & right_cols, size, toward_high=True)
        mask = mask | ((sent_right << 1) & full)
        sent_left = spread_bits(mask & see & left_cols, see & left_cols, size, toward_high=False)
        mask = mask | (sent_left >> 1)
        return mask, sent_right | ((sent_right << 1) & full) | sent_left | (sent_left >> 1)

    rows: list[jax.Array] = [jnp.zeros(transparent.shape[:-2], jnp.int32)] * size
    own_mask, own_next = sweep(jnp.full(transparent.shape[:-2], 1 << own_col, jnp.int32), see_rows[..., own_row])
    rows[own_row] = own_mask
    carried = own_next
    for j in range(own_row - 1, 0, -1):  # pass 1: rows ahead; row 0 is marked, never swept
        rows[j], carried = sweep(carried, see_rows[..., j])
    if own_row > 0:
        rows[0] = carried
    carried = own_next
    for j in range(own_row + 1, size):  # pass 2: the rows behind
        rows[j], carried = sweep(carried, see_rows[..., j])
    per_cell = _materialize(jnp.stack(rows, axis=-1), repeat=size)
    return (per_cell.reshape(per_cell.shape[:-1] + (size, size)) & bits) != 0


OCCLUSION_RULES = {"original": original_visibility, "minigrid": minigrid_visibility}


def visibility(transparent: jax.Array, own_row: int, own_col: int, occlusion: str = "original") -> jax.Array:
    """bool [..., V, V]: which view cells the observer sees, by the named rule (static)."""
    if not isinstance(occlusion, str) or occlusion not in OCCLUSION_RULES:
        raise ValueError(f"occlusion must be one of {sorted(OCCLUSION_RULES)}, got occlusion={occlusion!r}")
    return OCCLUSION_RULES[occlusion](transparent, own_row, own_col)


def _materialize(values: jax.Array, repeat: int = 1) -> jax.Array:
    """``values`` (non-negative) computed once into memory, optionally with each entry repeated
    ``repeat`` times along the last axis.

    XLA:CPU fuses cheap integer producers into every element of their consumers, so a long
    chain feeding V*V cells, or a table feeding every pixel, would be recomputed each time, and
    optimization barriers are dropped before fusion. A reduction is never fused into its
    consumers, so a max against zeros (an identity for non-negative values) pins the result.
    """
    pinned = jnp.max(jnp.stack([values, jnp.zeros_like(values)]), axis=0)
    return jnp.repeat(pinned, repeat, axis=-1) if repeat > 1 else pinned


def prestige_colors(prestige: jax.Array, prestige_scale: jax.Array) -> jax.Array:
    """int32 [..., 3]: agent colour from red (no prestige) to blue (high), via tanh(c / scale)."""
    mix = jnp.tanh(prestige / prestige_scale)[..., None]
    color = mix * tiles.HIGH_PRESTIGE_COLOR + (1.0 - mix) * tiles.LOW_PRESTIGE_COLOR
    return jnp.floor(color).astype(jnp.int32)


def _floor_divide(num: jax.Array, den: jax.Array) -> jax.Array:
    """Exact ``num // den`` for non-negative int32 below 2**24, without integer division.

    CPUs have no vector integer divide, so XLA emits a scalar loop; a float quotient corrected
    by one step is exact and vectorises.
    """
    quotient = jnp.floor(num.astype(jnp.float32) / den.astype(jnp.float32)).astype(jnp.int32)
    quotient = jnp.where(quotient * den > num, quotient - 1, quotient)
    return jnp.where((quotient + 1) * den <= num, quotient + 1, quotient)


def agent_sprites(alpha: jax.Array, color: jax.Array, tile_px: int) -> tuple[jax.Array, jax.Array]:
    """Agent tiles on floor and on a goal: uint8 [..., t, t, 3] each.

    ``alpha`` uint8 [..., t, t] sprite intensity, ``color`` int32 [..., 3]. The sprite is the
    colour scaled by intensity (``>> 8`` as the original); on a goal it is alpha-blended over
    the goal colour with the sprite's own brightness as alpha, as the original did.
    """
    del tile_px
    sprite = (alpha[..., None].astype(jnp.int32) * color[..., None, None, :]) >> 8
    weight = sprite.sum(-1, keepdims=True)
    top = jnp.max(weight, axis=(-3, -2), keepdims=True)
    goal = jnp.asarray(tiles.GOAL_COLOR, jnp.int32)
    blended = _floor_divide(goal * (top - weight) + sprite * weight, jnp.maximum(top, 1))
    on_goal = jnp.where(top > 0, blended, goal)
    return sprite.astype(jnp.uint8), on_goal.astype(jnp.uint8)


def egocentric_views(
    grid: jax.Array,
    agent_pos: jax.Array,
    agent_dir: jax.Array,
    prestige: jax.Array,
    prestige_scale: jax.Array,
    view_size: int = 7,
    view_offset: int = 1,
    tile_px: int = 3,
    occlusion: str = "original",
    present: jax.Array | None = None,
) -> jax.Array:
    """uint8 [A, V*t, V*t, 3]: every agent's egocentric RGB view of one environment.

    grid uint8 [H, W] of tile kinds; agent_pos int [A, 2] (x, y); agent_dir int [A].
    Cells outside the map block sight and, like hidden cells, are drawn in the shadow colour.
    The observer is drawn pointing up; other agents in their prestige colour, turned by their
    direction relative to the observer; where several agents share a cell the observer is on
    top, otherwise the lowest index. ``present`` bool [A] (default all): absent agents are
    drawn in no one else's view.
    """
    height, width = grid.shape
    n_agents = agent_pos.shape[0]
    cells = view_size * view_size
    own_row, own_col = view_size - 1 - view_offset, view_size // 2
    own_cell = own_row * view_size + own_col

    # Which world cell each view cell shows.
    world = agent_pos[:, None, :] + jnp.asarray(view_offsets(view_size, view_offset))[agent_dir]
    x, y = world[..., 0], world[..., 1]
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    kind = jnp.where(inside, grid[jnp.clip(y, 0, height - 1), jnp.clip(x, 0, width - 1)], tiles.WALL)
    visible = visibility(
        (kind != tiles.WALL).reshape(n_agents, view_size, view_size), own_row, own_col, occlusion
    ).reshape(n_agents, cells)
    base = jnp.where(visible & inside, kind, tiles.SHADOW).astype(jnp.int32)

    # Where each agent falls in each observer's view.
    fwd = jnp.asarray(DIR_VEC)[agent_dir]  # [A, 2]
    right = jnp.stack([-fwd[:, 1], fwd[:, 0]], axis=-1)
    rel = agent_pos[None, :, :] - agent_pos[:, None, :]  # [observer, other, 2]
    row = own_row - jnp.sum(rel * fwd[:, None, :], -1)
    col = own_col + jnp.sum(rel * right[:, None, :], -1)
    in_window = (row >= 0) & (row < view_size) & (col >= 0) & (col < view_size)
    if present is not None:
        in_window = in_window & present[None, :]
    cell_of = jnp.where(in_window, row * view_size + col, -1)  # [observer, other]
    cell_ids = jnp.arange(cells)
    owner = jnp.full((n_agents, cells), -1, jnp.int32)
    for other in reversed(range(n_agents)):
        owner = jnp.where(cell_of[:, other, None] == cell_ids[None, :], other, owner)
    owner = owner.at[:, own_cell].set(jnp.arange(n_agents))
    owner = jnp.where(visible, owner, -1)

    # Per observer, a small table of tiles: the atlas, then each agent on floor and on goal.
    alpha = jnp.asarray(tiles.agent_alpha(tile_px))[agent_dir[None, :], agent_dir[:, None]]
    colors = jnp.broadcast_to(prestige_colors(prestige, prestige_scale)[None], (n_agents, n_agents, 3))
    on_floor, on_goal = agent_sprites(alpha, colors, tile_px)  # [observer, agent, t, t, 3]
    atlas = jnp.broadcast_to(
        jnp.asarray(tiles.tile_atlas(tile_px)), (n_agents, tiles.NUM_TILE_KINDS, tile_px, tile_px, 3)
    )
    table = jnp.concatenate([atlas, on_floor, on_goal], axis=1)
    rows = _materialize(table.reshape(n_agents, -1, tile_px * 3))  # tile rows [A, K*t, t*3]
    tile_index = jnp.where(owner >= 0, tiles.NUM_TILE_KINDS + owner + n_agents * (base == tiles.GOAL), base)
    tile_index = _materialize(tile_index.reshape(n_agents, view_size, view_size))
    # Gather whole tile rows straight into the output layout [row, pixel row, col, (pixel col,
    # rgb)], so no transpose follows.
    row_index = tile_index[:, :, None, :] * tile_px + jnp.arange(tile_px)[:, None]
    pixels = jnp.take_along_axis(rows, row_index.reshape(n_agents, -1, 1), axis=1)
    return pixels.reshape(n_agents, view_size * tile_px, view_size * tile_px, 3)


def full_frame(
    grid: jax.Array,
    agent_pos: jax.Array,
    agent_dir: jax.Array,
    prestige: jax.Array,
    prestige_scale: jax.Array,
    tile_px: int,
    present: jax.Array | None = None,
) -> jax.Array:
    """uint8 [H*t, W*t, 3]: the whole grid with every agent drawn facing its own direction
    (absent agents, ``present`` False, not drawn)."""
    height, width = grid.shape
    n_agents = agent_pos.shape[0]
    base = jnp.asarray(tiles.tile_atlas(tile_px, grid_lines=True))[grid.astype(jnp.int32)]
    alpha = jnp.asarray(tiles.agent_alpha(tile_px))[agent_dir, 3]
    on_floor, on_goal = agent_sprites(alpha, prestige_colors(prestige, prestige_scale), tile_px)
    x, y = agent_pos[:, 0], agent_pos[:, 1]
    sprite = jnp.where((grid[y, x] == tiles.GOAL)[:, None, None, None], on_goal, on_floor)
    # Lowest index drawn last, so it is on top where agents share a cell.
    for agent in reversed(range(n_agents)):
        tile = sprite[agent] if present is None else jnp.where(present[agent], sprite[agent], base[y[agent], x[agent]])
        base = base.at[y[agent], x[agent]].set(tile)
    return base.transpose(0, 2, 1, 3, 4).reshape(height * tile_px, width * tile_px, 3)
