"""Throughput of peer gridworld libraries on FourRooms, measured the way we measure sociajax.

    python -m benchmarks.peers [--num-envs 64 1024] [--num-steps 100] [--peers xminigrid navix minigrid]

Peers: XLand-MiniGrid (``xminigrid``) and NAVIX (``navix``) in JAX, and Farama MiniGrid (NumPy).
Install them with ``pip install -r benchmarks/requirements-peers.txt``; a peer that cannot be
imported is reported by :func:`available_peers` with the reason instead of failing.

Fairness rules shared with ``benchmarks/env_throughput.py``:

* random actions drawn inside the rollout; auto-reset by the library's own mechanism;
* JAX peers: one ``jax.jit`` of ``reset`` + ``lax.scan`` over a ``jax.vmap``-ped step; every
  observation is summed into a ``uint32`` checksum that the function returns, so XLA cannot
  drop the rendering; compile time (``.lower().compile()``) is reported apart, then one warm-up
  run and the best of ``repeats`` timed runs (``time.perf_counter`` + ``block_until_ready``);
* RGB egocentric observations of a 7x7 view at 3 px per tile (21x21x3 uint8) like ours; where a
  library renders at another tile size its tile/sprite cache is rebuilt at 3 px for the duration
  of the measurement (and restored afterwards), and ``notes`` says exactly how.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.metadata
import time
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

TILE_SIZE = 3  # px per tile in our observations
VIEW_SIZE = 7  # tiles per side of the egocentric view
MAX_STEPS = 100  # FourRooms episode limit, the same in all three peers
NUMPY_STEP_BUDGET = 20_000  # total env steps timed for the sequential NumPy peer

# peer name -> modules that must import for its benchmark to run
_PEER_MODULES: dict[str, tuple[str, ...]] = {
    "xminigrid": ("xminigrid", "xminigrid.wrappers"),
    "navix": ("navix",),
    "minigrid": ("gymnasium", "minigrid", "minigrid.wrappers"),
}
_PEER_DISTRIBUTIONS = {"xminigrid": "xminigrid", "navix": "navix", "minigrid": "minigrid"}


def available_peers() -> dict[str, str | None]:
    """Peer name -> None if its modules import, else why not (so callers can skip it)."""
    status: dict[str, str | None] = {}
    for name, modules in _PEER_MODULES.items():
        try:
            for module in modules:
                importlib.import_module(module)
            status[name] = None
        except Exception as error:  # noqa: BLE001 - a broken install can raise more than ImportError
            status[name] = f"{type(error).__name__}: {error}"
    return status


def _version(peer: str) -> str:
    try:
        return importlib.metadata.version(_PEER_DISTRIBUTIONS[peer])
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _require(peer: str) -> None:
    """Raise ImportError with the reason when ``peer`` cannot be used."""
    reason = available_peers()[peer]
    if reason is not None:
        raise ImportError(f"peer {peer!r} unavailable: {reason}")


def _record(peer: str, env_id: str, num_envs: int, num_steps: int, compile_s: float, run_s: float,
            timed_steps: int, obs_shape: tuple[int, ...], notes: str) -> dict[str, Any]:
    steps_per_s = timed_steps / run_s
    return {
        "peer": peer,
        "version": _version(peer),
        "env": env_id,
        "num_envs": num_envs,
        "num_steps": num_steps,
        "n_agents": 1,
        "compile_s": compile_s,
        "run_s": run_s,
        "timed_agent_steps": timed_steps,
        "env_steps_per_s": steps_per_s,
        "agent_steps_per_s": steps_per_s,  # single-agent peers: one agent-step per env-step
        "obs_shape": [int(d) for d in obs_shape],
        "notes": notes,
    }


# --------------------------------------------------------------------------- JAX harness


def _jax_rollout(reset: Callable[[jax.Array], Any], step: Callable[[Any, jax.Array], Any],
                 num_actions: int, num_envs: int, num_steps: int) -> Callable[[jax.Array], jax.Array]:
    """reset + scan of a vmapped step; returns a checksum of every observation it produced.

    ``reset(key)`` and ``step(timestep, action)`` act on one env and return a timestep with an
    ``observation`` field; the library's step must auto-reset.
    """
    batched_reset = jax.vmap(reset)
    batched_step = jax.vmap(step)

    def rollout(key: jax.Array) -> jax.Array:
        key_reset, key_steps = jax.random.split(key)
        timestep = batched_reset(jax.random.split(key_reset, num_envs))
        checksum = timestep.observation.astype(jnp.uint32).sum()

        def body(carry: tuple[Any, jax.Array], key: jax.Array) -> tuple[tuple[Any, jax.Array], None]:
            timestep, checksum = carry
            actions = jax.random.randint(key, (num_envs,), 0, num_actions)
            timestep = batched_step(timestep, actions)
            return (timestep, checksum + timestep.observation.astype(jnp.uint32).sum()), None

        (_, checksum), _ = jax.lax.scan(body, (timestep, checksum), jax.random.split(key_steps, num_steps))
        return checksum

    return rollout


def _time_jax(rollout: Callable[[jax.Array], jax.Array], seed: int, repeats: int) -> tuple[float, float]:
    """(compile s, best run s): compile apart, one warm-up run, then the best of ``repeats``."""
    key = jax.random.PRNGKey(seed)
    start = time.perf_counter()
    compiled = jax.jit(rollout).lower(key).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(key))  # warm-up: first-call allocations
    best = float("inf")
    for repeat in range(max(1, repeats)):
        start = time.perf_counter()
        jax.block_until_ready(compiled(jax.random.fold_in(key, repeat + 1)))
        best = min(best, time.perf_counter() - start)
    return compile_s, best


def _obs_shape(reset: Callable[[jax.Array], Any]) -> tuple[int, ...]:
    """Shape of one env's observation, from tracing its reset (no compute)."""
    return tuple(jax.eval_shape(reset, jax.random.PRNGKey(0)).observation.shape)


# --------------------------------------------------------------------------- XLand-MiniGrid


@functools.lru_cache(maxsize=None)
def _xminigrid_tile_caches(tile_size: int) -> tuple[np.ndarray, np.ndarray]:
    """xminigrid's (tile, tile-with-agent) caches rendered at ``tile_size`` by its own builder."""
    from xminigrid.core.constants import TILES_REGISTRY
    from xminigrid.experimental import img_obs

    cache, agent_cache = img_obs.build_cache(np.asarray(TILES_REGISTRY), tile_size=tile_size)
    return (cache.reshape(-1, tile_size, tile_size, 3), agent_cache.reshape(-1, tile_size, tile_size, 3))


@contextlib.contextmanager
def _xminigrid_tile_size(tile_size: int) -> Iterator[None]:
    """Point xminigrid's RGB wrapper at caches of ``tile_size`` px, restoring them on exit.

    ``RGBImgObservationWrapper`` reads the module globals TILE_SIZE, TILE_CACHE and
    TILE_W_AGENT_CACHE of ``xminigrid.experimental.img_obs`` when it is traced, and the module
    only ships a 32 px cache; so the globals are swapped while we trace and run.
    """
    from xminigrid.experimental import img_obs

    saved = (img_obs.TILE_SIZE, img_obs.TILE_CACHE, img_obs.TILE_W_AGENT_CACHE)
    try:
        if tile_size != img_obs.TILE_SIZE:
            cache, agent_cache = _xminigrid_tile_caches(tile_size)
            img_obs.TILE_SIZE = tile_size
            img_obs.TILE_CACHE = jnp.asarray(cache)
            img_obs.TILE_W_AGENT_CACHE = jnp.asarray(agent_cache)
        yield
    finally:
        img_obs.TILE_SIZE, img_obs.TILE_CACHE, img_obs.TILE_W_AGENT_CACHE = saved


def bench_xminigrid_fourrooms_rgb(num_envs: int, num_steps: int, seed: int = 0, *,
                                  tile_size: int = TILE_SIZE, repeats: int = 2) -> dict[str, Any]:
    """XLand-MiniGrid "MiniGrid-FourRooms", RGB 7x7 view at ``tile_size`` px, gym-style auto-reset.

    Wrapper order follows xminigrid's own benchmark script: GymAutoResetWrapper inside,
    RGBImgObservationWrapper outside (so each step renders once, after any reset).
    Note: importing ``xminigrid.experimental.img_obs`` the first time on a machine renders its
    32 px cache into ``~/.xland_minigrid`` (about 20 s, once).
    """
    _require("xminigrid")
    import xminigrid
    from xminigrid.experimental.img_obs import RGBImgObservationWrapper
    from xminigrid.wrappers import GymAutoResetWrapper

    env_id = "MiniGrid-FourRooms"
    base_env, params = xminigrid.make(env_id)
    params = params.replace(view_size=VIEW_SIZE, max_steps=MAX_STEPS)
    env = RGBImgObservationWrapper(GymAutoResetWrapper(base_env))
    num_actions = env.num_actions(params)

    def reset(key: jax.Array) -> Any:
        return env.reset(params, key)

    def step(timestep: Any, action: jax.Array) -> Any:
        return env.step(params, timestep, action)

    with _xminigrid_tile_size(tile_size):
        obs_shape = _obs_shape(reset)
        compile_s, run_s = _time_jax(_jax_rollout(reset, step, num_actions, num_envs, num_steps), seed, repeats)
    notes = (
        f"xminigrid.make('{env_id}'), params.view_size={VIEW_SIZE}, max_steps={MAX_STEPS}; "
        "RGBImgObservationWrapper(GymAutoResetWrapper(env)) as in xminigrid's benchmark script; "
        f"tile size {tile_size} px: xminigrid.experimental.img_obs.TILE_SIZE/TILE_CACHE/TILE_W_AGENT_CACHE "
        f"replaced, while tracing and running, by img_obs.build_cache(TILES_REGISTRY, tile_size={tile_size}) "
        "(its own renderer, 3x supersampled) reshaped to (-1, t, t, 3), then restored; "
        "xminigrid's MiniGrid envs use a transparent field of view (no occlusion behind walls), "
        f"{num_actions} actions"
    )
    return _record("xminigrid", env_id, num_envs, num_steps, compile_s, run_s,
                   num_envs * num_steps, obs_shape, notes)


# --------------------------------------------------------------------------- NAVIX


@contextlib.contextmanager
def _navix_tile_size(tile_size: int) -> Iterator[None]:
    """Re-render NAVIX sprites at ``tile_size`` px, restoring the originals on exit.

    NAVIX fixes its tile size (8 px in 0.7.x) at import: ``navix.rendering.registry.TILE_SIZE``
    is copied by ``from ... import`` into four other modules, the sprites are resized to it once
    into the dict ``SPRITES_REGISTRY`` (shared by reference with entities/states/the background
    renderer), and ``flatten_patches`` binds it as a default argument. All of these are swapped.
    """
    import navix.environments.environment as nx_environment
    import navix.grid as nx_grid
    import navix.observations as nx_observations
    import navix.rendering.cache as nx_cache
    import navix.rendering.registry as nx_registry

    modules = (nx_registry, nx_cache, nx_observations, nx_grid, nx_environment)
    saved_sizes = [m.TILE_SIZE for m in modules]
    saved_sprites = dict(nx_registry.SPRITES_REGISTRY)
    saved_defaults = nx_cache.flatten_patches.__defaults__
    try:
        if tile_size != nx_registry.TILE_SIZE:
            for module in modules:
                module.TILE_SIZE = tile_size
            sprites = nx_registry.SpritesRegistry().registry  # load_sprite reads registry.TILE_SIZE
            nx_registry.SPRITES_REGISTRY.clear()
            nx_registry.SPRITES_REGISTRY.update(sprites)
            nx_cache.flatten_patches.__defaults__ = ((tile_size, tile_size),)
        yield
    finally:
        for module, size in zip(modules, saved_sizes):
            module.TILE_SIZE = size
        nx_registry.SPRITES_REGISTRY.clear()
        nx_registry.SPRITES_REGISTRY.update(saved_sprites)
        nx_cache.flatten_patches.__defaults__ = saved_defaults


def bench_navix_fourrooms(num_envs: int, num_steps: int, seed: int = 0, *,
                          tile_size: int | None = TILE_SIZE, repeats: int = 2) -> dict[str, Any]:
    """NAVIX "Navix-FourRooms-v0" with ``observations.rgb_first_person`` (radius 3: a 7x7 view).

    ``tile_size=None`` keeps NAVIX's native sprite size. NAVIX auto-resets inside ``env.step``
    (dm_env style: the step after a terminal one is a reset).
    """
    _require("navix")
    import navix as nx
    import navix.rendering.registry as nx_registry

    env_id = "Navix-FourRooms-v0"
    native = int(nx_registry.TILE_SIZE)
    size = native if tile_size is None else tile_size
    with _navix_tile_size(size):
        env = nx.make(env_id, max_steps=MAX_STEPS, observation_fn=nx.observations.rgb_first_person)
        num_actions = len(env.action_set)
        obs_shape = _obs_shape(env.reset)
        compile_s, run_s = _time_jax(_jax_rollout(env.reset, env.step, num_actions, num_envs, num_steps),
                                     seed, repeats)
    how = (
        f"native {native} px sprites" if size == native else
        f"sprites re-rendered at {size} px (native {native}): navix.rendering.registry.TILE_SIZE and its copies "
        "in rendering.cache/observations/grid/environments.environment set, SPRITES_REGISTRY refilled in place "
        "from SpritesRegistry() (its PNGs cubic-resized), rendering.cache.flatten_patches default patch size "
        "set; all restored afterwards"
    )
    notes = (
        f"nx.make('{env_id}', max_steps={MAX_STEPS}, observation_fn=nx.observations.rgb_first_person), "
        f"view radius {nx.observations.RADIUS}; {how}; auto-reset built into env.step (dm_env style; under vmap "
        "its lax.cond runs both the reset and the step branch); MiniGrid-like view cone and 0.7 opacity; "
        f"each state carries a full-grid RGB patch cache; {num_actions} actions"
    )
    return _record("navix", env_id, num_envs, num_steps, compile_s, run_s,
                   num_envs * num_steps, obs_shape, notes)


# --------------------------------------------------------------------------- MiniGrid (NumPy)


def bench_minigrid_numpy_fourrooms(num_envs: int, num_steps: int, seed: int = 0, *,
                                   max_total_steps: int = NUMPY_STEP_BUDGET) -> dict[str, Any]:
    """Farama MiniGrid "MiniGrid-FourRooms-v0" + RGBImgPartialObsWrapper(tile_size=3), stepped in a loop.

    The envs are stepped one after another in Python (what a NumPy vector env does on one core);
    the work is capped at about ``max_total_steps`` env steps because throughput does not depend
    on ``num_envs`` and large products would take minutes. Observations feed a checksum too.
    """
    _require("minigrid")
    import gymnasium as gym
    import minigrid  # noqa: F401 - registers the MiniGrid-* ids
    from minigrid.wrappers import RGBImgPartialObsWrapper

    env_id = "MiniGrid-FourRooms-v0"
    envs = [RGBImgPartialObsWrapper(gym.make(env_id, disable_env_checker=True), tile_size=TILE_SIZE)
            for _ in range(num_envs)]
    obs_shape = envs[0].observation_space["image"].shape
    num_actions = int(envs[0].action_space.n)
    for i, env in enumerate(envs):
        env.reset(seed=seed + i)
    steps_per_env = max(1, min(num_steps, max_total_steps // num_envs))
    rng = np.random.default_rng(seed)

    checksum = 0
    start = time.perf_counter()
    for _ in range(steps_per_env):
        actions = rng.integers(0, num_actions, size=num_envs)
        for env, action in zip(envs, actions):
            obs, _, terminated, truncated, _ = env.step(int(action))
            if terminated or truncated:
                obs, _ = env.reset()
            checksum += int(obs["image"].sum())
    run_s = time.perf_counter() - start
    for env in envs:
        env.close()

    timed = steps_per_env * num_envs
    capped = "" if steps_per_env == num_steps else f" (capped from {num_envs * num_steps} by a {max_total_steps}-step budget)"
    notes = (
        f"gym.make('{env_id}', disable_env_checker=True) + RGBImgPartialObsWrapper(tile_size={TILE_SIZE}), "
        f"{num_envs} envs stepped sequentially in one Python loop, reset on terminated/truncated; "
        f"timed {timed} env steps = {steps_per_env} per env{capped}; no compile; "
        f"agent_view_size 7, occlusion by walls; {num_actions} actions"
    )
    return _record("minigrid", env_id, num_envs, num_steps, 0.0, run_s, timed, obs_shape, notes)


# --------------------------------------------------------------------------- CLI

BENCHES: dict[str, Callable[..., dict[str, Any]]] = {
    "xminigrid": bench_xminigrid_fourrooms_rgb,
    "navix": bench_navix_fourrooms,
    "minigrid": bench_minigrid_numpy_fourrooms,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--num-steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peers", nargs="+", default=list(BENCHES), choices=list(BENCHES))
    parser.add_argument("--verbose", action="store_true", help="print each record's notes")
    args = parser.parse_args()
    if args.num_steps < 1 or any(n < 1 for n in args.num_envs):
        parser.error("--num-envs and --num-steps must be >= 1")

    available = available_peers()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}")
    print(f"{'peer':10s} {'version':8s} {'env':20s} {'envs':>6s} {'obs':>10s} "
          f"{'agent-steps/s':>14s} {'compile s':>9s} {'run s':>7s}")
    for name in args.peers:
        if available[name] is not None:
            print(f"{name:10s} unavailable: {available[name]}")
            continue
        for num_envs in args.num_envs:
            r = BENCHES[name](num_envs, args.num_steps, args.seed)
            shape = "x".join(str(d) for d in r["obs_shape"])
            print(f"{name:10s} {r['version']:8s} {r['env']:20s} {num_envs:6d} {shape:>10s} "
                  f"{r['agent_steps_per_s']:14,.0f} {r['compile_s']:9.2f} {r['run_s']:7.3f}")
            if args.verbose:
                print(f"    {r['notes']}")


if __name__ == "__main__":
    main()
