"""How big a figure's runs are: ``--scale tiny|small|paper`` (:func:`get_scale`).

* ``tiny``: seconds of training (compiling dominates); the test suite runs it end to end.
* ``small``: at most about an hour per figure on 2 CPU cores, every condition, 3 seeds.
  Budgets are estimates from the main job's measured speed (16 envs x 250 steps per
  update, 1,300-2,000 env-steps/s summed over runs on a 2-core AVX2 AMD EPYC, one learner
  per run); measured since (experiments/README.md): figure4.py with scripted experts 55
  minutes (AVX2, 2026-12-02), experts.py 48 minutes (AVX-512, shared, 2026-12-05).
  figure7.py adds the evaluation of its ten checkpoints in three settings on top.
* ``paper``: the paper's schedule (appendix 7.8, the ``paper-social`` preset), for a GPU.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from sociajax.agents.ppo import PPOConfig
from sociajax.training.presets import get_preset

SCALES = ("tiny", "small", "paper")

# Episodes per run (one condition, one seed) of each figure at each scale. Small: the
# largest budget that fits the hour by the estimate in the module doc (runs x env steps /
# 1,300 env-steps/s); trained experts are learners too, about 2.5x the compute per env step.
EPISODES: dict[str, dict[str, int]] = {
    # 2 conditions x 3 seeds, one learner alone: 6 x 3,072 x 250 = 4.6M env steps.
    # Paper: 81,920 episodes at 0.5, then 1.0 (Figure 12); ours: as long at 1.0, then 1.5
    # for the other half of the budget (the curriculum's switches are fractions of it).
    "experts": {"tiny": 16, "small": 3_072, "paper": 327_680},
    # 5 conditions x 3 seeds, 1 learner + 2 scripted oracles: 15 x 1,200 x 250 = 4.5M.
    "figure4": {"tiny": 8, "small": 1_200, "paper": 1_000_000},
    # The same 15 runs with 3 learners each (2 trained experts learning at lr 1e-5).
    "figure4-trained": {"tiny": 8, "small": 480, "paper": 1_000_000},
    # 3 conditions x 3 seeds with scripted experts: 9 x 1,200 x 250 = 2.7M env steps, the
    # same runs per condition as figure4's (its solo and SociAPL conditions recur here).
    "figure5": {"tiny": 8, "small": 1_200, "paper": 1_000_000},
    # The same 9 runs with 3 learners each (the imperfect experts frozen, computing anyway).
    "figure5-trained": {"tiny": 8, "small": 800, "paper": 1_000_000},
    # 3 conditions x 3 seeds (social, mixed after the switch, solo), as figure5's; the paper
    # switches after about 500k of its 1M+ episodes.
    "figure7": {"tiny": 8, "small": 1_200, "paper": 1_000_000},
    "figure7-trained": {"tiny": 8, "small": 800, "paper": 1_000_000},
    # 2 conditions (penalty 0 and -1.5) x 3 seeds: 6 x 1,200 x 250 = 1.8M env steps.
    "figure9": {"tiny": 8, "small": 1_200, "paper": 1_000_000},
    "figure9-trained": {"tiny": 8, "small": 800, "paper": 1_000_000},
}


@dataclasses.dataclass(frozen=True)
class Scale:
    """How big one figure's runs are: PPO schedule, episode length and budget, seeds."""

    name: str
    ppo: PPOConfig
    max_steps: Optional[int]  # episode length; None: the env's (250 in Goal Cycle)
    episodes: int  # per run (condition x seed)
    num_seeds: int  # default
    novice_lr: float
    penalty: float  # the wrong-goal penalty the figure is about
    updates_per_chunk: int
    checkpoint_every: int  # chunks between checkpoints
    eval_episodes: int  # fresh episodes per seed when a script evaluates agents
    measured: bool  # whether a whole figure has been run at this scale

    @property
    def episode_steps(self) -> int:
        return 250 if self.max_steps is None else self.max_steps

    @property
    def total_env_steps(self) -> int:
        """Env steps per run: whole updates of ``ppo.num_envs`` episodes."""
        updates = max(1, -(-self.episodes // self.ppo.num_envs))
        return updates * self.ppo.num_envs * self.episode_steps

    @property
    def num_updates(self) -> int:
        return self.total_env_steps // (self.ppo.num_envs * self.episode_steps)


def get_scale(name: str, figure: str) -> Scale:
    """The :class:`Scale` ``name`` for ``figure`` (a key of :data:`EPISODES`)."""
    if name not in SCALES:
        raise ValueError(f"--scale must be one of {SCALES}, got {name!r}")
    if figure not in EPISODES:
        raise ValueError(f"figure must be one of {sorted(EPISODES)}, got {figure!r}")
    episodes = EPISODES[figure][name]
    if name == "tiny":
        # Like tests/training/training_kit.tiny: 16-step episodes, 2 envs, 2 minibatches.
        ppo = PPOConfig(num_envs=2, num_minibatches=2, minibatch_segments=2, recompute_every=1)
        return Scale(name, ppo, 16, episodes, 2, 1e-4, -1.5, 1, 2, 4, measured=True)
    if name == "small":
        # The main job's PPO schedule (social-scripted preset), tuned to learn in its budget:
        # 16 episodes per update, 8 minibatches of 32 segments, lr 3e-4, entropy 1e-3.
        ppo = dataclasses.replace(get_preset("social-scripted").ppo)
        return Scale(name, ppo, None, episodes, 3, 3e-4, -1.5, 1, 25, 64, measured=False)
    paper = get_preset("paper-social")  # appendix 7.8: 128 episodes, 20 x 512 x 16, lr 1e-4
    return Scale(
        name, paper.ppo, None, episodes, 5, paper.agents[0].lr, -1.5, paper.updates_per_chunk,
        paper.checkpoint_every, 128, measured=False,
    )
