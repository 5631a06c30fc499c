"""Typed run configuration: the config classes, their validation, and conditions.

A run is fully described by one :class:`TrainConfig` (frozen dataclasses, so a config is
hashable: the trainer compiles once per config and caches by it). The CLI
(``python -m sociajax.train``) is generated from these classes by ``tyro``; every field is
``--path.to.field VALUE`` (``--ppo.num-envs 64``, ``--agents.0.lr 3e-4``). Each field says
where it is declared whether it is static, data or host-only (:mod:`sociajax.fields`); the
fields a condition may set (:data:`DATA_FIELDS`), the config a compiled program depends on
(:func:`static_config`, :func:`program_config`) and what ``--resume`` may change
(:data:`RESUMABLE_CHANGES`) are derived from that. Named configs (the paper's experiments,
the main job) are in :mod:`sociajax.training.presets`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import numbers
import typing
from typing import Any, Literal, Optional, Sequence

from sociajax import fields
from sociajax.agents.network import check_dtype, check_speed_settings
from sociajax.agents.ppo import AUX_TARGETS, OBJECTIVES, PPOConfig
from sociajax.agents.scripted import POLICIES
from sociajax.training.schedule import parse_schedule, schedule_text

Role = Literal["learner", "frozen", "scripted"]
ROLES = ("learner", "frozen", "scripted")
AuxTarget = Literal["next", "current"]
Objective = Literal["ppo", "bc"]


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """One member of the population.

    ``learner``: a CNN-LSTM trained by PPO at its own ``lr`` (paper: novice 1e-4, expert 1e-5).
    ``frozen``: a CNN-LSTM that acts but is never updated (e.g. a trained expert from
    ``load_from``; without it, a randomly initialised network: a distractor). ``scripted``:
    a scripted policy acting from the env state (``policy``, made imperfect by ``epsilon``).
    ``aux`` switches the auxiliary loss of a learner (False: the paper's vanilla PPO) and
    ``aux_target`` picks it: ``next`` predicts the next view from the current one and the
    action (PRED, the paper's SociAPL), ``current`` reconstructs the current view (REC).
    ``objective`` ``bc`` makes a learner an imitation learner: behaviour cloning of agent
    ``imitate``'s actions from that agent's own views (default: the first scripted or frozen
    agent). ``presence``: probability of taking part in an episode, a number or a schedule
    over episodes (``sociajax.training.schedule``); experts at 0 give solo training.
    All but ``role`` and ``policy`` are data (:mod:`sociajax.fields`): they may differ between
    the conditions of one compiled program. ``load_seed`` None loads seed ``i`` of the run in
    ``load_from`` into seed ``i`` of this sweep; ``load_update`` None its last checkpoint.
    """

    role: Role = "learner"
    lr: float = fields.data(1e-4, "learning rate (0: the learner never changes)")
    aux: bool = fields.data(True, "auxiliary loss on or off (off: the paper's vanilla PPO)")
    aux_target: AuxTarget = fields.data("next", "next (PRED) or current (REC) view")
    objective: Objective = fields.data("ppo", "ppo, or bc (behaviour cloning of agents.N.imitate)")
    imitate: Optional[int] = fields.data(None, "the agent an imitation learner clones")
    presence: str = fields.data("1.0", "probability of taking part in an episode: a number or a schedule")
    policy: str = "oracle"
    epsilon: float = fields.data(
        0.0, "a scripted agent's chance per step of a random move instead (an imperfect expert)"
    )
    load_from: str = fields.data("", "run folder of the agent's initial params")
    load_agent: int = fields.data(0, "agent index in that run")
    load_seed: Optional[int] = fields.data(None, "seed index in that run (None: seed-matched)")
    load_update: Optional[int] = fields.data(None, "checkpoint of that run (None: the last)")

    def __post_init__(self) -> None:
        if isinstance(self.presence, (int, float)) and not isinstance(self.presence, bool):
            object.__setattr__(self, "presence", schedule_text(self.presence))


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """How the learners' network runs. None takes the backend's default
    (``sociajax.agents.network``).

    ``chunk``: frames per chunk of the encoder and decoder (0: all at once; CPU default 128,
    GPU 0). ``lstm_unroll``: LSTM steps per loop iteration (CPU default 1, GPU 8). These two are
    speed only: the numbers do not change (to float rounding). ``dtype``: the precision of the
    network's matmuls and convolutions, "float32" or "bfloat16" (parameters, optimizer, LSTM
    carry, logits, value and losses stay float32). bfloat16 changes the numbers by its rounding
    (about 1% on the loss, see ``tests/agents/test_mixed_precision.py``); float32 stays the
    default until a GPU measurement shows bfloat16 pays.
    """

    chunk: Optional[int] = None
    lstm_unroll: Optional[int] = None
    dtype: Literal["float32", "bfloat16"] = "float32"


# Action sets a learner's policy head can cover. "paper": MiniGrid's seven actions, as the
# paper's agents had (four of them do nothing in these worlds); "move": only the three that act
# (left, right, forward), which are the env's actions 0..2, so no mapping is needed.
ACTION_SETS: dict[str, int] = {"paper": 7, "move": 3}
ActionSet = Literal["paper", "move"]

RUN_LOOPS = ("vmap", "map")
RunLoop = Literal["vmap", "map"]


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Which world; ``None`` keeps the env's default (GoalCycle: 13x13, 18 inner walls, 250
    steps, penalty -1.5; Four Rooms 17x17; Maze 19x19). The number of agents is
    ``len(TrainConfig.agents)``.

    ``size`` (the side, outer walls included) and ``n_walls`` (Goal Cycle's random inner walls)
    shape the world; ``action_set`` sizes the learners' policy head. All three are static: each
    shape compiles its own program.
    """

    env_id: str = "GoalCycle-3"
    size: Optional[int] = None  # side of the grid, outer wall included (None: the world's)
    n_walls: Optional[int] = None  # Goal Cycle's random inner walls (None: 15% of the inner cells)
    action_set: ActionSet = "paper"  # the learners' actions: paper (MiniGrid's 7) or move (left, right, forward)
    max_steps: Optional[int] = None  # episode length (None: the world's)
    # Reward for entering a wrong goal (Goal Cycle): a number or a schedule over episodes,
    # e.g. the experts' curriculum "-0.5,-1.0@81920,-1.5@163840" (sociajax.training.schedule).
    penalty: Optional[str] = fields.data(None, "reward for a wrong goal: a number or a schedule over episodes")

    def __post_init__(self) -> None:
        if isinstance(self.penalty, (int, float)) and not isinstance(self.penalty, bool):
            object.__setattr__(self, "penalty", schedule_text(self.penalty))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs (see module doc).

    One update collects ``ppo.num_envs`` whole episodes per seed (``max_steps`` steps each,
    padded to a multiple of ``ppo.segment_len`` with masked steps) and runs one PPO update per
    learner. ``total_env_steps`` is a budget of ``num_envs * max_steps`` env steps per update,
    rounded up to whole chunks of ``updates_per_chunk`` updates; an env step moves all agents
    once and is counted per seed. In Four Rooms / Maze, episodes that end early make the
    steps logged in ``metrics.csv`` fall short of the budget.
    """

    env: EnvConfig = EnvConfig()
    agents: tuple[AgentConfig, ...] = (AgentConfig(),)
    ppo: PPOConfig = PPOConfig()
    network: NetworkConfig = NetworkConfig()
    # Conditions trained side by side in one compiled program, each "NAME: FIELD=VALUE ..."
    # over data fields only (:func:`set_fields`); () trains the config as it is.
    conditions: tuple[str, ...] = fields.data(
        (), 'conditions trained side by side in one program, each "NAME: FIELD=VALUE ..." over data fields'
    )
    total_env_steps: int = fields.host(
        1_000_000, resumable=True, doc="env steps per run, rounded up to whole chunks of updates"
    )
    seed: int = fields.host(0, resumable=False, doc="first seed; seed i of every condition is seed + i")
    num_seeds: int = 1
    # Updates per compiled call (logging/checkpoints between calls). Above 1 the updates run
    # in a ``lax.scan``: right on GPUs; on CPUs XLA runs loop bodies ~4x slower, so use 1.
    updates_per_chunk: int = 10
    # How the program steps its runs: "vmap" batches them (one update of every run at once),
    # "map" runs them one after another inside the program, and a run's learners' PPO updates
    # too, unbatched, so an update skips the minibatches after PPO's KL early stop and the
    # decoders of learners whose auxiliary loss is off instead of computing and discarding
    # them. Speed only (the numbers agree to float rounding): "map"
    # trains faster in a CPU process pinned to one core (docs/benchmarks.md); "vmap" is right
    # on GPUs and for one process on several cores.
    run_loop: RunLoop = "vmap"
    checkpoint_every: int = fields.host(
        5, resumable=True, doc="chunks between checkpoints (also saved on SIGINT/SIGTERM and at the end)"
    )
    keep_checkpoints: int = fields.host(2, resumable=True, doc="checkpoints kept (the newest)")
    run_dir: str = fields.host("runs/default", resumable=False, doc="the run folder")
    tensorboard: bool = fields.host(False, resumable=True, doc="also write TensorBoard scalars (needs tensorboardX)")
    baseline_episodes: int = fields.host(
        64, resumable=True,
        doc="episodes of a random policy in each learned seat, for the plot's reference line (0: skip)",
    )
    progress: bool = fields.host(True, resumable=True, doc="progress bar on stderr")

    def __post_init__(self) -> None:
        validate(self)

    # ------------------------------------------------------------------ json
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown fields raise a ValueError naming them."""

        def build(kind: type, values: Any, path: str) -> Any:
            if not isinstance(values, dict):
                raise ValueError(f"{source}: {path} must be a mapping, got {values!r}")
            known = {f.name for f in dataclasses.fields(kind)}
            unknown = sorted(set(values) - known)
            if unknown:
                raise ValueError(f"{source}: unknown field {path}.{unknown[0]} (known: {sorted(known)})")
            return values

        data = dict(build(cls, data, "config"))
        data["env"] = EnvConfig(**build(EnvConfig, data.get("env", {}), "env"))
        data["agents"] = tuple(
            AgentConfig(**build(AgentConfig, a, f"agents.{i}")) for i, a in enumerate(data.get("agents", ()))
        )
        data["ppo"] = PPOConfig(**build(PPOConfig, data.get("ppo", {}), "ppo"))
        data["network"] = NetworkConfig(**build(NetworkConfig, data.get("network", {}), "network"))
        data["conditions"] = tuple(data.get("conditions", ()))
        return cls(**data)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _positive_int(field: str, value: Any) -> None:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{field} must be a positive integer, got {value!r}")


def _number(field: str, value: Any, low: float = -math.inf, high: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{field} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{field} must be in [{low}, {high}], got {value!r}")


def validate(config: TrainConfig) -> None:
    """Raise ValueError naming the first bad field (its CLI path) and its value."""
    from sociajax.envs.registry import make  # envs import nothing from training

    env = config.env
    if env.max_steps is not None:
        _positive_int("env.max_steps", env.max_steps)
    if env.size is not None:
        _positive_int("env.size", env.size)
    if env.n_walls is not None and (not _is_int(env.n_walls) or env.n_walls < 0):
        raise ValueError(f"env.n_walls must be a non-negative integer, got {env.n_walls!r}")
    if env.action_set not in ACTION_SETS:
        raise ValueError(f"env.action_set must be one of {tuple(ACTION_SETS)}, got {env.action_set!r}")
    if env.penalty is not None:
        parse_schedule("env.penalty", env.penalty)
    if not config.agents:
        raise ValueError("agents must list at least one agent, got ()")
    for i, agent in enumerate(config.agents):
        name = f"agents.{i}"
        if agent.role not in ROLES:
            raise ValueError(f"{name}.role must be one of {ROLES}, got {agent.role!r}")
        _number(f"{name}.lr", agent.lr, 0.0)
        _number(f"{name}.epsilon", agent.epsilon, 0.0, 1.0)
        if agent.epsilon != 0 and agent.role != "scripted":
            raise ValueError(f"{name}.epsilon applies to scripted agents only, got epsilon={agent.epsilon} for role {agent.role!r}")
        if not isinstance(agent.aux, bool):
            raise ValueError(f"{name}.aux must be a bool, got {agent.aux!r}")
        if agent.aux_target not in AUX_TARGETS:
            raise ValueError(f"{name}.aux_target must be one of {AUX_TARGETS}, got {agent.aux_target!r}")
        if agent.objective not in OBJECTIVES:
            raise ValueError(f"{name}.objective must be one of {OBJECTIVES}, got {agent.objective!r}")
        if agent.objective == "bc" and agent.role != "learner":
            raise ValueError(f"{name}.objective='bc' needs role 'learner', got role {agent.role!r}")
        if agent.imitate is not None:
            if not _is_int(agent.imitate) or not 0 <= agent.imitate < len(config.agents) or agent.imitate == i:
                raise ValueError(
                    f"{name}.imitate must be the index of another agent (0..{len(config.agents) - 1}, not {i}), "
                    f"got {agent.imitate!r}"
                )
        if agent.objective == "bc" and imitated_agent(config, i) is None:
            raise ValueError(f"{name}.objective='bc' needs another agent to imitate (set {name}.imitate)")
        parse_schedule(f"{name}.presence", agent.presence, 0.0, 1.0)
        if agent.role == "scripted" and agent.policy not in POLICIES:
            raise ValueError(f"{name}.policy must be one of {sorted(POLICIES)}, got {agent.policy!r}")
        for field in ("load_agent", "load_seed", "load_update"):
            value = getattr(agent, field)
            if value is None and field != "load_agent":
                continue
            if not _is_int(value) or value < 0:
                raise ValueError(f"{name}.{field} must be a non-negative integer, got {value!r}")
        if agent.role == "scripted" and agent.load_from:
            raise ValueError(f"{name}.load_from={agent.load_from!r} is only for learned agents, not role 'scripted'")
    check_speed_settings("network", chunk=config.network.chunk, lstm_unroll=config.network.lstm_unroll)
    check_dtype("network", config.network.dtype)
    if not any(a.role == "learner" for a in config.agents):
        raise ValueError(f"agents need at least one role 'learner', got roles {[a.role for a in config.agents]}")
    try:
        make(env.env_id, **env_overrides(config))
    except ValueError as err:
        raise ValueError(f"env: {err}") from None
    for field in ("total_env_steps", "num_seeds", "updates_per_chunk", "checkpoint_every", "keep_checkpoints"):
        _positive_int(field, getattr(config, field))
    if config.run_loop not in RUN_LOOPS:
        raise ValueError(f"run_loop must be one of {RUN_LOOPS}, got {config.run_loop!r}")
    if not _is_int(config.baseline_episodes) or config.baseline_episodes < 0:
        raise ValueError(f"baseline_episodes must be a non-negative integer, got {config.baseline_episodes!r}")
    if not _is_int(config.seed) or config.seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {config.seed!r}")
    if not isinstance(config.run_dir, str) or not config.run_dir:
        raise ValueError(f"run_dir must be a non-empty path, got {config.run_dir!r}")
    config.ppo.check_rollout(rollout_length(config), config.ppo.num_envs)
    if not isinstance(config.conditions, tuple) or not all(isinstance(c, str) for c in config.conditions):
        raise ValueError(f"conditions must be a tuple of strings 'NAME: FIELD=VALUE ...', got {config.conditions!r}")
    if config.conditions:
        condition_configs(config)  # each condition parses, is data only, and validates


# ---------------------------------------------------------------------- conditions
def _data_fields() -> dict[str, str]:
    """Every data field's CLI path (``agents.N.lr``, N an agent index) and its one-line doc,
    read from the field markers (:mod:`sociajax.fields`)."""
    out: dict[str, str] = {}
    for prefix, kind in (("env", EnvConfig), ("agents.N", AgentConfig), ("ppo", PPOConfig)):
        out.update({f"{prefix}.{f.name}": f.metadata["doc"] for f in fields.of_kind(kind, "data")})
    return out


# The fields a condition or grid may set, and nothing else.
DATA_FIELDS: dict[str, str] = _data_fields()
# What ``--resume`` may change in a run folder's config.
RESUMABLE_CHANGES: tuple[str, ...] = tuple(
    f.name for f in fields.of_kind(TrainConfig, "host") if f.metadata["resumable"]
)


def is_data_field(path: str) -> bool:
    """Whether ``path`` (e.g. ``agents.0.lr``) is a data field."""
    pattern = ".".join("N" if part.isdigit() else part for part in path.split("."))
    return pattern in DATA_FIELDS


# ---------------------------------------------------------------------- parsing
def _field_type(kind: type, name: str) -> Any:
    hints = typing.get_type_hints(kind)
    if name not in hints:
        raise KeyError(name)
    return hints[name]


def _parse_value(path: str, kind: Any, text: str) -> Any:
    """``text`` as a value of type ``kind`` (int, float, bool, str, Literal, Optional)."""
    origin = typing.get_origin(kind)
    if origin is typing.Union:
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if text.lower() == "none":
            return None
        return _parse_value(path, options[0], text)
    if origin is typing.Literal:
        choices = typing.get_args(kind)
        if text not in choices:
            raise ValueError(f"{path} must be one of {choices}, got {text!r}")
        return text
    if kind is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"{path} must be true or false, got {text!r}")
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise ValueError(f"{path} must be a {kind.__name__}, got {text!r}") from None
    return text


def set_field(config: TrainConfig, path: str, text: str) -> TrainConfig:
    """``config`` with the field at ``path`` (``env.penalty``, ``agents.0.lr``, ``ppo.gamma``;
    dashes read as underscores) set from ``text``; raises ValueError naming the path if it is
    unknown or not a data field."""
    return set_fields(config, ((path, text),))


def set_fields(config: TrainConfig, assignments: Sequence[tuple[str, str]]) -> TrainConfig:
    """``config`` with every ``(path, text)`` of ``assignments`` set (see :func:`set_field`),
    validated once, at the end: checks that tie fields together (``objective=bc`` needs an
    agent to imitate) see the whole condition, whatever order its fields come in."""
    env, ppo, agents = config.env, config.ppo, list(config.agents)
    for path, text in assignments:
        path = path.strip().replace("-", "_")
        parts = path.split(".")
        if not is_data_field(path):
            known = ", ".join(DATA_FIELDS)
            raise ValueError(
                f"{path} is not a data field: it sets the compiled program (shapes or code paths), "
                f"or does not exist, so it cannot differ between conditions of one program; data fields: {known}"
            )
        if parts[0] == "env":
            value = _parse_value(path, _field_type(EnvConfig, parts[1]), text)
            env = dataclasses.replace(env, **{parts[1]: value})
        elif parts[0] == "ppo":
            value = _parse_value(path, _field_type(PPOConfig, parts[1]), text)
            ppo = dataclasses.replace(ppo, **{parts[1]: value})
        else:
            index, name = int(parts[1]), parts[2]
            if not 0 <= index < len(agents):
                raise ValueError(f"{path}: agent index {index} out of range (the config has {len(agents)} agents)")
            value = _parse_value(path, _field_type(AgentConfig, name), text)
            agents[index] = dataclasses.replace(agents[index], **{name: value})
    return dataclasses.replace(config, env=env, ppo=ppo, agents=tuple(agents))


def parse_condition(spec: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``"NAME: FIELD=VALUE FIELD=VALUE"`` -> (name, ((field, value), ...)); without a name,
    the assignments themselves name the condition."""
    name, sep, body = spec.partition(":")
    if not sep or "=" in name:
        name, body = "", spec
    assignments = []
    for item in body.split():
        field, eq, value = item.partition("=")
        if not eq or not field or not value:
            raise ValueError(f"condition {spec!r}: {item!r} is not FIELD=VALUE")
        assignments.append((field, value))
    name = name.strip() or " ".join(f"{f}={v}" for f, v in assignments) or "base"
    return name, tuple(assignments)


def grid_conditions(grids: Sequence[str]) -> tuple[str, ...]:
    """Conditions of the product of grids ``"FIELD=V1,V2"`` (``|`` separates values that
    themselves hold commas, such as schedules: ``"env.penalty=-0.5,-1.0@81920|-1.5"``)."""
    axes = []
    for grid in grids:
        field, eq, values = grid.partition("=")
        if not eq or not field.strip() or not values:
            raise ValueError(f"--grid {grid!r} is not FIELD=V1,V2,...")
        options = values.split("|") if "|" in values else values.split(",")
        if any(not o.strip() for o in options):
            raise ValueError(f"--grid {grid!r} has an empty value")
        axes.append([(field.strip(), o.strip()) for o in options])
    return tuple(" ".join(f"{f}={v}" for f, v in combo) for combo in itertools.product(*axes))


def condition_configs(config: TrainConfig) -> list[tuple[str, TrainConfig]]:
    """(name, full config) per condition; ``[("base", config)]`` without conditions. Each
    condition's config is validated; names must be unique."""
    if not config.conditions:
        return [("base", config)]
    base = dataclasses.replace(config, conditions=())
    out: list[tuple[str, TrainConfig]] = []
    for spec in config.conditions:
        name, assignments = parse_condition(spec)
        try:
            condition = set_fields(base, assignments)
        except ValueError as err:
            raise ValueError(f"conditions: {name!r}: {err}") from None
        out.append((name, condition))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"conditions: names must be unique, got {names}")
    return out


def static_config(config: TrainConfig) -> TrainConfig:
    """``config`` with every data field at its default and no conditions: what the compiled
    program depends on. Configs with equal static configs share one program.

    One static choice follows from the data: a program where some condition clones another
    agent (``objective bc``) does not reuse the rollout's values and carries in PPO's first
    recompute (``PPOConfig.reuse_rollout``): that learner's rollout holds another agent's
    views, which its own acting never saw."""
    clones = any(agent.objective == "bc" for _, c in condition_configs(config) for agent in c.agents)
    ppo = fields.with_defaults(config.ppo, "data")
    return dataclasses.replace(
        config,
        **{f.name: f.default for f in fields.of_kind(TrainConfig, "data")},
        env=fields.with_defaults(config.env, "data"),
        agents=tuple(fields.with_defaults(agent, "data") for agent in config.agents),
        ppo=dataclasses.replace(ppo, reuse_rollout=ppo.reuse_rollout and not clones),
    )


def condition_static_configs(config: TrainConfig) -> dict[str, TrainConfig]:
    """Each condition's static config inside ``config``'s program: the program-wide choice
    (``ppo.reuse_rollout``, see :func:`static_config`) is the whole config's, so conditions
    are one program exactly when these are all equal."""
    reuse = static_config(config).ppo.reuse_rollout
    out = {}
    for name, condition in condition_configs(config):
        static = static_config(condition)
        out[name] = dataclasses.replace(static, ppo=dataclasses.replace(static.ppo, reuse_rollout=reuse))
    return out


def program_config(config: TrainConfig) -> TrainConfig:
    """:func:`static_config` with the host-only fields (run length, seed, logging, folder) at
    their defaults too: the key of a compiled program, shared by every config that builds
    it."""
    return fields.with_defaults(static_config(config), "host")


def imitated_agent(config: TrainConfig, agent: int) -> Optional[int]:
    """The agent whose views and actions an imitation learner clones: its ``imitate``, else
    the first scripted or frozen agent (None if there is none)."""
    chosen = config.agents[agent].imitate
    if chosen is not None:
        return chosen
    return next((i for i, a in enumerate(config.agents) if i != agent and a.role != "learner"), None)


def env_overrides(config: TrainConfig) -> dict[str, Any]:
    """Keyword overrides for ``sociajax.make`` (agent count from the population; a penalty
    schedule is checked at its first value, the trainer applies it per update)."""
    overrides: dict[str, Any] = {"n_agents": len(config.agents)}
    overrides.update(shape_overrides(config.env))
    if config.env.max_steps is not None:
        overrides["max_steps"] = config.env.max_steps
    if config.env.penalty is not None:
        overrides["penalty"] = parse_schedule("env.penalty", config.env.penalty)[0][1]
    return overrides


def shape_overrides(env: EnvConfig) -> dict[str, int]:
    """The world-shape keywords of ``sociajax.make`` that ``env`` sets (``size``, ``n_walls``)."""
    return {name: getattr(env, name) for name in ("size", "n_walls") if getattr(env, name) is not None}


def num_actions(env: EnvConfig) -> int:
    """Outputs of a learner's policy head under ``env.action_set``."""
    return ACTION_SETS[env.action_set]


def episode_length(config: TrainConfig) -> int:
    """The env's time limit (``env.max_steps`` or the env's default)."""
    if config.env.max_steps is not None:
        return int(config.env.max_steps)
    from sociajax.envs.registry import make

    _, params = make(config.env.env_id, n_agents=len(config.agents), **shape_overrides(config.env))
    return int(params.max_steps)


def rollout_length(config: TrainConfig) -> int:
    """Steps per rollout: one whole episode padded to a multiple of ``ppo.segment_len``."""
    length = config.ppo.segment_len
    return -(-episode_length(config) // length) * length
