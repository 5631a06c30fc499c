"""Recurrent PPO with the auxiliary next-observation loss, as in the paper's appendix.

Pure functions over typed pytrees; every number is a field of :class:`PPOConfig`, whose
defaults are the paper's values (Appendix 7.7-7.8). Everything runs inside ``jit``; a whole
update has a static number of minibatches and no data-dependent control flow (see
``PPOConfig.minibatch_loop`` for how its loop is compiled), so a population of independent
learners updates with ``jax.vmap(functools.partial(ppo_update, config=config))`` over
stacked train states. The config may also be a traced argument (its float fields are
pytree leaves, its other fields static): then changing a coefficient does not recompile,
and learners can be vmapped with configs of their own. Learning rates live in the optimizer
state (:func:`make_optimizer`, :func:`set_learning_rate`), so per-agent rates (novice 1e-4,
expert 1e-5, frozen 0) are data.

Rollout layout (:class:`Rollout`), per learner, ``T`` steps of ``B`` parallel envs::

    obs        uint8 [T+1, B, 21, 21, 3]  obs[t] seen before acting at t; obs[T] bootstraps
    actions    int32 [T, B]
    rewards    f32   [T, B]
    dones      bool  [T, B]    the episode ended at step t: obs[t+1] is a new episode's first
    starts     bool  [T+1, B]  obs[t] is an episode's first (starts[1:] == dones when the env
                               auto-resets; whole-episode rollouts set only starts[0])
    log_probs  f32   [T, B]    log pi_old(actions[t] | history) at collection time
    values     f32   [T, B]    V_old at collection time (used only by the optional value clip)
    init_carry (c, h) f32 [B, 192]: the LSTM carry before step 0 (reset inside if starts[0])
    valid      bool  [T, B] or None: steps that count in the losses (None: all). For learners
               that stop acting mid-episode (an agent done on its goal in Four Rooms / Maze).

Update schedule (:func:`ppo_update`), following the paper's Appendix 7.8:

* The rollout is cut into ``B * T / segment_len`` segments of ``segment_len`` steps. Every
  minibatch is ``minibatch_segments`` segments drawn uniformly without replacement, each
  started from its stored LSTM carry (segments cross episode boundaries; the carry resets
  inside at ``starts``).
* Stored carries, values and advantages come from a full forward unroll of the rollout from
  ``init_carry`` with the current parameters: before minibatch 0 and again before every
  ``recompute_every``-th minibatch (the paper's "hidden states and advantages re-calculated
  every 2 mini-batches"). Advantages are normalised over the whole rollout after each
  recompute (as the released code did; the paper does not say).
* KL early stop: the approximate KL of the current parameters to the rollout policy is
  measured on each minibatch before its step (``mean((r - 1) - log r)``, the low-variance
  unbiased estimator); once it exceeds ``target_kl`` that step and all later ones become
  no-ops (``jnp.where``: no data-dependent branch, so it works under ``vmap``).
* KL hard limit: if any measured minibatch KL exceeds ``hard_kl`` or is not finite, or the
  KL of the final parameters over the *whole* rollout (a fresh forward unroll, so it also
  checks the last step, which no minibatch measures) exceeds ``hard_kl``, the parameters,
  the optimizer state and the step counter are restored exactly to their values before the
  update (the paper: "all changes ... are reverted"; the released code restored nothing).

Loss (per minibatch; masked means over ``valid`` steps)::

    L = L_clip + value_coef * L_V - entropy_coef * H + aux_coef * L_aux

``L_V`` is the plain mean squared error ``mean((V - R)^2)`` (no 1/2; the paper says MSE;
``clip_value_loss=True`` gives PPO2's clipped variant with ``clip_eps`` around the rollout's
values). ``H`` is masked like the policy loss: it counts every step where the learner acted,
including an episode's last one (the released code averaged it over padding past episode
ends too). ``L_aux`` is the mean absolute error between the decoder's prediction at step t
and ``obs[t+1] / 255``, masked where ``dones[t]``: there ``obs[t+1]`` is the *next* episode's
first view (the env auto-resets), not an outcome of the action, so no target exists (the
released code used zero padding instead).

Gradient clipping: the paper does not mention any and the released code had none; we clip
the global norm at ``max_grad_norm=0.5`` (Andrychowicz et al. 2020's recommendation, which the
paper follows elsewhere) as a guard against rare huge aux/value gradients. Set it to
``math.inf`` to disable.

Discounting at time limits: a ``done`` cuts the bootstrap whether the episode ended at a
goal or at the time limit (as in the paper and the released code); the observation carries
no clock, so a time limit is part of the environment from the agent's point of view.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from typing import Any, Callable, Literal, Optional, get_args

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.training.train_state import TrainState

from sociajax.agents.network import SocialNet, init_params

Carry = tuple  # (c, h)
Metrics = dict


# ---------------------------------------------------------------------- config
_STATIC_FIELDS = (
    "num_minibatches",
    "minibatch_segments",
    "segment_len",
    "recompute_every",
    "num_envs",
    "clip_value_loss",
    "normalize_advantages",
    "minibatch_loop",
)
MinibatchLoop = Literal["auto", "unroll", "scan"]
MINIBATCH_LOOPS = get_args(MinibatchLoop)
_UNROLL_MAX_GROUPS = 4  # "auto" unrolls updates of at most this many recompute groups


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Hyperparameters of one PPO update; defaults are the paper's (Appendix 7.7-7.8).

    A frozen, hashable dataclass that is also a pytree: its float fields are leaves and its
    integer, bool and string fields (which set shapes and code paths) are static. So it works
    both as a static argument (``jit(..., static_argnames="config")`` or
    ``functools.partial``) and as a traced one, where changing a coefficient or KL limit
    needs no recompile and per-agent values can be stacked and vmapped. Construction
    validates (ValueError naming the field); tree operations rebuild instances without
    validating (they may hold tracers or axis specs).

    ``lr`` is only the *initial* learning rate put in the optimizer state; the update reads
    the rate from that state, so per-agent rates are data (see :func:`set_learning_rate`).

    ``minibatch_loop`` changes speed and compile time only (the same computation; results
    agree to float rounding): the minibatches come in groups (a recompute, then
    ``recompute_every`` gradient steps in straight-line code). "unroll" writes every group
    out; "scan" runs the whole groups in a ``lax.scan``; "auto" unrolls up to 4 groups and
    scans more. Measured on 2 CPU cores (3 agents, 2 learners): the paper's schedule (10
    groups) compiles in 9 s instead of 64 s and updates in 36-37 s instead of 42-53 s, as an
    unrolled update keeps every minibatch's buffers (6.7 GB at 20 minibatches against
    0.9 GB); the social-scripted schedule (4 groups) updates about 15% faster unrolled.
    """

    gamma: float = 0.993
    gae_lambda: float = 0.97
    clip_eps: float = 0.2
    value_coef: float = 0.1
    entropy_coef: float = 1e-5
    aux_coef: float = 3.0
    lr: float = 1e-4
    target_kl: float = 0.01  # early stop of the minibatch loop
    hard_kl: float = 0.03  # revert the whole update
    max_grad_norm: float = 0.5  # not in the paper (see module doc); math.inf disables
    adam_eps: float = 1e-8  # PyTorch's Adam default, which the paper used
    num_minibatches: int = 20
    minibatch_segments: int = 512
    segment_len: int = 16
    recompute_every: int = 2  # minibatches between recomputes of carries and advantages
    num_envs: int = 128  # B: parallel episodes per update
    clip_value_loss: bool = False  # the paper: plain MSE
    normalize_advantages: bool = True  # over the whole rollout, after each recompute
    minibatch_loop: MinibatchLoop = "auto"  # speed only; auto: scan if > 4 recompute groups

    def __post_init__(self) -> None:
        def real(name: str, low: float, high: float = math.inf, *, low_open=False, allow_inf=False) -> None:
            value = getattr(self, name)
            if isinstance(value, jax.core.Tracer):
                return
            if isinstance(value, (bool, np.bool_)):
                raise ValueError(f"PPOConfig.{name} must be a number, got {value!r}")
            try:
                values = np.asarray(value, np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"PPOConfig.{name} must be a number, got {value!r}") from None
            if np.isnan(values).any() or (np.isinf(values).any() and not allow_inf):
                raise ValueError(f"PPOConfig.{name} must be finite, got {value!r}")
            if (values < low).any() or (low_open and (values == low).any()) or (values > high).any():
                lo = "(" if low_open else "["
                raise ValueError(f"PPOConfig.{name} must be in {lo}{low}, {high}], got {value!r}")

        real("gamma", 0.0, 1.0)
        real("gae_lambda", 0.0, 1.0)
        real("clip_eps", 0.0, low_open=True)
        real("value_coef", 0.0)
        real("entropy_coef", 0.0)
        real("aux_coef", 0.0)
        real("lr", 0.0)
        real("target_kl", 0.0, low_open=True, allow_inf=True)
        real("hard_kl", 0.0, low_open=True, allow_inf=True)
        real("max_grad_norm", 0.0, low_open=True, allow_inf=True)
        real("adam_eps", 0.0, low_open=True)
        for name in ("num_minibatches", "minibatch_segments", "segment_len", "recompute_every", "num_envs"):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"PPOConfig.{name} must be a positive integer, got {value!r}")
        for name in ("clip_value_loss", "normalize_advantages"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"PPOConfig.{name} must be a bool, got {getattr(self, name)!r}")
        if self.minibatch_loop not in MINIBATCH_LOOPS:
            raise ValueError(
                f"PPOConfig.minibatch_loop must be one of {MINIBATCH_LOOPS}, got {self.minibatch_loop!r}"
            )

    def scans_minibatches(self) -> bool:
        """Whether :func:`ppo_update` runs its minibatch groups in a ``lax.scan``."""
        if self.minibatch_loop == "auto":
            return -(-self.num_minibatches // self.recompute_every) > _UNROLL_MAX_GROUPS
        return self.minibatch_loop == "scan"

    def check_rollout(self, num_steps: int, num_envs: int) -> None:
        """Raise ValueError (naming the field) if a rollout of ``num_steps`` x ``num_envs``
        does not fit this config."""
        if num_steps % self.segment_len:
            raise ValueError(
                f"PPOConfig.segment_len={self.segment_len} must divide the rollout length T={num_steps}"
            )
        if num_envs != self.num_envs:
            raise ValueError(f"PPOConfig.num_envs={self.num_envs} but the rollout has B={num_envs} envs")
        available = num_envs * (num_steps // self.segment_len)
        if self.minibatch_segments > available:
            raise ValueError(
                f"PPOConfig.minibatch_segments={self.minibatch_segments} exceeds the {available} "
                f"segments of the rollout (B={num_envs} x T/segment_len={num_steps // self.segment_len})"
            )


_DATA_FIELDS = tuple(f.name for f in dataclasses.fields(PPOConfig) if f.name not in _STATIC_FIELDS)


def _config_flatten_with_keys(config: PPOConfig):
    children = tuple((jax.tree_util.GetAttrKey(n), getattr(config, n)) for n in _DATA_FIELDS)
    return children, tuple(getattr(config, n) for n in _STATIC_FIELDS)


def _config_unflatten(static: tuple, children: Any) -> PPOConfig:
    config = object.__new__(PPOConfig)  # no __init__: no validation of tracers / axis specs
    for name, value in zip(_STATIC_FIELDS + _DATA_FIELDS, tuple(static) + tuple(children)):
        object.__setattr__(config, name, value)
    return config


jax.tree_util.register_pytree_with_keys(
    PPOConfig,
    _config_flatten_with_keys,
    _config_unflatten,
    lambda c: (tuple(getattr(c, n) for n in _DATA_FIELDS), tuple(getattr(c, n) for n in _STATIC_FIELDS)),
)


# ---------------------------------------------------------------------- data
@struct.dataclass
class Rollout:
    """One learner's experience for one update (layout in the module doc)."""

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    dones: jax.Array
    starts: jax.Array
    log_probs: jax.Array
    values: jax.Array
    init_carry: Carry
    valid: Optional[jax.Array] = None


@struct.dataclass
class Minibatch:
    """``M`` segments of ``L`` steps, time-major [L, M, ...]; carry [M, H]."""

    init_carry: Carry
    obs: jax.Array  # uint8 [L, M, 21, 21, 3]
    next_obs: jax.Array  # uint8 [L, M, 21, 21, 3]: the aux target (obs[t+1])
    starts: jax.Array  # bool [L, M]
    dones: jax.Array  # bool [L, M]: no aux target where True
    valid: jax.Array  # bool [L, M]
    actions: jax.Array  # int32 [L, M]
    old_log_probs: jax.Array  # f32 [L, M]
    old_values: jax.Array  # f32 [L, M]
    advantages: jax.Array  # f32 [L, M] (normalised if configured)
    returns: jax.Array  # f32 [L, M]: value targets (unnormalised advantages + values)


@struct.dataclass
class Targets:
    """What a recompute produces from the current parameters.

    advantages/returns f32 [T, B]; values f32 [T+1, B] (last: bootstrap);
    seg_carry (c, h) [T / segment_len, B, H]: the carry each segment starts from;
    log_probs f32 [T, B]: log pi_current(actions), for the full-rollout KL.
    """

    advantages: jax.Array
    returns: jax.Array
    values: jax.Array
    seg_carry: Carry
    log_probs: jax.Array


# ---------------------------------------------------------------------- GAE
def gae(
    rewards: jax.Array,
    values: jax.Array,
    dones: jax.Array,
    last_value: jax.Array,
    gamma: float | jax.Array,
    lam: float | jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation, time-major.

    rewards, values, dones [T, B]; last_value [B] = V(obs[T]). ``dones[t]`` means the episode
    ended at step t (the next observation belongs to a new episode), so::

        delta_t = r_t + gamma * (1 - done_t) * V_{t+1} - V_t
        A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1}
        R_t     = A_t + V_t

    (not the released code's ``r + gamma * (V' - V)``). Returns (advantages, returns) [T, B].

    The recursion is affine in ``A_{t+1}``, so it runs as a parallel ``associative_scan``
    (log2 T steps) rather than a T-step loop: an update recomputes GAE 11 times, and on GPUs
    each iteration of a loop costs a synchronisation with the host.
    """
    values = jnp.asarray(values, jnp.float32)
    not_done = 1.0 - jnp.asarray(dones, jnp.float32)
    next_values = jnp.concatenate([values[1:], jnp.asarray(last_value, jnp.float32)[None]], 0)
    deltas = jnp.asarray(rewards, jnp.float32) + gamma * not_done * next_values - values
    decay = gamma * lam * not_done

    # Step t is the map x -> delta_t + decay_t * x applied to A_{t+1}. Scanned from the end,
    # ``later`` is the composition of the maps after t; prepending step t's map gives A_t.
    def compose(later, step):
        later_decay, later_adv = later
        step_decay, step_delta = step
        return step_decay * later_decay, step_delta + step_decay * later_adv

    _, advantages = jax.lax.associative_scan(compose, (decay, deltas), reverse=True)
    return advantages, advantages + values


# ---------------------------------------------------------------------- loss
def _masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.sum(jnp.where(mask, x, 0.0)) / jnp.maximum(jnp.sum(mask), 1)


def ppo_loss(
    params: Any, apply_fn: Callable, batch: Minibatch, config: PPOConfig
) -> tuple[jax.Array, Metrics]:
    """Total minibatch loss and its parts.

    ``apply_fn({'params': params}, carry, obs, starts, actions, next_obs, method="unroll")``
    must return a ``network.UnrollOutput`` with logits [L, M, A], value [L, M] and
    aux_error [L, M] (per-step mean absolute error of the next-observation prediction) or
    None (``SocialNet.apply``). Metrics: loss, policy_loss, value_loss, entropy, aux_loss,
    approx_kl (``mean((r - 1) - log r)`` of current vs rollout policy), clip_frac.
    """
    out = apply_fn(
        {"params": params}, batch.init_carry, batch.obs, batch.starts, batch.actions, batch.next_obs,
        method="unroll",
    )
    logits, values = out.logits, out.value
    valid = jnp.asarray(batch.valid, bool)
    eps = config.clip_eps

    log_pi = jax.nn.log_softmax(logits.astype(jnp.float32))
    log_prob = jnp.take_along_axis(log_pi, batch.actions[..., None].astype(jnp.int32), -1)[..., 0]
    log_ratio = log_prob - batch.old_log_probs
    ratio = jnp.exp(log_ratio)
    adv = batch.advantages
    surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1.0 - eps, 1.0 + eps) * adv)
    policy_loss = -_masked_mean(surrogate, valid)

    err = (values - batch.returns) ** 2
    if config.clip_value_loss:
        clipped = batch.old_values + jnp.clip(values - batch.old_values, -eps, eps)
        err = jnp.maximum(err, (clipped - batch.returns) ** 2)
    value_loss = _masked_mean(err, valid)

    entropy = _masked_mean(-jnp.sum(jnp.exp(log_pi) * log_pi, -1), valid)

    if out.aux_error is None:
        aux_loss = jnp.zeros((), jnp.float32)
    else:
        aux_loss = _masked_mean(out.aux_error, valid & ~jnp.asarray(batch.dones, bool))

    loss = (
        policy_loss
        + config.value_coef * value_loss
        - config.entropy_coef * entropy
        + config.aux_coef * aux_loss
    )
    metrics = {
        "loss": loss,
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "aux_loss": aux_loss,
        "approx_kl": _masked_mean((ratio - 1.0) - log_ratio, valid),
        "clip_frac": _masked_mean((jnp.abs(ratio - 1.0) > eps).astype(jnp.float32), valid),
    }
    return loss, metrics


# ---------------------------------------------------------------------- optimizer
def make_optimizer(config: PPOConfig) -> optax.GradientTransformation:
    """Global-norm clip then Adam, with ``learning_rate`` and ``max_grad_norm`` held in the
    optimizer state (``optax.inject_hyperparams``) so they are data, not code."""

    def clipped_adam(learning_rate, max_grad_norm):
        return optax.chain(
            optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate, eps=config.adam_eps)
        )

    return optax.inject_hyperparams(clipped_adam)(learning_rate=config.lr, max_grad_norm=config.max_grad_norm)


def set_learning_rate(opt_state: Any, lr: float | jax.Array) -> Any:
    """``opt_state`` (from :func:`make_optimizer`) with its learning rate replaced; works on
    states stacked along an agent axis when ``lr`` has that shape (e.g. [1e-4, 1e-5, 0.])."""
    hyper = dict(opt_state.hyperparams)
    old = hyper["learning_rate"]
    hyper["learning_rate"] = jnp.broadcast_to(jnp.asarray(lr, old.dtype), old.shape)
    return opt_state._replace(hyperparams=hyper)


def create_train_state(
    key: jax.Array, config: PPOConfig, network: Optional[SocialNet] = None
) -> TrainState:
    """A flax ``TrainState`` (apply_fn = ``network.apply``, params, optimizer state, step)."""
    network = SocialNet() if network is None else network
    params = init_params(network, key)
    # Jitted: building Adam's zero moments leaf by leaf eagerly compiles ~30 tiny programs.
    create = jax.jit(functools.partial(TrainState.create, apply_fn=network.apply, tx=make_optimizer(config)))
    return create(params=params)


def minibatch_update(
    train_state: TrainState, batch: Minibatch, config: PPOConfig
) -> tuple[TrainState, Metrics]:
    """One gradient step (clip + Adam at the state's learning rate) on one minibatch.

    Metrics are measured at the parameters *before* the step (so ``approx_kl`` is the KL the
    early stop looks at), plus ``grad_norm`` (before clipping).
    """
    grad_fn = jax.value_and_grad(ppo_loss, has_aux=True)
    (_, metrics), grads = grad_fn(train_state.params, train_state.apply_fn, batch, config)
    metrics = dict(metrics, grad_norm=optax.tree.norm(grads))
    return train_state.apply_gradients(grads=grads), metrics


# ---------------------------------------------------------------------- update
def _valid(rollout: Rollout) -> jax.Array:
    if rollout.valid is None:
        return jnp.ones(rollout.actions.shape, bool)
    return jnp.asarray(rollout.valid, bool)


def recompute_targets(params: Any, apply_fn: Callable, rollout: Rollout, config: PPOConfig) -> Targets:
    """Unroll the network over the whole rollout (T+1 steps from ``init_carry``) with
    ``params``: new carries at segment starts, values, GAE advantages and returns.

    ``apply_fn(..., method="unroll")`` must return a ``network.UnrollOutput``.
    """
    num_steps = rollout.actions.shape[0]
    out = apply_fn(
        {"params": params}, rollout.init_carry, rollout.obs, rollout.starts, method="unroll"
    )
    values = out.value
    advantages, returns = gae(
        rollout.rewards, values[:-1], rollout.dones, values[-1], config.gamma, config.gae_lambda
    )
    valid = _valid(rollout)
    if config.normalize_advantages:
        mean = _masked_mean(advantages, valid)
        std = jnp.sqrt(_masked_mean((advantages - mean) ** 2, valid))
        advantages = (advantages - mean) / (std + 1e-8)
    seg_carry = jax.tree.map(lambda c: c[:num_steps : config.segment_len], out.step_carries)
    log_pi = jax.nn.log_softmax(out.logits[:-1].astype(jnp.float32))
    log_probs = jnp.take_along_axis(log_pi, rollout.actions[..., None].astype(jnp.int32), -1)[..., 0]
    return Targets(advantages, returns, values, seg_carry, log_probs)


def gather_minibatch(rollout: Rollout, targets: Targets, segments: jax.Array, config: PPOConfig) -> Minibatch:
    """The minibatch of segment indices ``segments`` [M] (index = s * B + b: segment s of
    env b, covering steps s*L .. s*L + L - 1)."""
    num_envs = rollout.actions.shape[1]
    length = config.segment_len
    seg, env = segments // num_envs, segments % num_envs
    t = seg[None, :] * length + jnp.arange(length)[:, None]  # [L, M]
    b = env[None, :]
    return Minibatch(
        init_carry=jax.tree.map(lambda c: c[seg, env], targets.seg_carry),
        obs=rollout.obs[t, b],
        next_obs=rollout.obs[t + 1, b],
        starts=rollout.starts[t, b],
        dones=rollout.dones[t, b],
        valid=_valid(rollout)[t, b],
        actions=rollout.actions[t, b],
        old_log_probs=rollout.log_probs[t, b],
        old_values=rollout.values[t, b],
        advantages=targets.advantages[t, b],
        returns=targets.returns[t, b],
    )


def _select(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


_MEAN_METRICS = (
    "loss", "policy_loss", "value_loss", "entropy", "aux_loss", "approx_kl", "clip_frac", "grad_norm"
)


def ppo_update(
    train_state: TrainState, rollout: Rollout, key: jax.Array, config: PPOConfig
) -> tuple[TrainState, Metrics]:
    """One PPO update of one learner on one rollout (schedule in the module doc).

    ``config`` may be static (``functools.partial`` / ``static_argnames``) or traced (one
    compile for all float values; vmap it with stacked per-learner configs). Minibatch ``i``
    samples its segments with ``fold_in(key, i)``, so the first k minibatches do not depend
    on ``num_minibatches``. Shapes must satisfy :meth:`PPOConfig.check_rollout` (checked
    here, before tracing).

    Returns the new train state (or the input one, exactly, if reverted) and metrics:
    loss parts averaged over the steps taken; ``num_steps`` (steps taken, before any revert);
    ``early_stopped``; ``reverted``; ``approx_kl_last`` (last minibatch KL measured);
    ``approx_kl_final`` (final parameters vs rollout policy over the whole rollout).
    """
    num_steps, num_envs = rollout.actions.shape
    config.check_rollout(num_steps, num_envs)
    if rollout.obs.shape[0] != num_steps + 1 or rollout.starts.shape[0] != num_steps + 1:
        raise ValueError(
            f"Rollout.obs and Rollout.starts need T+1={num_steps + 1} steps, got "
            f"{rollout.obs.shape[0]} and {rollout.starts.shape[0]}"
        )
    apply_fn = train_state.apply_fn
    num_segments = num_envs * (num_steps // config.segment_len)
    valid = _valid(rollout)

    def recompute(params):
        return recompute_targets(params, apply_fn, rollout, config)

    def minibatch(carry: tuple, targets: Targets, i: Any) -> tuple:
        state, stopped, hard, taken, sums, last_kl = carry
        segments = jax.random.choice(
            jax.random.fold_in(key, i), num_segments, (config.minibatch_segments,), replace=False
        )
        batch = gather_minibatch(rollout, targets, segments, config)
        new_state, metrics = minibatch_update(state, batch, config)
        kl = metrics["approx_kl"]
        take = ~stopped & (kl <= config.target_kl)  # a NaN KL is not taken...
        hard = hard | (~stopped & ~(kl <= config.hard_kl))  # ...and reverts
        state = _select(take, new_state, state)
        sums = {k: sums[k] + jnp.where(take, metrics[k], 0.0) for k in _MEAN_METRICS}
        last_kl = jnp.where(stopped, last_kl, kl)
        return state, ~take, hard, taken + take.astype(jnp.int32), sums, last_kl

    def group(carry: tuple, first: Any, size: int) -> tuple:
        """A recompute, then ``size`` minibatches from ``first`` on, in straight-line code."""
        targets = recompute(carry[0].params)
        for j in range(size):
            carry = minibatch(carry, targets, first + j)
        return carry

    zero = jnp.zeros((), jnp.float32)
    carry = (train_state, jnp.zeros((), bool), jnp.zeros((), bool), jnp.zeros((), jnp.int32),
             {k: zero for k in _MEAN_METRICS}, zero)
    every = config.recompute_every
    full, rest = divmod(config.num_minibatches, every)
    if config.scans_minibatches() and full > 1:
        carry, _ = jax.lax.scan(lambda c, g: (group(c, g * every, every), None), carry, jnp.arange(full))
    else:
        for g in range(full):
            carry = group(carry, g * every, every)
    if rest:
        carry = group(carry, full * every, rest)
    state, stopped, hard, taken, sums, last_kl = carry
    final = recompute(state.params)  # for the KL of the final parameters over the whole rollout

    log_ratio = final.log_probs - rollout.log_probs  # ``final``: recomputed at the last iteration
    kl_final = _masked_mean(jnp.expm1(log_ratio) - log_ratio, valid)
    reverted = hard | ~(kl_final <= config.hard_kl)
    state = _select(reverted, train_state, state)

    denom = jnp.maximum(taken, 1).astype(jnp.float32)
    metrics = {k: v / denom for k, v in sums.items()}
    metrics.update(
        num_steps=taken,
        early_stopped=stopped,
        reverted=reverted,
        approx_kl_last=last_kl,
        approx_kl_final=kl_final,
    )
    return state, metrics
