"""Tests of the JAX maze generator and BFS distances against independent NumPy checks."""

from __future__ import annotations

import collections
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sociajax.envs.maze_gen import (
    _ROOT,
    _dfs_parent_dirs,
    between_room_walls,
    bfs_distance,
    dfs_num_iterations,
    generate_maze,
)

N_KEYS = 64
SIZES = [(19, 19), (11, 11), (9, 15)]  # each size costs a compile, the bulk of the run time


def _keys(n: int = N_KEYS, seed: int = 0) -> jax.Array:
    return jax.random.split(jax.random.key(seed), n)


@functools.cache
def _maze_fn(height: int, width: int):
    """jit(vmap) generator with a traced per-maze probability: one compile per size serves
    every p (compiling the generator dominates this file's run time)."""
    return jax.jit(jax.vmap(lambda k, p: generate_maze(k, height, width, p)))


@functools.cache
def _mazes(height: int, width: int, prob: float = 0.0) -> np.ndarray:
    """bool [N_KEYS, H, W] walls for the fixed test keys."""
    return np.asarray(_maze_fn(height, width)(_keys(), jnp.full(N_KEYS, prob, jnp.float32)))


_bfs_batched = jax.jit(jax.vmap(bfs_distance))


def numpy_bfs(free: np.ndarray, source: tuple[int, int]) -> np.ndarray:
    """Reference BFS: int [H, W] distances, H * W for walls and unreachable cells."""
    height, width = free.shape
    dist = np.full((height, width), height * width, np.int64)
    y, x = source
    if not (0 <= y < height and 0 <= x < width and free[y, x]):
        return dist
    dist[y, x] = 0
    queue = collections.deque([(y, x)])
    while queue:
        y, x = queue.popleft()
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= ny < height and 0 <= nx < width and free[ny, nx] and dist[ny, nx] == height * width:
                dist[ny, nx] = dist[y, x] + 1
                queue.append((ny, nx))
    return dist


def open_pairs(free: np.ndarray) -> np.ndarray:
    """Number of 4-adjacent open pairs per grid, for bool [..., H, W]."""
    horizontal = free[..., :, :-1] & free[..., :, 1:]
    vertical = free[..., :-1, :] & free[..., 1:, :]
    return horizontal.sum((-1, -2)) + vertical.sum((-1, -2))


def room_mask(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[1::2, 1::2] = True
    return mask


# ----------------------------------------------------------------------------- maze structure


@pytest.mark.parametrize("height,width", SIZES)
def test_layout(height: int, width: int) -> None:
    walls = _mazes(height, width)
    assert walls.shape == (N_KEYS, height, width) and walls.dtype == bool
    assert walls[:, [0, -1], :].all() and walls[:, :, [0, -1]].all()  # outer ring
    assert not walls[:, 1::2, 1::2].any()  # every room is open
    assert walls[:, ::2, ::2].all()  # lattice corners never open
    # Only walls between two rooms can be open besides the rooms themselves.
    carvable = between_room_walls(height, width) | room_mask(height, width)
    assert not (~walls & ~carvable).any()


@pytest.mark.parametrize("height,width", SIZES)
def test_perfect_maze_is_spanning_tree(height: int, width: int) -> None:
    free = ~_mazes(height, width)
    n_open = free.sum((1, 2))
    assert (open_pairs(free) == n_open - 1).all()  # a connected graph with e = v - 1 is a tree
    # No 2x2 block of open cells (it would be a cycle).
    blocks = free[:, :-1, :-1] & free[:, 1:, :-1] & free[:, :-1, 1:] & free[:, 1:, 1:]
    assert not blocks.any()
    sources = np.tile(np.array([1, 1], np.int32), (N_KEYS, 1))
    dist = np.asarray(_bfs_batched(jnp.asarray(free), jnp.asarray(sources)))
    sentinel = height * width
    for i in range(N_KEYS):
        ref = numpy_bfs(free[i], (1, 1))
        np.testing.assert_array_equal(dist[i], ref)
        assert (ref[free[i]] < sentinel).all()  # connected (independent check)
        assert (dist[i][free[i]] < sentinel).all() and (dist[i][~free[i]] == sentinel).all()


def test_depth_first_search_gives_few_dead_ends() -> None:
    """A recursive backtracker's mazes have long corridors: ~10% dead-end rooms, against ~30%
    for Kruskal/Prim-style mazes. This would catch a drift to another algorithm."""
    free = ~_mazes(19, 19)
    degree = np.zeros(free.shape, int)
    degree[:, 1:-1, 1:-1] = (
        free[:, :-2, 1:-1].astype(int) + free[:, 2:, 1:-1] + free[:, 1:-1, :-2] + free[:, 1:-1, 2:]
    )
    rooms = room_mask(19, 19)
    dead_end_share = ((degree == 1) & rooms).sum((1, 2)) / rooms.sum()
    assert dead_end_share.mean() < 0.2 and dead_end_share.max() < 0.3


@pytest.mark.parametrize("height,width", SIZES)
def test_keys_give_distinct_mazes(height: int, width: int) -> None:
    walls = _mazes(height, width)
    assert len({w.tobytes() for w in walls}) == N_KEYS


def test_smallest_maze_hits_every_spanning_tree() -> None:
    """A 2x2 room lattice has 4 spanning trees (drop one side of the square); DFS finds all."""
    # Legacy raw uint32 keys (jax.random.PRNGKey) work as well as typed keys.
    keys = jax.random.split(jax.random.PRNGKey(0), N_KEYS)
    walls = np.asarray(jax.jit(jax.vmap(lambda k: generate_maze(k, 5, 5)))(keys))
    assert walls[:, [0, -1], :].all() and walls[:, :, [0, -1]].all()
    assert not walls[:, 1::2, 1::2].any()
    assert ((~walls).sum((1, 2)) == 7).all()  # 4 rooms + 3 links
    assert len({w.tobytes() for w in walls}) == 4


def test_deterministic_and_vmap_matches_single_calls() -> None:
    keys = _keys()[:6]
    single = jax.jit(lambda k: generate_maze(k, 9, 15))  # static p = 0: skips the extra draw
    batched = _mazes(9, 15)  # vmapped, traced p = 0
    for i in range(len(keys)):
        one = np.asarray(single(keys[i]))
        np.testing.assert_array_equal(one, batched[i])
        np.testing.assert_array_equal(one, np.asarray(single(keys[i])))


@pytest.mark.parametrize("height,width", [(5, 4), (4, 5), (3, 7), (7, 3), (6, 6)])
def test_rejects_bad_sizes(height: int, width: int) -> None:
    with pytest.raises(ValueError):
        generate_maze(jax.random.key(0), height, width)


# ------------------------------------------------------------------------ extra connections


@pytest.mark.parametrize("height,width", [(19, 19), (9, 15)])
def test_full_extra_connections_open_every_room_wall(height: int, width: int) -> None:
    free = ~_mazes(height, width, 1.0)
    expected = room_mask(height, width) | between_room_walls(height, width)
    assert (free == expected).all()
    assert (open_pairs(free) > free.sum((1, 2)) - 1).all()  # cycles


def test_partial_extra_connections_only_add_openings() -> None:
    prob = 0.3
    perfect, loopy = ~_mazes(19, 19), ~_mazes(19, 19, prob)
    assert (loopy | ~perfect).all()  # same key: the perfect maze plus extra openings
    added = loopy & ~perfect
    assert not (added & ~between_room_walls(19, 19)).any()
    closed = between_room_walls(19, 19) & ~perfect  # walls the DFS left standing
    share = added.sum() / closed.sum()
    assert abs(share - prob) < 0.05  # ~4000 Bernoulli trials: 5 sigma is ~0.035


def test_extra_connection_prob_per_maze_under_vmap() -> None:
    """A traced, per-maze probability (e.g. from batched env params) also works."""
    probs = np.tile(np.array([0.0, 1.0], np.float32), N_KEYS // 2)
    free = ~np.asarray(_maze_fn(9, 15)(_keys(), jnp.asarray(probs)))
    is_tree = open_pairs(free) == free.sum((1, 2)) - 1
    np.testing.assert_array_equal(is_tree, probs == 0)
    np.testing.assert_array_equal(free[probs == 0], ~_mazes(9, 15)[probs == 0])
    np.testing.assert_array_equal(free[probs == 1], ~_mazes(9, 15, 1.0)[probs == 1])


# ------------------------------------------------------------------------------- trip count


_STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # UP, DOWN, LEFT, RIGHT


def numpy_backtracker(u: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, int]:
    """Textbook recursive backtracker with an explicit stack, run to the end (stack empty),
    consuming the same random numbers as the JAX version. Returns the parent directions and
    the 1-based trip of the last push (how many fixed trips the JAX loop needs)."""
    u = u.astype(np.float32)
    n = rows * cols
    start = min(int(u[-1] * np.float32(n)), n - 1)
    dirs = np.full((rows, cols), -1, np.int64)
    visited = np.zeros((rows, cols), bool)
    stack = [divmod(start, cols)]
    visited[stack[0]] = True
    trip = last_push = 0
    while stack:
        r, c = stack[-1]
        options = [
            d
            for d, (dr, dc) in enumerate(_STEPS)
            if 0 <= r + dr < rows and 0 <= c + dc < cols and not visited[r + dr, c + dc]
        ]
        if options:
            assert trip < len(u) - 1, "ran out of trips: the fixed trip count is too small"
            d = options[min(int(u[trip] * np.float32(len(options))), len(options) - 1)]
            nr, nc = r + _STEPS[d][0], c + _STEPS[d][1]
            visited[nr, nc] = True
            dirs[nr, nc] = d ^ 1  # direction back to the parent
            stack.append((nr, nc))
            last_push = trip + 1
        else:
            stack.pop()
        trip += 1
    assert visited.all()
    return dirs, last_push


@pytest.mark.parametrize("rows,cols", [(2, 2), (2, 3), (3, 3), (4, 7), (9, 9)])
def test_dfs_matches_reference_and_trip_count_is_tight(rows: int, cols: int) -> None:
    """The fixed-trip JAX loop equals an explicit-stack backtracker on the same random numbers,
    every run finishes within dfs_num_iterations trips, and some run needs all of them."""
    trips = dfs_num_iterations(rows, cols)
    assert trips == 2 * rows * cols - 5
    n_runs = 1024
    u = np.random.default_rng(rows * 100 + cols).random((n_runs, trips + 1), np.float32)
    got = np.asarray(jax.jit(jax.vmap(lambda v: _dfs_parent_dirs(v, rows, cols)))(jnp.asarray(u)))
    needed = []
    for i in range(n_runs):
        ref, last_push = numpy_backtracker(u[i], rows, cols)
        np.testing.assert_array_equal(np.where(got[i] == _ROOT, -1, got[i]), ref)
        needed.append(last_push)
    assert max(needed) == trips


# ------------------------------------------------------------------------------ bfs_distance

_bfs_jit = jax.jit(bfs_distance, static_argnames="max_iters")
_SHAPES = [(1, 1), (3, 5), (6, 6), (4, 9), (2, 34)]


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_bfs_matches_numpy_on_random_grids(data: st.DataObject) -> None:
    height, width = data.draw(st.sampled_from(_SHAPES))
    cells = data.draw(st.lists(st.booleans(), min_size=height * width, max_size=height * width))
    free = np.array(cells, bool).reshape(height, width)
    y = data.draw(st.integers(0, height - 1))
    x = data.draw(st.integers(0, width - 1))
    dist = np.asarray(_bfs_jit(jnp.asarray(free), jnp.array([y, x], jnp.int32)))
    assert dist.dtype == np.int32
    np.testing.assert_array_equal(dist, numpy_bfs(free, (y, x)))


@pytest.mark.parametrize("height,width", [(7, 70), (40, 33)])
def test_bfs_multiword_rows_and_vmap(height: int, width: int) -> None:
    """Rows wider than 32 span several packed words; vmap over grids and sources."""
    rng = np.random.default_rng(height * 1000 + width)
    free = rng.random((6, height, width)) < 0.7
    sources = np.stack([rng.integers(0, height, 6), rng.integers(0, width, 6)], -1).astype(np.int32)
    free[np.arange(6), sources[:, 0], sources[:, 1]] = True
    dist = np.asarray(_bfs_batched(jnp.asarray(free), jnp.asarray(sources)))
    for i in range(6):
        ref = numpy_bfs(free[i], tuple(sources[i]))
        np.testing.assert_array_equal(dist[i], ref)
        single = _bfs_jit(jnp.asarray(free[i]), jnp.asarray(sources[i]))
        np.testing.assert_array_equal(dist[i], np.asarray(single))


def test_bfs_max_iters_wall_source_and_off_grid() -> None:
    free = ~_mazes(11, 11)[0]
    full = numpy_bfs(free, (1, 1))
    capped = np.asarray(_bfs_jit(jnp.asarray(free), jnp.array([1, 1]), max_iters=5))
    np.testing.assert_array_equal(capped, np.where(full <= 5, full, 121))
    zero = np.asarray(_bfs_jit(jnp.asarray(free), jnp.array([1, 1]), max_iters=0))
    assert zero[1, 1] == 0 and (np.delete(zero.ravel(), 12) == 121).all()
    assert (np.asarray(_bfs_jit(jnp.asarray(free), jnp.array([0, 0]))) == 121).all()  # wall
    assert (np.asarray(_bfs_jit(jnp.asarray(free), jnp.array([11, 3]))) == 121).all()  # off grid
