"""Small jit/vmap-safe grid algorithms shared by generators and scripted policies."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _dilate(mask: jax.Array) -> jax.Array:
    """4-neighbour dilation of a bool [H, W] mask (cells outside the grid count as empty)."""
    grown = mask
    grown = grown.at[1:, :].max(mask[:-1, :])
    grown = grown.at[:-1, :].max(mask[1:, :])
    grown = grown.at[:, 1:].max(mask[:, :-1])
    grown = grown.at[:, :-1].max(mask[:, 1:])
    return grown


def reachable(free: jax.Array, seed: jax.Array) -> jax.Array:
    """bool [H, W]: free cells 4-connected to any seed cell through free cells."""
    seed = seed & free

    def grow(carry):
        mask, _ = carry
        new = _dilate(mask) & free
        return new, jnp.any(new != mask)

    mask, _ = jax.lax.while_loop(lambda c: c[1], grow, (seed, jnp.array(True)))
    return mask


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
