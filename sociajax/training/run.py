"""The host loop of a run: compiled chunks, metrics, checkpoints, signals, resume, plot.

Between chunks the loop logs and, every ``checkpoint_every`` chunks, saves a checkpoint; a
SIGINT or SIGTERM lets the chunk in flight finish, saves, and returns, so an interrupted run
loses nothing. ``resume=True`` restores the run folder's last checkpoint, drops metric rows
written after it, and continues; since update ``u`` draws its randomness from
``fold_in(seed_key, u)``, the resumed numbers equal those of one uninterrupted run.

In a multi-process run (:mod:`sociajax.training.distributed`) every process runs this loop
over its shards of the runs; metrics are all-gathered after each chunk, process 0 alone
writes the run folder's files and the progress bar, every process takes part in
checkpoints, and a signal received by any process stops all of them after the same chunk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import jax
import numpy as np

from sociajax.training.checkpoint import Checkpointer, load_agent_params
from sociajax.training.config import RESUMABLE_CHANGES, TrainConfig
from sociajax.training.distributed import barrier, gather_chunk, is_primary
from sociajax.training.logging import MetricsCSV, TensorBoard, chunk_rows, late_returns
from sociajax.training.trainer import Trainer, make_train


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    updates: int  # updates done per seed
    env_steps: list[int]  # per seed
    wall_s: float
    compile_s: float
    interrupted: bool
    late_return: dict[str, list[float]]  # per condition, per agent: mean return over the last 10% of updates and all seeds


class StopRequest:
    """Set by SIGINT / SIGTERM while a run is in its loop."""

    def __init__(self) -> None:
        self.signal: Optional[int] = None

    def __bool__(self) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Turn SIGINT/SIGTERM into a :class:`StopRequest` (a second SIGINT interrupts at once)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum, frame):
        if request and signum == signal.SIGINT:
            raise KeyboardInterrupt
        request.signal = signum
        print(f"\nsignal {signal.Signals(signum).name}: finishing this chunk, then checkpointing", file=sys.stderr)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _check_resumable(saved: TrainConfig, config: TrainConfig) -> None:
    diffs = []
    for field in dataclasses.fields(TrainConfig):
        if field.name in RESUMABLE_CHANGES:
            continue
        if field.name == "run_dir" and Path(saved.run_dir).resolve() == Path(config.run_dir).resolve():
            continue
        if getattr(saved, field.name) != getattr(config, field.name):
            diffs.append(f"{field.name}: saved {getattr(saved, field.name)!r}, given {getattr(config, field.name)!r}")
    if diffs:
        raise ValueError(
            "--resume needs the run folder's config (only "
            + ", ".join(RESUMABLE_CHANGES)
            + " may change); differences: "
            + "; ".join(diffs)
        )


def loaded_params(trainer: Trainer) -> dict[int, tuple[Any, np.ndarray]]:
    """``{agent: (params [R, ...], use bool [R])}`` for the agents some condition loads
    (``load_from``): run ``r`` gets seed ``load_seed`` of that run, or with ``load_seed``
    None its own seed index (seed-matched), at checkpoint ``load_update`` (None: the last)."""
    from sociajax.training.config import condition_configs

    config = trainer.config
    conditions = condition_configs(config)
    cache: dict[tuple, Any] = {}
    out: dict[int, tuple[Any, np.ndarray]] = {}
    for agent in range(len(config.agents)):
        if not any(c.agents[agent].load_from for _, c in conditions):
            continue
        per_run, use = [], []
        for _, condition in conditions:
            spec = condition.agents[agent]
            for seed_index in range(config.num_seeds):
                if not spec.load_from:
                    per_run.append(None)
                    use.append(False)
                    continue
                source = (spec.load_from, spec.load_agent, seed_index if spec.load_seed is None else spec.load_seed,
                          spec.load_update)
                if source not in cache:
                    try:
                        cache[source] = load_agent_params(source[0], source[1], source[2], source[3])
                    except ValueError as err:
                        hint = " (seed-matched: set a fixed agents.N.load_seed)" if spec.load_seed is None else ""
                        raise ValueError(f"agents.{agent}.load_from={spec.load_from!r}: {err}{hint}") from None
                    try:
                        _check_same_network(trainer, cache[source])
                    except ValueError as err:
                        raise ValueError(f"agents.{agent}.load_from={spec.load_from!r}: {err}") from None
                per_run.append(cache[source])
                use.append(True)
        template = next(p for p in per_run if p is not None)
        per_run = [template if p is None else p for p in per_run]
        stacked = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *per_run)
        out[agent] = (stacked, np.asarray(use))
    return out


def _check_same_network(trainer: Trainer, params: Any) -> None:
    """Raise ValueError if loaded ``params`` do not fit this population's network (a policy
    head of another action set, most often)."""
    from sociajax.agents.network import init_params

    expected = jax.eval_shape(lambda key: init_params(trainer.population.network, key), jax.random.PRNGKey(0))
    got = dict(jax.tree_util.tree_flatten_with_path(params)[0])
    for path, leaf in jax.tree_util.tree_flatten_with_path(expected)[0]:
        if path not in got or np.shape(got[path]) != leaf.shape:
            name = jax.tree_util.keystr(path)
            found = np.shape(got[path]) if path in got else "missing"
            raise ValueError(
                f"its network does not fit this one: {name} is {found}, here {leaf.shape} "
                f"(env.action_set={trainer.config.env.action_set!r}: {trainer.population.num_actions} actions)"
            )


def _progress(trainer: Trainer, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=trainer.num_updates, initial=initial, unit="update", dynamic_ncols=True, file=sys.stderr)


def random_baseline(trainer: Trainer, run_dir: Path) -> Optional[list[float]]:
    """Mean episode return per agent when every learned agent acts at random (its 3 moves)
    beside the same scripted agents, in the first condition's world at the end of its
    schedules: the floor a learner must clear. Cached in
    ``baseline.json``; None when ``baseline_episodes`` is 0."""
    config = trainer.config
    if config.baseline_episodes == 0:
        return None
    path = run_dir / "baseline.json"
    if path.exists():
        return json.loads(path.read_text())["random_policy_return"]
    from sociajax.agents.scripted import RandomPolicy, make_policy
    from sociajax.agents.rollouts import scripted_returns

    # The world as the first condition's learners face it at the end of its schedules (its
    # penalty and the experts' presence and epsilon), which is what their late returns are
    # compared with.
    first_run = jax.tree.map(lambda x: x[0], trainer.run_data)
    policies = [
        RandomPolicy() if a.role != "scripted" else make_policy(a.policy, float(first_run.epsilon[i]))
        for i, a in enumerate(config.agents)
    ]
    params = trainer.env_params_at(first_run, trainer.num_updates * config.ppo.num_envs)
    returns = scripted_returns(
        trainer.env, params, policies, jax.random.PRNGKey(config.seed), num_envs=config.baseline_episodes
    )
    means = [float(r) for r in np.asarray(returns).mean(0)]
    path.write_text(json.dumps({"episodes": config.baseline_episodes, "random_policy_return": means}, indent=2))
    return means


def train(config: TrainConfig, resume: bool = False) -> RunResult:
    """Run (or, with ``resume``, continue) training as ``config`` says; see module doc."""
    run_dir = Path(config.run_dir)
    config_path = run_dir / "config.json"
    if resume:
        if not config_path.exists():
            raise FileNotFoundError(f"--resume: {run_dir} holds no run (no config.json)")
        saved = TrainConfig.from_dict(json.loads(config_path.read_text()), source=str(config_path))
        _check_resumable(saved, config)
    elif (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").iterdir()):
        raise FileExistsError(
            f"run_dir {str(run_dir)!r} already holds a run: pass --resume to continue it, or choose another --run-dir"
        )
    # Every process has read the folder before process 0 writes to it.
    barrier("sociajax:run-folder-checked")
    primary = is_primary()
    if primary:
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path.write_text(config.to_json())

    trainer = make_train(config)
    population = trainer.population
    roles = tuple(a.role for a in config.agents)
    seeds = trainer.run_seeds()
    run_conditions = trainer.run_conditions()
    checkpointer = Checkpointer(run_dir, keep=config.keep_checkpoints)
    latest = checkpointer.latest() if resume else None
    if latest is not None:
        state, meta = checkpointer.restore(trainer)
        done, env_steps, wall_before = int(meta["update"]), np.asarray(meta["env_steps"], np.int64), float(meta["wall_s"])
        if done % trainer.updates_per_chunk:
            raise ValueError(f"checkpoint at update {done} is not at a chunk boundary of {trainer.updates_per_chunk}")
        csv_log = MetricsCSV(run_dir / "metrics.csv", keep_through_update=done) if primary else None
    else:
        state = trainer.place(trainer.init(trainer.seed_keys(), loaded_params(trainer)))
        done, env_steps, wall_before = 0, np.zeros(trainer.num_runs, np.int64), 0.0
        csv_log = MetricsCSV(run_dir / "metrics.csv") if primary else None
    board = TensorBoard(run_dir / "tensorboard") if config.tensorboard and primary else None

    start = time.perf_counter()
    compile_start = time.perf_counter()
    chunk = trainer.compiled_chunk(state)
    compile_s = time.perf_counter() - compile_start
    bar = _progress(trainer, done, config.progress and primary)
    interrupted = False

    def save() -> None:
        meta = {"update": done, "env_steps": env_steps.tolist(), "wall_s": wall_before + time.perf_counter() - start}
        checkpointer.save(done, state, meta)

    try:
        with stop_on_signals() as stop:
            first_chunk = done // trainer.updates_per_chunk
            for index in range(first_chunk, trainer.num_chunks):
                tick = time.perf_counter()
                state, metrics = chunk(state)
                # Every run's metrics on every process, and whether any process was asked to
                # stop (a save is collective, so they must agree): one collective a chunk.
                metrics, stopping = gather_chunk(metrics, stop)
                seconds = time.perf_counter() - tick
                steps = metrics["env_steps"].astype(np.int64)  # [S, U]
                sps = float(steps.sum()) / max(seconds, 1e-9)
                rows = chunk_rows(
                    metrics, roles, population.learner_agents, done, env_steps, seeds, sps,
                    wall_before + time.perf_counter() - start, run_conditions, config.ppo.num_envs,
                )
                if csv_log is not None:
                    csv_log.append(rows)
                if board is not None:
                    board.write(rows)
                done += trainer.updates_per_chunk
                env_steps = env_steps + steps.sum(1)
                last_returns = metrics["return"][:, -1]  # [R, A]
                if bar is not None:
                    bar.update(trainer.updates_per_chunk)
                    bar.set_postfix_str(
                        f"env-steps/s {sps:,.0f} | return " + " ".join(f"{r:+.2f}" for r in _nanmean(last_returns))
                    )
                last = index == trainer.num_chunks - 1
                if last or stopping or (index + 1) % config.checkpoint_every == 0:
                    save()
                if stopping:
                    interrupted = True
                    break
    finally:
        if bar is not None:
            bar.close()
        if board is not None:
            board.close()
        checkpointer.close()

    from sociajax.viz.curves import plot_learning_curves

    if primary:
        references = {}
        baseline = random_baseline(trainer, run_dir)
        if baseline is not None:
            for agent in population.learner_agents:
                references[f"random policy as agent {agent}"] = baseline[agent]
        plot_learning_curves(run_dir / "metrics.csv", run_dir / "learning_curve.png", references=references)
    barrier("sociajax:run-finished")
    return RunResult(
        run_dir=run_dir,
        updates=done,
        env_steps=env_steps.tolist(),
        wall_s=wall_before + time.perf_counter() - start,
        compile_s=compile_s,
        interrupted=interrupted,
        late_return=late_returns(run_dir / "metrics.csv"),
    )


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Mean over runs ignoring NaN (an agent absent from a run's last update), NaN if all are."""
    count = np.sum(~np.isnan(values), 0)
    return np.where(count > 0, np.nansum(values, 0) / np.maximum(count, 1), np.nan)
