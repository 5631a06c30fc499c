"""How big a figure's runs are: ``--scale tiny|mini|small|paper`` (:func:`get_scale`).

* ``tiny``: seconds of training (compiling dominates); the test suite runs it end to end.
* ``mini``: the miniature world of the search (experiments/README.md, "Miniature search"):
  Goal Cycle at 7x7 without inner walls, 64-step episodes, 64 episodes per update in 8
  minibatches of 32 segments, lr 1e-3, entropy 1e-3, penalty -1.5, 782 updates (3.2M env
  steps) per run; the transfer worlds scaled with it (GoalCycle-4 at 7x7, Four Rooms at
  13x13, the smallest whose start room holds two agents, Maze at 9x9; all 64-step episodes). Its
  setting is the search's ``s02-7x7-longer``, the first to meet the criterion on the search's
  seeds (``measured`` False: no figure has run at it yet). Its figures start at seed 2000,
  past every seed the search and its confirmation looked at.
* ``small``: the paper's world run shorter, about an hour per figure on 2 CPU cores, every
  condition, 3 seeds (measured times in experiments/README.md).
* ``paper``: the paper's schedule (appendix 7.8, the ``paper-social`` preset), for a GPU.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from sociajax.agents.ppo import PPOConfig
from sociajax.training.presets import get_preset

SCALES = ("tiny", "mini", "small", "paper")
# The search's setting the mini scale runs (a name in experiments/search_settings.json): the
# first that met the criterion on the search's seeds.
MINI_SETTING = "s02-7x7-longer"
# The mini figures' first seed (Scale.first_seed): seeds 0-2 chose the setting and 1000-1004
# confirm it; the figures run on seeds that neither looked at.
MINI_FIRST_SEED = 2000

# Episodes per run (one condition, one seed) of each figure at each scale (mini: the search
# setting's own budget, see _mini). Small: the largest budget that fit the hour at 1,300
# env-steps/s summed; trained experts are learners too, about 2.5x the compute per env step.
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
    size: Optional[int] = None  # Goal Cycle's side (None: the env's 13)
    n_walls: Optional[int] = None  # Goal Cycle's inner walls (None: the env's 18 on 13x13)
    action_set: str = "paper"  # the learners' actions (EnvConfig.action_set)
    first_seed: int = 0  # the figures' default --seed (mini: MINI_FIRST_SEED)
    # Shapes of the other worlds (transfer, native experts): (env name, ((option, value), ...)).
    other_worlds: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()

    def world(self, env_id: str) -> dict[str, int]:
        """``sociajax.make`` overrides of ``env_id`` at this scale (size, walls, episode
        length; empty: the world's defaults). Goal Cycle worlds take the scale's own shape."""
        if env_id.startswith("GoalCycle"):
            shape = {"size": self.size, "n_walls": self.n_walls}
            if self.size is not None:
                shape["max_steps"] = self.max_steps
            return {k: v for k, v in shape.items() if v is not None}
        return dict(dict(self.other_worlds).get(env_id, ()))

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
    episodes = EPISODES[figure].get(name, 0)
    if name == "tiny":
        # Like tests/training/training_kit.tiny: 16-step episodes, 2 envs, 2 minibatches.
        ppo = PPOConfig(num_envs=2, num_minibatches=2, minibatch_segments=2, recompute_every=1)
        return Scale(name, ppo, 16, episodes, 2, 1e-4, -1.5, 1, 2, 4, measured=True)
    if name == "mini":
        return _mini(episodes)
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


def world_shape(scale: Optional[Scale], world: str) -> dict[str, int]:
    """``evaluation_setup``'s shape options of ``world`` at ``scale``; None gives none (the
    world's defaults, or a run's own shape in its own world)."""
    return {} if scale is None else scale.world(world)


def _mini(episodes: int) -> Scale:
    """The mini scale: the search's setting :data:`MINI_SETTING`, read from the settings file
    (one source for its numbers), with its budget unless ``episodes`` (> 0) says otherwise."""
    import search  # imported here: search imports this module's users

    setting = search.setting_named(MINI_SETTING)
    try:
        penalty = float(setting.penalty)
    except ValueError:
        raise ValueError(f"the mini scale needs a fixed penalty, {MINI_SETTING} has {setting.penalty!r}") from None
    ppo = PPOConfig(
        num_envs=setting.num_envs, num_minibatches=setting.num_minibatches,
        minibatch_segments=setting.minibatch_segments, recompute_every=setting.recompute_every,
        entropy_coef=setting.entropy_coef, aux_coef=setting.aux_coef,
    )
    # Transfer worlds at the same episode length; Four Rooms at 13x13, the smallest whose
    # start room holds two agents (4 spawn cells); Maze at 9x9.
    steps = setting.max_steps
    others = (("FourRooms", (("size", 13), ("max_steps", steps))), ("Maze", (("size", 9), ("max_steps", steps))))
    return Scale(
        "mini", ppo, steps, episodes or setting.updates * setting.num_envs, 3, setting.lr, penalty, 1, 20, 64,
        measured=False, size=setting.size, n_walls=setting.n_walls, action_set=setting.action_set,
        other_worlds=others, first_seed=MINI_FIRST_SEED,
    )
