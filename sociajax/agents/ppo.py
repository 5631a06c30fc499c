"""Recurrent PPO with the auxiliary next-observation loss, as in the paper's appendix.

Pure functions over typed pytrees. :class:`PPOConfig` (static, hashable; defaults are the
paper's values, Appendix 7.7-7.8) sets the program: shapes and the minibatch schedule.
:class:`LearnerData` holds every number an update reads (learning rate, clip norm,
coefficients, KL limits, which auxiliary target, PPO or behaviour cloning) as traced data,
so a population of independent learners, each with its own values, updates with
``jax.vmap(functools.partial(ppo_update, config=config))`` over stacked train states and
stacked data, and changing a value never recompiles. Everything runs inside ``jit``; a whole
update has a static number of minibatches and no data-dependent control flow (see
``PPOConfig.minibatch_loop`` for how its loop is compiled).

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
    seg_carry  (c, h) f32 [T / segment_len, B, 192] or None: the carry the acting network
               consumed at each segment start (after the reset)
    last_value f32   [B] or None: the acting network's value of obs[T]

Update schedule (:func:`ppo_update`), following the paper's Appendix 7.8:

* The rollout is cut into ``B * T / segment_len`` segments of ``segment_len`` steps. Every
  minibatch is ``minibatch_segments`` segments drawn uniformly without replacement, each
  started from its stored LSTM carry (segments cross episode boundaries; the carry resets
  inside at ``starts``).
* Stored carries, values and advantages come from a full forward unroll of the rollout from
  ``init_carry`` with the current parameters: before minibatch 0 and again before every
  ``recompute_every``-th minibatch (the paper's "hidden states and advantages re-calculated
  every 2 mini-batches"). Advantages are normalised over the whole rollout after each
  recompute (as the released code did; the paper does not say). The first recompute runs
  with the parameters that collected the rollout, so when the rollout holds what acting
  computed (``seg_carry`` and ``last_value``) and ``reuse_rollout`` is on, it is taken from
  there instead (equal to float rounding; one forward pass over the rollout fewer).
* KL early stop: the approximate KL of the current parameters to the rollout policy is
  measured on each minibatch before its step (``mean((r - 1) - log r)``, the low-variance
  unbiased estimator); once it exceeds ``target_kl`` that step and all later ones become
  no-ops. They are skipped with ``lax.cond``, as are the recomputes only they would read and
  every minibatch with no valid step: where the update runs unbatched (``run_loop="map"``)
  that work is not done at all; under ``vmap`` the cond becomes a select of both branches,
  so the numbers are the same either way.
* KL hard limit: if any measured minibatch KL exceeds ``hard_kl`` or is not finite, or the
  KL of the final parameters over the *whole* rollout (a fresh forward unroll, so it also
  checks the last step, which no minibatch measures) exceeds ``hard_kl``, the parameters,
  the optimizer state and the step counter are restored exactly to their values before the
  update (the paper: "all changes ... are reverted"; the released code restored nothing).

Loss (per minibatch; masked means over ``valid`` steps)::

    L = L_clip + value_coef * L_V - entropy_coef * H + aux_coef * L_aux     (PPO)
    L = -mean(log pi(actions[t] | obs[..t]))                                (behaviour cloning)

``L_V`` is the plain mean squared error ``mean((V - R)^2)`` (no 1/2; the paper says MSE;
``clip_value_loss=True`` gives PPO2's clipped variant with ``clip_eps`` around the rollout's
values). ``H`` is masked like the policy loss: it counts every step where the learner acted,
including an episode's last one (the released code averaged it over padding past episode
ends too). ``L_aux`` is the mean absolute error between the decoder's output at step t
(from the LSTM output and the one-hot action at t) and its target over 255: ``obs[t+1]``
(PRED, the paper's SociAPL) or ``obs[t]`` (REC, ``LearnerData.aux_current``). A next-view
target is masked only where ``starts[t+1]``: there ``obs[t+1]`` begins another episode
(an auto-resetting env), so no next view of the same episode exists (the released code used
zero padding instead). Whole-episode rollouts keep the episode's real last view after its
last step, so that transition (the step onto a goal, in Four Rooms and Maze) is learnt from.

Gradient clipping: the paper mentions none and the released code had none, so by default
there is none (``max_grad_norm=inf``); a finite value clips the global norm (e.g. 0.5,
Andrychowicz et al. 2020's recommendation).

Optimizer: Adam's moment estimates (``optax.scale_by_adam``) live in the train state; the
step is ``params - lr * adam_direction(clip(grads))`` with ``lr`` and the clip norm read from
:class:`LearnerData`, so a learning rate of 0 (a frozen learner) changes nothing.

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

from sociajax import fields
from sociajax.agents.network import SocialNet, action_distribution, init_params

Carry = tuple  # (c, h)
Metrics = dict


# ---------------------------------------------------------------------- config
MinibatchLoop = Literal["auto", "unroll", "scan"]
MINIBATCH_LOOPS = get_args(MinibatchLoop)
_UNROLL_MAX_GROUPS = 4  # "auto" unrolls updates of at most this many recompute groups


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Hyperparameters of one PPO update; defaults are the paper's (Appendix 7.7-7.8).

    A frozen, hashable dataclass, static under ``jit``: its integer, bool and string fields
    set shapes and code paths. Its float fields are defaults only: what an update reads is
    :class:`LearnerData` (``LearnerData.of(config, ...)``), traced, so one compiled update
    serves any coefficients, learning rates and per-learner objectives. Construction
    validates (ValueError naming the field).

    ``minibatch_loop`` changes speed and compile time only (the same computation; results
    agree to float rounding): the minibatches come in groups (a recompute, then
    ``recompute_every`` gradient steps in straight-line code). "unroll" writes every group
    out; "scan" runs the whole groups in a ``lax.scan``; "auto" unrolls up to 4 groups and
    scans more: a long unrolled update keeps every minibatch's buffers alive and compiles far
    longer, while a short one runs faster unrolled (numbers in docs/benchmarks.md).
    """

    gamma: float = fields.data(0.993, "discount factor")
    gae_lambda: float = fields.data(0.97, "GAE lambda")
    clip_eps: float = fields.data(0.2, "PPO clip range")
    value_coef: float = fields.data(0.1, "value loss coefficient")
    entropy_coef: float = fields.data(1e-5, "entropy bonus coefficient")
    aux_coef: float = fields.data(3.0, "auxiliary loss coefficient (of learners with agents.N.aux)")
    lr: float = 1e-4  # unused in training: each learner's own is agents.N.lr
    target_kl: float = fields.data(0.01, "KL early stop of the minibatch loop")
    hard_kl: float = fields.data(0.03, "KL above which the whole update is reverted")
    max_grad_norm: float = fields.data(math.inf, "global gradient norm clip (inf: none, as the paper; e.g. 0.5)")
    adam_eps: float = 1e-8  # PyTorch's Adam default, which the paper used
    num_minibatches: int = 20
    minibatch_segments: int = 512
    segment_len: int = 16
    recompute_every: int = 2  # minibatches between recomputes of carries and advantages
    num_envs: int = 128  # B: parallel episodes per update
    clip_value_loss: bool = False  # the paper: plain MSE
    normalize_advantages: bool = True  # over the whole rollout, after each recompute
    minibatch_loop: MinibatchLoop = "auto"  # speed only; auto: scan if > 4 recompute groups
    # Speed only: the first recompute of an update takes the rollout's own values and carries
    # (the same parameters made them) when the rollout holds them, one forward pass fewer.
    reuse_rollout: bool = True

    def __post_init__(self) -> None:
        def real(name: str, low: float, high: float = math.inf, *, low_open=False, allow_inf=False) -> None:
            value = getattr(self, name)
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
        for name in ("clip_value_loss", "normalize_advantages", "reuse_rollout"):
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

    def recomputes_per_update(self) -> int:
        """Forward unrolls over the whole rollout in one update: one per group of
        ``recompute_every`` minibatches and the final one (for the KL), less the first where
        ``reuse_rollout`` takes it from a trainer's rollout."""
        return -(-self.num_minibatches // self.recompute_every) + 1 - int(self.reuse_rollout)

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


@struct.dataclass
class LearnerData:
    """The numbers one learner's update reads, as traced data (float32 scalars, or [L] when
    stacked over a population's learners and vmapped). Everything that differs between
    learners or between the conditions of one compiled program lives here, and only here;
    :class:`PPOConfig` holds what sets the program (shapes, loop structure) and the defaults.

    ``aux_current``: the auxiliary loss reconstructs the current view (the paper's REC)
    instead of predicting the next one (PRED). ``bc``: behaviour cloning (negative
    log-likelihood of the rollout's actions; no value, entropy or auxiliary loss, no KL
    stop), for imitation learners whose rollout holds an expert's views and actions.
    """

    lr: jax.Array
    max_grad_norm: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array
    clip_eps: jax.Array
    value_coef: jax.Array
    entropy_coef: jax.Array
    aux_coef: jax.Array
    target_kl: jax.Array
    hard_kl: jax.Array
    aux_current: jax.Array
    bc: jax.Array

    @classmethod
    def of(
        cls,
        config: "PPOConfig",
        lr: Optional[float] = None,
        aux_coef: Optional[float] = None,
        aux_target: str = "next",
        objective: str = "ppo",
    ) -> "LearnerData":
        """One learner's data from ``config`` (``lr`` and ``aux_coef`` default to its)."""
        if aux_target not in AUX_TARGETS:
            raise ValueError(f"aux_target must be one of {AUX_TARGETS}, got {aux_target!r}")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        bc = objective == "bc"
        f32 = lambda x: np.float32(x)  # noqa: E731
        return cls(
            lr=f32(config.lr if lr is None else lr),
            max_grad_norm=f32(config.max_grad_norm),
            gamma=f32(config.gamma),
            gae_lambda=f32(config.gae_lambda),
            clip_eps=f32(config.clip_eps),
            value_coef=f32(0.0 if bc else config.value_coef),
            entropy_coef=f32(0.0 if bc else config.entropy_coef),
            aux_coef=f32(0.0 if bc else (config.aux_coef if aux_coef is None else aux_coef)),
            target_kl=f32(math.inf if bc else config.target_kl),
            hard_kl=f32(math.inf if bc else config.hard_kl),
            aux_current=np.bool_(aux_target == "current"),
            bc=np.bool_(bc),
        )


AUX_TARGETS = ("next", "current")  # PRED (the paper's SociAPL) and REC
OBJECTIVES = ("ppo", "bc")


def _data(config: "PPOConfig", data: Optional[LearnerData]) -> LearnerData:
    return LearnerData.of(config) if data is None else data


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
    # What the acting network computed that the update's first recompute would compute again
    # (optional; see ``PPOConfig.reuse_rollout``): the carry it consumed at each segment start,
    # (c, h) [T / segment_len, B, H], and its value of the last view obs[T], [B].
    seg_carry: Optional[Carry] = None
    last_value: Optional[jax.Array] = None


@struct.dataclass
class Minibatch:
    """``M`` segments of ``L`` steps, time-major [L, M, ...]; carry [M, H]."""

    init_carry: Carry
    obs: jax.Array  # uint8 [L, M, 21, 21, 3]
    next_obs: jax.Array  # uint8 [L, M, 21, 21, 3]: obs[t+1], the next-view (PRED) target
    starts: jax.Array  # bool [L, M]
    next_starts: jax.Array  # bool [L, M]: obs[t+1] begins another episode (no next-view target)
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
    params: Any, apply_fn: Callable, batch: Minibatch, config: PPOConfig, data: Optional[LearnerData] = None
) -> tuple[jax.Array, Metrics]:
    """Total minibatch loss and its parts (``data`` default: ``LearnerData.of(config)``).

    ``apply_fn({'params': params}, carry, obs, starts, actions, aux_target, aux_enabled,
    method="unroll")`` must return a ``network.UnrollOutput`` with logits [L, M, A], value
    [L, M] and aux_error [L, M] (per-step mean absolute error of the decoder's output against
    ``aux_target``; 0 where ``aux_enabled`` is False) or None (``SocialNet.apply``). Metrics:
    loss, policy_loss, value_loss, entropy, aux_loss (0 for a learner whose auxiliary loss is
    off: its decoder is not run), bc_loss (negative log-likelihood of the batch's actions),
    approx_kl (``mean((r - 1) - log r)`` of current vs rollout policy), clip_frac.
    """
    data = _data(config, data)
    aux_target = jnp.where(data.aux_current, batch.obs, batch.next_obs)
    out = apply_fn(
        {"params": params}, batch.init_carry, batch.obs, batch.starts, batch.actions, aux_target,
        data.aux_coef != 0, method="unroll",
    )
    logits, values = out.logits, out.value
    valid = jnp.asarray(batch.valid, bool)
    eps = data.clip_eps

    pi = action_distribution(logits)
    log_prob = pi.log_prob(batch.actions.astype(jnp.int32))
    # A cloning learner's rollout holds another agent's actions: no ratio to its own policy
    # (zeroed before the exp, so neither the loss nor its gradient can overflow).
    log_ratio = jnp.where(data.bc, 0.0, log_prob - batch.old_log_probs)
    ratio = jnp.exp(log_ratio)
    adv = batch.advantages
    surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1.0 - eps, 1.0 + eps) * adv)
    clip_loss = -_masked_mean(surrogate, valid)
    bc_loss = -_masked_mean(log_prob, valid)
    policy_loss = jnp.where(data.bc, bc_loss, clip_loss)

    err = (values - batch.returns) ** 2
    if config.clip_value_loss:
        clipped = batch.old_values + jnp.clip(values - batch.old_values, -eps, eps)
        err = jnp.maximum(err, (clipped - batch.returns) ** 2)
    value_loss = _masked_mean(err, valid)

    entropy = _masked_mean(pi.entropy(), valid)

    if out.aux_error is None:
        aux_loss = jnp.zeros((), jnp.float32)
    else:
        has_target = valid & (data.aux_current | ~jnp.asarray(batch.next_starts, bool))
        aux_loss = _masked_mean(out.aux_error, has_target)

    loss = (
        policy_loss
        + data.value_coef * value_loss
        - data.entropy_coef * entropy
        + data.aux_coef * aux_loss
    )
    metrics = {
        "loss": loss,
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "aux_loss": aux_loss,
        "bc_loss": bc_loss,
        "approx_kl": _masked_mean((ratio - 1.0) - log_ratio, valid),
        "clip_frac": _masked_mean((jnp.abs(ratio - 1.0) > eps).astype(jnp.float32), valid),
    }
    return loss, metrics


# ---------------------------------------------------------------------- optimizer
def make_optimizer(config: PPOConfig) -> optax.GradientTransformation:
    """Adam's direction (``optax.scale_by_adam``, PyTorch's eps): the learning rate and the
    gradient clip are applied by :func:`minibatch_update` from :class:`LearnerData`."""
    return optax.scale_by_adam(eps=config.adam_eps)


def clip_by_global_norm(grads: Any, max_norm: jax.Array) -> tuple[Any, jax.Array]:
    """(grads scaled to global norm at most ``max_norm``, the norm before). ``max_norm`` may
    be traced and infinite (no clipping)."""
    norm = optax.tree.norm(grads)
    scale = jnp.where(norm > max_norm, max_norm / jnp.maximum(norm, 1e-30), 1.0)
    return jax.tree.map(lambda g: g * scale.astype(g.dtype), grads), norm


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
    train_state: TrainState, batch: Minibatch, config: PPOConfig, data: Optional[LearnerData] = None
) -> tuple[TrainState, Metrics]:
    """One gradient step (clip, Adam direction, times the learning rate) on one minibatch.

    Metrics are measured at the parameters *before* the step (so ``approx_kl`` is the KL the
    early stop looks at), plus ``grad_norm`` (before clipping).
    """
    data = _data(config, data)
    grad_fn = jax.value_and_grad(ppo_loss, has_aux=True)
    (_, metrics), grads = grad_fn(train_state.params, train_state.apply_fn, batch, config, data)
    grads, norm = clip_by_global_norm(grads, data.max_grad_norm)
    direction, opt_state = train_state.tx.update(grads, train_state.opt_state, train_state.params)
    params = jax.tree.map(lambda p, d: p - data.lr.astype(p.dtype) * d, train_state.params, direction)
    new_state = train_state.replace(step=train_state.step + 1, params=params, opt_state=opt_state)
    return new_state, dict(metrics, grad_norm=norm)


# ---------------------------------------------------------------------- update
def _valid(rollout: Rollout) -> jax.Array:
    if rollout.valid is None:
        return jnp.ones(rollout.actions.shape, bool)
    return jnp.asarray(rollout.valid, bool)


def recompute_targets(
    params: Any, apply_fn: Callable, rollout: Rollout, config: PPOConfig, data: Optional[LearnerData] = None
) -> Targets:
    """Unroll the network over the whole rollout (T+1 steps from ``init_carry``) with
    ``params``: new carries at segment starts, values, GAE advantages and returns.

    ``apply_fn(..., method="unroll")`` must return a ``network.UnrollOutput``.
    """
    num_steps = rollout.actions.shape[0]
    out = apply_fn(
        {"params": params}, rollout.init_carry, rollout.obs, rollout.starts, method="unroll"
    )
    seg_carry = jax.tree.map(lambda c: c[:num_steps : config.segment_len], out.step_carries)
    log_probs = action_distribution(out.logits[:-1]).log_prob(rollout.actions.astype(jnp.int32))
    return targets_of(out.value, seg_carry, log_probs, rollout, config, data)


def rollout_targets(rollout: Rollout, config: PPOConfig, data: Optional[LearnerData] = None) -> Targets:
    """The targets of the parameters that collected ``rollout``, from what acting already
    computed (its values, log-probabilities, segment-start carries and last value): equal to
    :func:`recompute_targets` with those parameters, to float rounding."""
    if rollout.seg_carry is None or rollout.last_value is None:
        raise ValueError("rollout_targets needs a Rollout with seg_carry and last_value")
    values = jnp.concatenate([rollout.values, rollout.last_value[None]], 0)
    return targets_of(values, rollout.seg_carry, rollout.log_probs, rollout, config, data)


def targets_of(
    values: jax.Array, seg_carry: Carry, log_probs: jax.Array, rollout: Rollout, config: PPOConfig,
    data: Optional[LearnerData] = None,
) -> Targets:
    """:class:`Targets` from values [T+1, B] (last: bootstrap): GAE, then the advantages
    normalised over the rollout's valid steps if configured."""
    data = _data(config, data)
    values = jnp.asarray(values, jnp.float32)
    advantages, returns = gae(
        rollout.rewards, values[:-1], rollout.dones, values[-1], data.gamma, data.gae_lambda
    )
    valid = _valid(rollout)
    if config.normalize_advantages:
        mean = _masked_mean(advantages, valid)
        std = jnp.sqrt(_masked_mean((advantages - mean) ** 2, valid))
        advantages = (advantages - mean) / (std + 1e-8)
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
        next_starts=rollout.starts[t + 1, b],
        valid=_valid(rollout)[t, b],
        actions=rollout.actions[t, b],
        old_log_probs=rollout.log_probs[t, b],
        old_values=rollout.values[t, b],
        advantages=targets.advantages[t, b],
        returns=targets.returns[t, b],
    )


def _select(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def _zeros_like(shapes: Any) -> Any:
    """Zeros of the shapes and dtypes of a tree of ``jax.ShapeDtypeStruct``."""
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


_MEAN_METRICS = (
    "loss", "policy_loss", "value_loss", "entropy", "aux_loss", "bc_loss", "approx_kl", "clip_frac", "grad_norm"
)


def ppo_update(
    train_state: TrainState,
    rollout: Rollout,
    key: jax.Array,
    config: PPOConfig,
    data: Optional[LearnerData] = None,
) -> tuple[TrainState, Metrics]:
    """One PPO (or behaviour-cloning) update of one learner on one rollout (schedule in the
    module doc).

    ``config`` is static (``functools.partial`` / ``static_argnames``); ``data`` (default
    ``LearnerData.of(config)``) is traced: vmap it with stacked per-learner data. A minibatch
    without a valid step (a learner absent from every sampled episode) changes nothing, not
    even Adam's moments. Minibatch ``i``
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
    data = _data(config, data)
    apply_fn = train_state.apply_fn
    num_segments = num_envs * (num_steps // config.segment_len)
    valid = _valid(rollout)

    any_valid = jnp.any(valid)  # False for a learner absent from every episode

    def recompute(params):
        return recompute_targets(params, apply_fn, rollout, config, data)

    unused_targets = jax.eval_shape(recompute, train_state.params)  # the shapes a skipped recompute fills

    def step(carry: tuple, batch: Minibatch) -> tuple:
        """A gradient step on ``batch``, kept if its KL is within ``target_kl``."""
        state, stopped, hard, taken, sums, last_kl = carry
        new_state, metrics = minibatch_update(state, batch, config, data)
        kl = metrics["approx_kl"]
        within = kl <= data.target_kl  # a NaN KL is not taken...
        hard = hard | ~(kl <= data.hard_kl)  # ...and reverts
        state = _select(within, new_state, state)
        sums = {k: sums[k] + jnp.where(within, metrics[k], 0.0) for k in _MEAN_METRICS}
        return state, ~within, hard, taken + within.astype(jnp.int32), sums, kl

    def minibatch(carry: tuple, targets: Targets, i: Any) -> tuple:
        """Minibatch ``i``: a step unless the loop has stopped or it holds no valid step
        (then nothing changes, not even Adam's moments)."""
        segments = jax.random.choice(
            jax.random.fold_in(key, i), num_segments, (config.minibatch_segments,), replace=False
        )
        batch = gather_minibatch(rollout, targets, segments, config)
        skip = carry[1] | ~jnp.any(batch.valid)
        return jax.lax.cond(skip, lambda c, b: c, step, carry, batch)

    def group(carry: tuple, first: Any, size: int, targets: Optional[Targets] = None) -> tuple:
        """A recompute (unless ``targets`` are given, or no minibatch of the group will
        read it), then ``size`` minibatches from ``first`` on, in straight-line code."""
        if targets is None:
            params = carry[0].params
            targets = jax.lax.cond(carry[1] | ~any_valid, lambda p: _zeros_like(unused_targets), recompute, params)
        for j in range(size):
            carry = minibatch(carry, targets, first + j)
        return carry

    zero = jnp.zeros((), jnp.float32)
    carry = (train_state, jnp.zeros((), bool), jnp.zeros((), bool), jnp.zeros((), jnp.int32),
             {k: zero for k in _MEAN_METRICS}, zero)
    every = config.recompute_every
    full, rest = divmod(config.num_minibatches, every)
    sizes = [every] * full + ([rest] if rest else [])  # minibatches per group
    first_group = 0
    if config.reuse_rollout and rollout.seg_carry is not None and rollout.last_value is not None:
        # The first group starts from the parameters that collected the rollout.
        carry = group(carry, 0, sizes[0], rollout_targets(rollout, config, data))
        first_group = 1
    if config.scans_minibatches() and full - first_group > 1:  # whole groups [first_group, full)
        carry, _ = jax.lax.scan(
            lambda c, g: (group(c, g * every, every), None), carry, jnp.arange(first_group, full)
        )
        first_group = full
    for g in range(first_group, len(sizes)):
        carry = group(carry, g * every, sizes[g])
    state, stopped, hard, taken, sums, last_kl = carry
    # The KL of the final parameters over the whole rollout (0 without a valid step, where
    # the masked mean is 0 whatever the log-probabilities are, so their recompute is skipped).
    final_log_probs = jax.lax.cond(
        any_valid, lambda p: recompute(p).log_probs, lambda p: jnp.zeros_like(rollout.log_probs), state.params)
    log_ratio = final_log_probs - rollout.log_probs
    kl_final = _masked_mean(jnp.expm1(log_ratio) - log_ratio, valid)
    reverted = hard | ~(kl_final <= data.hard_kl)
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
