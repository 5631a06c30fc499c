"""Small jit/vmap-safe grid algorithms shared by generators and scripted policies."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def spread_bits(seeds: jax.Array, through: jax.Array, width: int, toward_high: bool) -> jax.Array:
    """Bits reachable from ``seeds`` moving one way along runs of set bits of ``through``.

    Rows are packed into ints (bit c = column c). Kogge-Stone doubling: bit i ends up set if
    some seed k on the given side has ``through`` set on every bit from k up to i.
    """
    reach, passes, shift = seeds, through, 1
    while shift < width:
        if toward_high:
            reach = reach | (passes & (reach << shift))
            passes = passes & (passes << shift)
        else:
            reach = reach | (passes & (reach >> shift))
            passes = passes & (passes >> shift)
        shift *= 2
    return reach


def pack_rows(mask: jax.Array) -> jax.Array:
    """int32 [..., H] from bool [..., H, W] (W <= 31): bit c of row r is ``mask[r, c]``."""
    width = mask.shape[-1]
    if width > 31:
        raise ValueError(f"rows wider than 31 cells cannot be packed into int32, got width={width}")
    return jnp.sum(jnp.where(mask, jnp.left_shift(1, jnp.arange(width, dtype=jnp.int32)), 0), axis=-1)


def unpack_rows(rows: jax.Array, width: int) -> jax.Array:
    """bool [..., H, W] from packed int32 rows."""
    return (rows[..., None] >> jnp.arange(width, dtype=jnp.int32)) & 1 == 1


def reachable(free: jax.Array, seed: jax.Array) -> jax.Array:
    """bool [H, W]: free cells 4-connected to any seed cell through free cells.

    Each sweep fills whole horizontal runs at once (bit-parallel on packed rows) and then steps
    one row up and down, so it converges in about as many sweeps as a path turns vertically,
    not as many as it has cells.
    """
    width = free.shape[-1]
    open_rows = pack_rows(free)
    start = pack_rows(seed & free)

    def sweep(carry):
        rows, _ = carry
        rows = spread_bits(rows, open_rows, width, True) | spread_bits(rows, open_rows, width, False)
        above = jnp.concatenate([jnp.zeros_like(rows[:1]), rows[:-1]])
        below = jnp.concatenate([rows[1:], jnp.zeros_like(rows[:1])])
        grown = rows | ((above | below) & open_rows)
        return grown, jnp.any(grown != rows)

    rows, _ = jax.lax.while_loop(lambda c: c[1], sweep, (start, jnp.array(True)))
    rows = spread_bits(rows, open_rows, width, True) | spread_bits(rows, open_rows, width, False)
    return unpack_rows(rows, width)


UNREACHABLE = 1 << 20


def path_costs(cost: jax.Array, targets: jax.Array) -> jax.Array:
    """int32 [H, W]: cheapest price of a path from each cell to the nearest target cell.

    ``cost`` int32 [H, W] is the price of entering a cell (``UNREACHABLE`` or more for walls);
    with unit costs this is the BFS distance. Synchronous relaxation in ``lax.while_loop``:
    it converges in as many sweeps as the longest optimal path has steps.
    """
    big = jnp.int32(UNREACHABLE)
    passable = cost < big
    dist = jnp.where(targets & passable, 0, big)

    def relax(carry):
        dist, _ = carry
        padded = jnp.pad(dist, 1, constant_values=big)
        best_next = jnp.minimum(
            jnp.minimum(padded[:-2, 1:-1], padded[2:, 1:-1]),
            jnp.minimum(padded[1:-1, :-2], padded[1:-1, 2:]),
        )
        # A cell's value counts its own entry price (targets excepted), so comparing the
        # values of a cell's neighbours compares the full price of stepping onto each.
        new = jnp.where(passable, jnp.minimum(dist, jnp.minimum(best_next, big) + cost), big)
        new = jnp.minimum(new, big)
        return new, jnp.any(new != dist)

    dist, _ = jax.lax.while_loop(lambda c: c[1], relax, (dist, jnp.array(True)))
    return dist
