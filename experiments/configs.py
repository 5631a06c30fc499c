"""A figure's training config: its world, agents and conditions at a scale, and the expert
seats beside the novice (scripted oracles, or trained experts of an experts.py run)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Optional, Sequence

from scales import Scale

EXPERT_LR = 1e-5  # paper 7.8: trained experts keep learning at this rate in SociAPL runs


def has_penalty(env_id: str) -> bool:
    """Whether the world ``env_id`` charges a wrong-goal penalty (Goal Cycle does; Four Rooms
    and Maze have one goal and none)."""
    import sociajax

    return hasattr(sociajax.make(env_id)[1], "penalty")


def figure_config(scale: Scale, agents: Sequence[Any], conditions: Sequence[str], seed: int, num_seeds: int,
                  run_dir: Path, progress: bool, keep_checkpoints: int = 2, env_id: str = "GoalCycle-3") -> Any:
    """A figure's TrainConfig in ``env_id`` (default Goal Cycle 3) at ``scale``: the world's
    shape at that scale (:meth:`Scale.world`), its agents, its conditions as data (one
    compiled program), the scale's schedule and penalty (worlds with one); the last
    ``keep_checkpoints`` checkpoints kept for later scripts."""
    from sociajax.training.config import EnvConfig, TrainConfig

    penalty = repr(scale.penalty) if has_penalty(env_id) else None
    world = scale.world(env_id)
    env = EnvConfig(
        env_id, size=world.get("size"), n_walls=world.get("n_walls"), action_set=scale.action_set,
        max_steps=world.get("max_steps", scale.max_steps), penalty=penalty,
    )
    return TrainConfig(
        env=env,
        agents=tuple(agents),
        ppo=dataclasses.replace(scale.ppo, lr=scale.novice_lr),
        conditions=tuple(conditions),
        total_env_steps=scale.total_env_steps,
        seed=seed,
        num_seeds=num_seeds,
        updates_per_chunk=scale.updates_per_chunk,
        checkpoint_every=scale.checkpoint_every,
        keep_checkpoints=keep_checkpoints,
        run_dir=str(run_dir),
        baseline_episodes=0,
        progress=progress,
    )


def expert_agents(experts: str, experts_dir: Optional[Path], num_seeds: int,
                  scale: Optional[Scale] = None, seed: Optional[int] = None) -> tuple[Any, Any]:
    """The two expert seats: scripted oracles, or trained experts from ``experts_dir``
    (:func:`trained_experts`); a folder without ``trained``, or the reverse, is refused."""
    from sociajax.training.config import AgentConfig

    if experts == "scripted":
        if experts_dir is not None:
            raise ValueError("--experts-dir is only for --experts trained")
        return (AgentConfig(role="scripted", policy="oracle"),) * 2
    if experts == "trained":
        if experts_dir is None:
            raise ValueError("--experts trained needs --experts-dir (a run folder of experiments/experts.py)")
        return trained_experts(experts_dir, num_seeds, scale=scale, seed=seed)
    raise ValueError(f"--experts must be 'scripted' or 'trained', got {experts!r}")


def experts_summary(experts: str, experts_dir: Optional[Path]) -> dict[str, Any]:
    """summary.json's record of the experts beside the novice: kind, folder, learning rate."""
    return {"experts": experts, "experts_dir": str(experts_dir) if experts_dir else None,
            "expert_lr": EXPERT_LR if experts == "trained" else None}


def trained_experts(experts_dir: Path, num_seeds: int, lr: float = EXPERT_LR,
                    scale: Optional[Scale] = None, seed: Optional[int] = None) -> tuple[Any, Any]:
    """The two expert seats' AgentConfigs loading from ``experts_dir`` (an experts.py run,
    seed-matched, its condition 0, last checkpoint): learners at ``lr`` with the auxiliary
    loss the experts trained with. Checks the folder up front so a bad one stops with its
    name, not mid-compile.

    Seed-matched means the novice of seed ``seed + i`` gets the experts of that same seed:
    index ``i`` there when both runs start at the same seed; a one-seed part of a figure
    (``--seed S --num-seeds 1``, experiments/parts.py) gets the experts' seed ``S`` wherever
    it lies in their run."""
    from sociajax.training.config import AgentConfig, TrainConfig

    config_path = experts_dir / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"--experts-dir {str(experts_dir)!r} holds no run (no config.json); run experiments/experts.py first")
    if not (experts_dir / "checkpoints").is_dir():
        raise FileNotFoundError(f"--experts-dir {str(experts_dir)!r} has no checkpoints/")
    source = TrainConfig.from_dict(json.loads(config_path.read_text()), source=str(config_path))
    if source.num_seeds < num_seeds:
        raise ValueError(
            f"--num-seeds={num_seeds}: experts are seed-matched, but --experts-dir {str(experts_dir)!r} "
            f"has only num_seeds={source.num_seeds}"
        )
    load_seed = None  # index-matched: the novice's seed index i loads the experts' index i
    if seed is not None and seed != source.seed:
        theirs = range(source.seed, source.seed + source.num_seeds)
        if num_seeds != 1 or seed not in theirs:
            raise ValueError(
                f"--seed={seed}: experts are seed-matched, and --experts-dir {str(experts_dir)!r} trained seeds "
                f"{theirs.start}-{theirs.stop - 1}; run from --seed {source.seed}, or one seed of theirs at a time "
                "(--num-seeds 1)"
            )
        load_seed = seed - source.seed
    if scale is not None:  # experts of another world (size, walls, actions) would not fit this figure's
        world = scale.world(source.env.env_id)
        theirs = (source.env.size, source.env.n_walls, source.env.action_set)
        ours = (world.get("size"), world.get("n_walls"), scale.action_set)
        if theirs != ours:
            raise ValueError(
                f"--experts-dir {str(experts_dir)!r} trained in a world of (size, n_walls, action_set) {theirs}, "
                f"--scale {scale.name} is {ours}; train experts at this scale (experts.py --scale {scale.name})"
            )
    learners = [i for i, a in enumerate(source.agents) if a.role == "learner"]
    if not learners:
        raise ValueError(f"--experts-dir {str(experts_dir)!r} has no learner to load (roles {[a.role for a in source.agents]})")
    seats = (learners[0], learners[1] if len(learners) > 1 else learners[0])
    return tuple(
        AgentConfig(
            role="learner", lr=lr, aux=source.agents[k].aux, aux_target=source.agents[k].aux_target,
            load_from=str(experts_dir), load_agent=k, load_seed=load_seed,
        )
        for k in seats
    )
