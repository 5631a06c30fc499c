"""PPO: GAE and the loss against NumPy references, masking, recompute, the update schedule
(KL early stop, hard-limit revert), per-agent learning rates under vmap, config validation."""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sociajax.agents.network import OBS_SHAPE, SocialNet, UnrollOutput, frame_abs_error
from sociajax.agents.ppo import (
    LearnerData,
    Minibatch,
    PPOConfig,
    Rollout,
    create_train_state,
    gae,
    gather_minibatch,
    minibatch_update,
    ppo_loss,
    ppo_update,
    recompute_targets,
)

T, B = 32, 4  # rollout: 2 segments of 16 per env, 8 segments in all
CFG = PPOConfig(num_envs=B, minibatch_segments=4, num_minibatches=4, segment_len=16, recompute_every=2)
CFG_STOP = dataclasses.replace(CFG, target_kl=1e-7, hard_kl=math.inf)  # stops after one step
NET = SocialNet()


# Test-side jits of tiny programs skip XLA's slow backend optimisations: compiling dominates.
def fast_jit(fun, **kwargs):
    options = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
    return jax.jit(fun, compiler_options=options, **kwargs)


# ---------------------------------------------------------------------- references
def gae_reference(rewards, values, dones, last_value, gamma, lam):
    """Plain loops, one env at a time."""
    steps, envs = rewards.shape
    adv = np.zeros((steps, envs))
    for b in range(envs):
        running = 0.0
        for t in reversed(range(steps)):
            next_value = last_value[b] if t == steps - 1 else values[t + 1, b]
            alive = 0.0 if dones[t, b] else 1.0
            delta = rewards[t, b] + gamma * alive * next_value - values[t, b]
            running = delta + gamma * lam * alive * running
            adv[t, b] = running
    return adv, adv + values


def loss_reference(logits, values, aux, batch, cfg):
    """The paper's loss from its definition, in float64 NumPy."""
    f = lambda x: np.asarray(x, np.float64)  # noqa: E731
    logits, values = f(logits), f(values)
    valid = np.asarray(batch.valid, bool)
    log_pi = logits - logits.max(-1, keepdims=True)
    log_pi = log_pi - np.log(np.exp(log_pi).sum(-1, keepdims=True))
    actions = np.asarray(batch.actions)
    logp = np.take_along_axis(log_pi, actions[..., None], -1)[..., 0]
    ratio = np.exp(logp - f(batch.old_log_probs))
    adv = f(batch.advantages)
    surr = np.minimum(ratio * adv, np.clip(ratio, 1 - cfg.clip_eps, 1 + cfg.clip_eps) * adv)
    ret = f(batch.returns)
    err = (values - ret) ** 2
    if cfg.clip_value_loss:
        old = f(batch.old_values)
        err = np.maximum(err, (old + np.clip(values - old, -cfg.clip_eps, cfg.clip_eps) - ret) ** 2)
    ent = -(np.exp(log_pi) * log_pi).sum(-1)
    out = {
        "policy_loss": -surr[valid].mean(),
        "value_loss": err[valid].mean(),
        "entropy": ent[valid].mean(),
        "approx_kl": ((ratio - 1) - np.log(ratio))[valid].mean(),
        "clip_frac": (np.abs(ratio - 1) > cfg.clip_eps)[valid].mean(),
    }
    has_target = valid & ~np.asarray(batch.next_starts, bool)
    if aux is None:
        out["aux_loss"] = 0.0
    else:
        out["aux_loss"] = np.abs(f(aux) - f(batch.next_obs) / 255).mean((-3, -2, -1))[has_target].mean()
    out["loss"] = (
        out["policy_loss"]
        + cfg.value_coef * out["value_loss"]
        - cfg.entropy_coef * out["entropy"]
        + cfg.aux_coef * out["aux_loss"]
    )
    return out


# ---------------------------------------------------------------------- GAE
def test_gae_hand_example() -> None:
    """T=3, one env, episode ends after step 1. gamma 0.9, lam 0.8, V = 0.5 everywhere,
    V(obs[3]) = 1, rewards (1, 0, 2):
      delta_2 = 2 + 0.9*1   - 0.5 = 2.4          A_2 = 2.4
      delta_1 = 0 + 0 (end) - 0.5 = -0.5         A_1 = -0.5 (no bootstrap across the end)
      delta_0 = 1 + 0.9*0.5 - 0.5 = 0.95         A_0 = 0.95 + 0.72*(-0.5) = 0.59
    """
    adv, ret = gae(
        np.array([[1.0], [0.0], [2.0]]),
        np.full((3, 1), 0.5),
        np.array([[False], [True], [False]]),
        np.array([1.0]),
        0.9,
        0.8,
    )
    np.testing.assert_allclose(np.asarray(adv)[:, 0], [0.59, -0.5, 2.4], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ret)[:, 0], [1.09, 0.0, 2.9], rtol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_gae_matches_loop_reference_with_mid_rollout_episode_ends(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(T, B)).astype(np.float32)
    values = rng.normal(size=(T, B)).astype(np.float32)
    dones = rng.random((T, B)) < 0.15
    dones[5, 0] = dones[T - 1, 1] = True
    last = rng.normal(size=B).astype(np.float32)
    gamma, lam = (0.993, 0.97) if seed % 2 else (0.9, 0.5)
    adv, ret = jax.jit(gae)(rewards, values, dones, last, gamma, lam)
    ref_adv, ref_ret = gae_reference(rewards, values, dones, last, gamma, lam)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, ref_ret, rtol=1e-5, atol=1e-5)


def test_gae_matches_loop_reference_over_a_paper_length_rollout() -> None:
    """256 steps (the paper's 250, padded) with long stretches between episode ends: the
    parallel scan's reordered products must stay as accurate as the loop."""
    rng = np.random.default_rng(11)
    steps = 256
    rewards = (rng.random((steps, B)) < 0.05).astype(np.float32) * 1.0 - 0.01
    values = rng.normal(size=(steps, B)).astype(np.float32)
    dones = np.zeros((steps, B), bool)
    dones[[40, 249], 0] = dones[249, 1] = True  # env 2 and 3 never end: bootstrapped from last
    last = rng.normal(size=B).astype(np.float32)
    adv, ret = jax.jit(gae)(rewards, values, dones, last, 0.993, 0.97)
    ref_adv, ref_ret = gae_reference(rewards, values, dones, last, 0.993, 0.97)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, ref_ret, rtol=1e-5, atol=1e-5)


def test_gae_limits_are_td_error_and_monte_carlo() -> None:
    """lam=0: A_t is the one-step TD error; lam=1: A_t + V_t is the discounted return to the
    episode's end (bootstrapped with V(obs[T]) only if the rollout ends mid-episode)."""
    rng = np.random.default_rng(9)
    rewards, values = rng.normal(size=(T, 1)), rng.normal(size=(T, 1))
    dones = np.zeros((T, 1), bool)
    dones[[6, 20], 0] = True
    last, gamma = np.array([0.7]), 0.95
    adv0, _ = gae(rewards, values, dones, last, gamma, 0.0)
    next_v = np.concatenate([values[1:], last[None]])
    np.testing.assert_allclose(adv0, rewards + gamma * ~dones * next_v - values, atol=1e-5)
    _, ret1 = gae(rewards, values, dones, last, gamma, 1.0)
    mc = np.zeros(T)
    for t in range(T):
        total, k = 0.0, t
        while True:
            total += gamma ** (k - t) * rewards[k, 0]
            if dones[k, 0]:
                break
            if k == T - 1:
                total += gamma ** (k - t + 1) * last[0]
                break
            k += 1
        mc[t] = total
    np.testing.assert_allclose(np.asarray(ret1)[:, 0], mc, atol=1e-4)


# ---------------------------------------------------------------------- loss
L_, M_ = 4, 3  # a tiny minibatch for the loss tests


def fake_apply(variables, carry, obs, starts, actions, aux_target, aux_enabled, method="unroll"):
    """Stands in for the network: its 'params' are the outputs themselves ('aux': the
    predicted next observations, scored per step as ``SocialNet.aux_error`` does)."""
    assert method == "unroll"
    p = variables["params"]
    aux_error = None if "aux" not in p else jnp.where(aux_enabled, frame_abs_error(p["aux"], aux_target), 0.0)
    return UnrollOutput(carry, p["logits"], p["values"], None, carry, aux_error)


def tiny_batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    outputs = {
        "logits": jnp.asarray(rng.normal(size=(L_, M_, 7)), jnp.float32),
        "values": jnp.asarray(rng.normal(size=(L_, M_)), jnp.float32),
        "aux": jnp.asarray(rng.random((L_, M_) + OBS_SHAPE), jnp.float32),
    }
    log_pi = jax.nn.log_softmax(outputs["logits"])
    actions = rng.integers(0, 7, (L_, M_)).astype(np.int32)
    logp = np.take_along_axis(np.asarray(log_pi), actions[..., None], -1)[..., 0]
    dones = np.zeros((L_, M_), bool)
    dones[1, 0] = dones[3, 2] = True
    valid = np.ones((L_, M_), bool)
    valid[2, 1] = valid[3, 1] = False
    batch = Minibatch(
        init_carry=(jnp.zeros((M_, 1)), jnp.zeros((M_, 1))),
        obs=jnp.zeros((L_, M_) + OBS_SHAPE, jnp.uint8),
        next_obs=jnp.asarray(rng.integers(0, 256, (L_, M_) + OBS_SHAPE), jnp.uint8),
        starts=jnp.zeros((L_, M_), bool),
        next_starts=jnp.asarray(dones),
        valid=jnp.asarray(valid),
        actions=jnp.asarray(actions),
        # old log-probs far enough off that some ratios leave [1 - eps, 1 + eps]
        old_log_probs=jnp.asarray(logp + rng.normal(scale=0.4, size=logp.shape), jnp.float32),
        old_values=jnp.asarray(rng.normal(size=(L_, M_)), jnp.float32),
        advantages=jnp.asarray(rng.normal(size=(L_, M_)), jnp.float32),
        returns=jnp.asarray(rng.normal(size=(L_, M_)), jnp.float32),
    )
    return outputs, batch


loss_fn = fast_jit(functools.partial(ppo_loss, apply_fn=fake_apply), static_argnames="config")


@pytest.mark.parametrize("clip_value", [False, True])
def test_loss_matches_numpy_reference(clip_value: bool) -> None:
    cfg = dataclasses.replace(CFG, clip_value_loss=clip_value, entropy_coef=0.01)
    outputs, batch = tiny_batch()
    loss, metrics = loss_fn(outputs, batch=batch, config=cfg)
    ref = loss_reference(outputs["logits"], outputs["values"], outputs["aux"], batch, cfg)
    assert 0 < ref["clip_frac"] < 1  # the batch exercises both sides of the clip
    assert float(loss) == pytest.approx(ref["loss"], rel=1e-5, abs=1e-6)
    for k, v in ref.items():
        assert float(metrics[k]) == pytest.approx(v, rel=1e-5, abs=1e-6), k


def test_loss_without_decoder_has_no_aux_term() -> None:
    outputs, batch = tiny_batch(1)
    outputs.pop("aux")
    loss, metrics = loss_fn(outputs, batch=batch, config=CFG)
    ref = loss_reference(outputs["logits"], outputs["values"], None, batch, CFG)
    assert float(metrics["aux_loss"]) == 0.0
    assert float(loss) == pytest.approx(ref["loss"], rel=1e-5, abs=1e-6)


def test_aux_target_is_masked_where_the_next_view_begins_another_episode() -> None:
    """Where starts[t+1] the next obs is a new episode's first: its pixels must not matter."""
    outputs, batch = tiny_batch(2)
    base = loss_fn(outputs, batch=batch, config=CFG)
    noise = jnp.asarray(np.random.default_rng(3).integers(0, 256, batch.next_obs.shape), jnp.uint8)
    done = batch.next_starts[..., None, None, None]
    noisy_ends = batch.replace(next_obs=jnp.where(done, noise, batch.next_obs))
    at_ends = loss_fn(outputs, batch=noisy_ends, config=CFG)
    assert jax.tree.map(float, at_ends) == jax.tree.map(float, base)
    noisy_rest = batch.replace(next_obs=jnp.where(done, batch.next_obs, noise))
    elsewhere = loss_fn(outputs, batch=noisy_rest, config=CFG)
    assert float(elsewhere[1]["aux_loss"]) != float(base[1]["aux_loss"])  # the test can fail


def test_invalid_steps_do_not_count_but_episode_ends_do() -> None:
    """Logits/values/predictions at ``valid == False`` steps change nothing (and get zero
    gradient); at a valid episode end the policy still acted, so its entropy counts."""
    outputs, batch = tiny_batch(4)
    base = loss_fn(outputs, batch=batch, config=CFG)
    invalid = ~batch.valid
    rng = np.random.default_rng(5)
    changed = {
        "logits": jnp.where(invalid[..., None], 10 * rng.normal(size=(L_, M_, 7)), outputs["logits"]),
        "values": jnp.where(invalid, 10.0, outputs["values"]),
        "aux": jnp.where(invalid[..., None, None, None], 5.0, outputs["aux"]),
    }
    assert jax.tree.map(float, loss_fn(changed, batch=batch, config=CFG)) == jax.tree.map(float, base)
    grads = fast_jit(jax.grad(lambda o: ppo_loss(o, fake_apply, batch, CFG)[0]))(outputs)
    for name, g in grads.items():
        assert not np.asarray(g)[np.asarray(invalid)].any(), name
        assert np.asarray(g)[np.asarray(batch.valid)].any(), name
    # Entropy at a valid episode end (dones[1, 0]) counts.
    bumped = dict(outputs, logits=outputs["logits"].at[1, 0].set(jnp.zeros(7)))
    assert float(loss_fn(bumped, batch=batch, config=CFG)[1]["entropy"]) != float(base[1]["entropy"])


def _data_loss(outputs, batch, data):
    return fast_jit(lambda o, b, d: ppo_loss(o, fake_apply, b, CFG, d))(outputs, batch, data)


def test_rec_loss_targets_the_current_view_and_pred_the_next() -> None:
    """On a batch whose current and next views differ, PRED's aux loss is the error against
    obs[t+1] (masked where starts[t+1]) and REC's against obs[t] (every valid step)."""
    outputs, batch = tiny_batch(6)
    rng = np.random.default_rng(7)
    batch = batch.replace(obs=jnp.asarray(rng.integers(0, 256, batch.obs.shape), jnp.uint8))
    f = lambda x: np.asarray(x, np.float64)  # noqa: E731
    valid, ends = np.asarray(batch.valid), np.asarray(batch.next_starts)
    error = lambda target: np.abs(f(outputs["aux"]) - f(target) / 255).mean((-3, -2, -1))  # noqa: E731
    pred = _data_loss(outputs, batch, LearnerData.of(CFG, aux_target="next"))[1]["aux_loss"]
    rec = _data_loss(outputs, batch, LearnerData.of(CFG, aux_target="current"))[1]["aux_loss"]
    assert float(pred) == pytest.approx(error(batch.next_obs)[valid & ~ends].mean(), rel=1e-5)
    assert float(rec) == pytest.approx(error(batch.obs)[valid].mean(), rel=1e-5)
    assert abs(float(pred) - float(rec)) > 1e-3  # the two targets really differ here


def test_behaviour_cloning_loss_is_the_nll_of_the_actions_and_ignores_rewards() -> None:
    outputs, batch = tiny_batch(8)
    data = LearnerData.of(CFG, objective="bc")
    loss, metrics = _data_loss(outputs, batch, data)
    log_pi = np.asarray(jax.nn.log_softmax(outputs["logits"]), np.float64)
    nll = -np.take_along_axis(log_pi, np.asarray(batch.actions)[..., None], -1)[..., 0]
    expected = nll[np.asarray(batch.valid)].mean()
    assert float(loss) == pytest.approx(expected, rel=1e-5)  # no value, entropy or aux term
    assert float(metrics["policy_loss"]) == pytest.approx(expected, rel=1e-5)
    rng = np.random.default_rng(9)
    other = batch.replace(
        advantages=jnp.asarray(rng.normal(size=batch.advantages.shape) * 10, jnp.float32),
        returns=jnp.asarray(rng.normal(size=batch.returns.shape) * 10, jnp.float32),
        old_log_probs=jnp.asarray(rng.normal(size=batch.old_log_probs.shape) * 50, jnp.float32),
    )
    assert float(_data_loss(outputs, other, data)[0]) == float(loss)
    assert float(_data_loss(outputs, other, LearnerData.of(CFG))[0]) != float(_data_loss(outputs, batch, LearnerData.of(CFG))[0])


# ---------------------------------------------------------------------- rollouts
@pytest.fixture(scope="module")
def train_state():
    # Compiled without XLA's slow optimisations: initialisation is all compile, no work.
    return fast_jit(lambda key: create_train_state(key, CFG, NET))(jax.random.PRNGKey(0))


@fast_jit
def _unroll(params, carry, obs, starts):
    return NET.apply({"params": params}, carry, obs, starts, method="unroll")


@pytest.fixture(scope="module")
def rollout(train_state):
    """Random views and actions, episode ends mid-rollout, behaviour log-probs and values
    from the initial network (so the update starts on-policy)."""
    rng = np.random.default_rng(0)
    dones = rng.random((T, B)) < 0.08
    dones[10, 0] = dones[15, 1] = dones[16, 2] = True  # ends at / next to segment edges too
    starts = np.concatenate([np.array([[True, False, True, False]]), dones], 0)
    obs = rng.integers(0, 256, (T + 1, B) + OBS_SHAPE, dtype=np.uint8)
    carry = tuple(jnp.asarray(rng.normal(scale=0.3, size=(B, 192)), jnp.float32) for _ in range(2))
    actions = rng.integers(0, 3, (T, B)).astype(np.int32)
    out = _unroll(train_state.params, carry, obs, starts)
    log_pi = np.asarray(jax.nn.log_softmax(out.logits[:T]))
    return Rollout(
        obs=jnp.asarray(obs),
        actions=jnp.asarray(actions),
        rewards=jnp.asarray(rng.normal(size=(T, B)), jnp.float32),
        dones=jnp.asarray(dones),
        starts=jnp.asarray(starts),
        log_probs=jnp.asarray(np.take_along_axis(log_pi, actions[..., None], -1)[..., 0]),
        values=out.value[:T],
        init_carry=carry,
    )


# Configs are static, learner data traced: CFG and CFG_STOP differ only in data, so their
# learners share every compile. Forward-only pieces skip XLA's slow optimisations
# (compiling dominates); the gradient steps do not (unoptimised, their convolutions'
# backward passes run several times slower).
_recompute = fast_jit(recompute_targets, static_argnames=("apply_fn", "config"))
_gather = fast_jit(gather_minibatch, static_argnames="config")
_minibatch_update = jax.jit(minibatch_update, static_argnames="config")


@functools.partial(jax.jit, static_argnames="config")
def _vmapped_update(states, rollouts, keys, data, config=CFG):
    return jax.vmap(lambda s, r, k, d: ppo_update(s, r, k, config, d))(states, rollouts, keys, data)


@fast_jit
def _step(params, carry, obs, starts):
    return NET.apply({"params": params}, carry, obs, starts, method="step")


def test_recomputed_states_and_advantages_equal_a_fresh_unroll(train_state, rollout) -> None:
    """Stepping the network one obs at a time from init_carry gives the carries at segment
    starts, the values and (through the loop GAE) the advantages that the recompute gives;
    and a minibatch started from a stored carry reproduces the full unroll's outputs."""
    cfg = dataclasses.replace(CFG, normalize_advantages=False)
    targets = _recompute(train_state.params, train_state.apply_fn, rollout, cfg)
    obs, starts = np.asarray(rollout.obs), np.asarray(rollout.starts)
    carry, carries, values = rollout.init_carry, [], []
    for t in range(T + 1):
        # the carry the LSTM consumes at t (zeroed where an episode starts)
        carries.append(tuple(np.where(starts[t][:, None], 0.0, np.asarray(c)) for c in carry))
        carry, _, value, _ = _step(train_state.params, carry, obs[t], starts[t])
        values.append(np.asarray(value))
    values = np.stack(values)
    np.testing.assert_allclose(targets.values, values, atol=1e-5)
    for s in range(T // cfg.segment_len):
        for i in range(2):
            np.testing.assert_allclose(targets.seg_carry[i][s], carries[s * cfg.segment_len][i], atol=1e-5)
    rewards, dones = np.asarray(rollout.rewards), np.asarray(rollout.dones)
    ref_adv, ref_ret = gae_reference(rewards, values[:T], dones, values[T], cfg.gamma, cfg.gae_lambda)
    np.testing.assert_allclose(targets.advantages, ref_adv, atol=1e-4)
    np.testing.assert_allclose(targets.returns, ref_ret, atol=1e-4)

    # Segment-wise forward == the full unroll, for every segment.
    segments = np.arange(B * T // cfg.segment_len)
    batch = _gather(rollout, targets, segments, dataclasses.replace(cfg, minibatch_segments=8))
    out = _unroll(train_state.params, batch.init_carry, batch.obs, batch.starts)
    full = _unroll(train_state.params, rollout.init_carry, rollout.obs, rollout.starts)
    seg, env = np.asarray(segments) // B, np.asarray(segments) % B
    t_idx = seg[None] * cfg.segment_len + np.arange(cfg.segment_len)[:, None]
    np.testing.assert_allclose(out.value, np.asarray(full.value)[t_idx, env[None]], atol=1e-5)
    np.testing.assert_allclose(out.logits, np.asarray(full.logits)[t_idx, env[None]], atol=1e-5)
    # Normalised advantages: zero mean, unit std.
    adv = _recompute(train_state.params, train_state.apply_fn, rollout, CFG).advantages
    assert abs(float(adv.mean())) < 1e-5 and abs(float(adv.std()) - 1) < 1e-3


def reference_update(state, rollout, key, cfg, recompute=True, lr=1e-3):
    """The paper's schedule written as a plain Python loop over the public pieces."""
    data = LearnerData.of(cfg, lr=lr)
    initial = state
    targets = _recompute(state.params, state.apply_fn, rollout, cfg)
    n_seg = B * T // cfg.segment_len
    taken = 0
    hard = False
    for i in range(cfg.num_minibatches):
        if recompute and i % cfg.recompute_every == 0:
            targets = _recompute(state.params, state.apply_fn, rollout, cfg)
        segments = jax.random.choice(
            jax.random.fold_in(key, i), n_seg, (cfg.minibatch_segments,), replace=False
        )
        new_state, metrics = _minibatch_update(state, _gather(rollout, targets, segments, cfg), cfg, data)
        kl = float(metrics["approx_kl"])
        hard |= not kl <= cfg.hard_kl
        if not kl <= cfg.target_kl:
            break
        state, taken = new_state, taken + 1
    final = _recompute(state.params, state.apply_fn, rollout, cfg)
    log_ratio = np.asarray(final.log_probs) - np.asarray(rollout.log_probs)
    kl_final = float(np.mean(np.expm1(log_ratio) - log_ratio))
    if hard or not kl_final <= cfg.hard_kl:
        return initial, taken, True
    return state, taken, False


# Tree helpers in NumPy: eagerly, JAX would compile a little program per leaf shape.
def max_diff(a, b):
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in pairs)


def rel_diff(a, b, base):
    """|a - b| / |b - base| over whole param trees: two programs that compile the same maths
    differently agree to ~1e-6 (Adam's first steps amplify float noise in tiny gradients, so
    no per-element tolerance is safe)."""

    def norm(x, y):
        pairs = zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True)
        squares = (np.sum((np.asarray(u, np.float64) - np.asarray(v, np.float64)) ** 2) for u, v in pairs)
        return math.sqrt(float(sum(squares)))

    return norm(a, b) / norm(b, base)


def stack(*trees):
    return jax.tree.map(lambda *x: np.stack([np.asarray(y) for y in x]), *trees)


def agent(tree, i):
    return jax.tree.map(lambda x: np.asarray(x)[i], tree)


# One vmapped update of four learners covers the schedule, the early stop, the revert and
# frozen learners (compiling the update dominates these tests, so it is compiled once).
LEARNERS = {  # name: (learning rate, config)
    "revert": (1.0, CFG),  # the first step blows the KL far past the hard limit
    "paper": (1e-3, CFG),  # all 4 steps taken
    "frozen": (0.0, CFG),
    "stop": (1e-3, CFG_STOP),  # one step, then the early stop
}
IDX = {name: i for i, name in enumerate(LEARNERS)}


@pytest.fixture(scope="module")
def learners(train_state, rollout):
    """(inputs, outputs) of the vmapped update: inputs = (states, rollouts, keys, data)."""
    n = len(LEARNERS)
    states = stack(*[train_state] * n)
    data = stack(*[LearnerData.of(c, lr=lr) for lr, c in LEARNERS.values()])
    inputs = (states, stack(*[rollout] * n), jax.random.split(jax.random.PRNGKey(5), n), data)
    return inputs, _vmapped_update(*inputs)


def test_update_follows_the_papers_schedule(learners, rollout) -> None:
    """4 minibatches, recompute every 2: same result as the Python-loop reference; skipping
    the recomputes gives a measurably different one (so this test sees them)."""
    (states, _, keys, _), (new, metrics) = learners
    i = IDX["paper"]
    state = agent(states, i)
    ref, taken, reverted = reference_update(state, rollout, keys[i], CFG)
    assert int(metrics["num_steps"][i]) == taken == CFG.num_minibatches and not reverted
    assert not bool(metrics["reverted"][i]) and not bool(metrics["early_stopped"][i])
    assert int(new.step[i]) == 4 and int(new.opt_state.count[i]) == 4
    assert rel_diff(agent(new.params, i), ref.params, state.params) < 1e-3
    stale, _, _ = reference_update(state, rollout, keys[i], CFG, recompute=False)
    assert rel_diff(stale.params, ref.params, state.params) > 1e-2


def test_kl_early_stop_stops(learners, rollout) -> None:
    """target_kl tiny: minibatch 0 is on-policy (KL ~ 0) and taken; minibatch 1 measures the
    KL that step caused, exceeds the target, and it and all later ones are no-ops."""
    (states, _, keys, _), (new, metrics) = learners
    i = IDX["stop"]
    assert int(metrics["num_steps"][i]) == 1
    assert bool(metrics["early_stopped"][i]) and not bool(metrics["reverted"][i])
    assert float(metrics["approx_kl_last"][i]) > CFG_STOP.target_kl
    assert int(new.step[i]) == 1 and int(new.opt_state.count[i]) == 1
    state = agent(states, i)
    ref, taken, _ = reference_update(state, rollout, keys[i], CFG_STOP)
    assert taken == 1
    assert rel_diff(agent(new.params, i), ref.params, state.params) < 1e-3


def test_hard_kl_limit_reverts_params_and_optimizer_state_exactly(learners) -> None:
    (states, _, _, _), (new, metrics) = learners
    i = IDX["revert"]
    assert bool(metrics["reverted"][i])
    assert int(metrics["num_steps"][i]) >= 1  # a step was taken, then undone
    assert not float(metrics["approx_kl_last"][i]) <= CFG.hard_kl
    for x, y in zip(jax.tree.leaves(agent(states, i)), jax.tree.leaves(agent(new, i)), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))  # params, Adam moments, counts, step
    # The reverts of one learner leave the others alone (a select under vmap, not a cond).
    np.testing.assert_array_equal(metrics["reverted"], [True, False, False, False])


def test_frozen_learner_keeps_its_params(learners) -> None:
    (states, _, _, _), (new, metrics) = learners
    i = IDX["frozen"]
    before, after = jax.tree.leaves(agent(states, i).params), jax.tree.leaves(agent(new, i).params)
    for x, y in zip(before, after, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert int(metrics["num_steps"][i]) == 4 and int(new.opt_state.count[i]) == 4  # it ran, at lr 0


@functools.partial(jax.jit, static_argnames="config")
def _unbatched_update(state, rollout, key, data, config=CFG):
    return ppo_update(state, rollout, key, config, data)


def test_an_unbatched_update_skips_work_to_the_numbers_of_the_batched_one(learners) -> None:
    """One learner's update on its own (``run_loop="map"``) runs the early stop as
    ``lax.cond``s that skip the minibatches and recomputes after it; in the batched update
    they are selects of both branches. The same steps, stops and reverts, and the same
    parameters and Adam moments to float rounding, for each of the four learners."""
    (states, rollouts, keys, data), (new, metrics) = learners
    for i in IDX.values():
        one, one_metrics = _unbatched_update(agent(states, i), agent(rollouts, i), keys[i], agent(data, i))
        for field in ("num_steps", "early_stopped", "reverted"):
            assert np.asarray(one_metrics[field]) == np.asarray(metrics[field])[i], field
        for x, y in zip(jax.tree.leaves(one), jax.tree.leaves(agent(new, i)), strict=True):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-3, atol=1e-6)


def test_gradients_are_finite_and_reach_every_parameter(learners) -> None:
    """Every parameter of the 'paper' learner moved (so got a non-zero gradient through the
    policy, value or aux loss), by a finite amount; all loss metrics are finite."""
    (states, _, _, _), (new, metrics) = learners
    i = IDX["paper"]
    moved = jax.tree.map(lambda a, b: np.asarray(a)[i] - np.asarray(b)[i], new.params, states.params)
    for path, d in jax.tree_util.tree_flatten_with_path(moved)[0]:
        assert np.isfinite(d).all() and np.abs(d).max() > 0, jax.tree_util.keystr(path)
    for k in ("loss", "policy_loss", "value_loss", "entropy", "aux_loss", "approx_kl", "clip_frac"):
        assert np.isfinite(float(metrics[k][i])), k
    assert float(metrics["grad_norm"][i]) > 0


def test_same_key_same_result(learners, rollout) -> None:
    inputs, outputs = learners
    again = _vmapped_update(*inputs)
    for x, y in zip(jax.tree.leaves(outputs), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # The key matters (it picks the minibatches): the reference loop, which matches the
    # update for the same key (test above), lands elsewhere with another one.
    states = inputs[0]
    i = IDX["paper"]
    other, _, _ = reference_update(agent(states, i), rollout, jax.random.PRNGKey(99), CFG)
    assert rel_diff(other.params, agent(outputs[0].params, i), agent(states, i).params) > 1e-2


def test_scanned_minibatch_groups_equal_the_reference(train_state, rollout) -> None:
    """``minibatch_loop="scan"`` (what "auto" picks for the paper's 10 groups) runs the same
    schedule: 5 minibatches, recompute every 2, so two scanned groups and one unrolled rest."""
    cfg = dataclasses.replace(CFG, num_minibatches=5, minibatch_loop="scan", max_grad_norm=math.inf)
    assert cfg.scans_minibatches()
    state = train_state
    key = jax.random.PRNGKey(5)
    new, metrics = jax.jit(ppo_update, static_argnames="config")(state, rollout, key, cfg, LearnerData.of(cfg, lr=1e-3))
    ref, taken, reverted = reference_update(state, rollout, key, cfg)
    assert int(metrics["num_steps"]) == taken == 5 and not reverted and not bool(metrics["reverted"])
    assert rel_diff(new.params, ref.params, state.params) < 1e-3


@pytest.mark.parametrize("loop", ["unroll", "scan"])
def test_reusing_the_rollouts_targets_changes_no_numbers(train_state, rollout, loop) -> None:
    """A rollout that holds its acting network's segment carries and last value spares the
    first recompute (same parameters): the update is the one that recomputes, to float
    rounding, whether the groups after the first are unrolled or scanned."""
    cfg = dataclasses.replace(CFG, num_minibatches=3, recompute_every=1, minibatch_loop=loop, max_grad_norm=math.inf)
    data = LearnerData.of(cfg, lr=1e-3)
    acting = _recompute(train_state.params, train_state.apply_fn, rollout, cfg)
    with_targets = rollout.replace(seg_carry=acting.seg_carry, last_value=acting.values[T])
    update = jax.jit(ppo_update, static_argnames="config")
    key = jax.random.PRNGKey(5)
    reused, m_reused = update(train_state, with_targets, key, cfg, data)
    recomputed, m_recomputed = update(train_state, rollout, key, cfg, data)
    assert int(m_reused["num_steps"]) == int(m_recomputed["num_steps"]) == 3
    assert rel_diff(reused.params, recomputed.params, train_state.params) < 1e-4
    for name in ("loss", "value_loss", "approx_kl_final"):
        np.testing.assert_allclose(float(m_reused[name]), float(m_recomputed[name]), rtol=1e-4, atol=1e-7)
    if loop == "scan":  # the flag turns it off: the same update as without the rollout's targets
        off, _ = update(train_state, with_targets, key, dataclasses.replace(cfg, reuse_rollout=False), data)
        assert rel_diff(off.params, recomputed.params, train_state.params) < 1e-6
    # the targets themselves: what acting computed gives the recompute's targets
    from sociajax.agents.ppo import rollout_targets

    targets = rollout_targets(with_targets, cfg, data)
    np.testing.assert_allclose(targets.advantages, acting.advantages, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="seg_carry and last_value"):
        rollout_targets(rollout, cfg, data)


def test_auto_minibatch_loop_unrolls_short_updates_and_scans_long_ones() -> None:
    assert not PPOConfig(num_minibatches=8, recompute_every=2).scans_minibatches()  # 4 groups
    assert PPOConfig(num_minibatches=9, recompute_every=2).scans_minibatches()  # 5 groups
    assert PPOConfig().scans_minibatches()  # the paper's 10 groups
    assert not PPOConfig(minibatch_loop="unroll").scans_minibatches()
    assert PPOConfig(num_minibatches=2, minibatch_loop="scan").scans_minibatches()


# ---------------------------------------------------------------------- config
def test_defaults_are_the_papers() -> None:
    c = PPOConfig()
    assert (c.gamma, c.gae_lambda, c.clip_eps, c.value_coef, c.entropy_coef, c.aux_coef, c.lr) == (
        0.993, 0.97, 0.2, 0.1, 1e-5, 3.0, 1e-4,
    )
    assert (c.target_kl, c.hard_kl, c.num_minibatches, c.minibatch_segments) == (0.01, 0.03, 20, 512)
    assert (c.segment_len, c.recompute_every, c.num_envs) == (16, 2, 128)
    assert not c.clip_value_loss
    hash(c)  # static under jit


@pytest.mark.parametrize(
    "field, value",
    [
        ("lr", -1e-4),
        ("clip_eps", 0.0),
        ("clip_eps", -0.2),
        ("gamma", 1.5),
        ("gae_lambda", -0.1),
        ("entropy_coef", float("nan")),
        ("value_coef", float("inf")),
        ("target_kl", 0.0),
        ("max_grad_norm", 0.0),
        ("segment_len", 0),
        ("num_minibatches", 2.0),
        ("recompute_every", 0),
        ("minibatch_segments", True),
        ("clip_value_loss", 1),
        ("reuse_rollout", "yes"),
        ("minibatch_loop", "while"),
    ],
)
def test_bad_config_names_the_field(field: str, value) -> None:
    with pytest.raises(ValueError, match=field):
        PPOConfig(**{field: value})


def test_rollout_that_does_not_fit_names_the_field(rollout, train_state) -> None:
    with pytest.raises(ValueError, match="segment_len"):
        dataclasses.replace(CFG, segment_len=12).check_rollout(T, B)
    with pytest.raises(ValueError, match="num_envs"):
        dataclasses.replace(CFG, num_envs=8).check_rollout(T, B)
    with pytest.raises(ValueError, match="minibatch_segments"):
        dataclasses.replace(CFG, minibatch_segments=9).check_rollout(T, B)
    with pytest.raises(ValueError, match="segment_len"):  # raised before any tracing
        ppo_update(train_state, rollout, jax.random.PRNGKey(0), dataclasses.replace(CFG, segment_len=24))
    short = rollout.replace(obs=rollout.obs[:T])
    with pytest.raises(ValueError, match="T\\+1"):
        ppo_update(train_state, short, jax.random.PRNGKey(0), CFG)


def test_behaviour_cloning_fits_a_fixed_dataset(train_state, rollout) -> None:
    """Repeated BC updates on one rollout (another agent's actions) lower its NLL, whatever
    the rollout's log-probs say (no KL stop applies to a cloner)."""
    cloned = rollout.replace(log_probs=jnp.full_like(rollout.log_probs, -30.0))
    data = LearnerData.of(CFG, lr=3e-3, objective="bc")
    update = jax.jit(lambda s, k: ppo_update(s, cloned, k, CFG, data))
    state, first = update(train_state, jax.random.PRNGKey(0))
    assert int(first["num_steps"]) == CFG.num_minibatches and not bool(first["reverted"])
    for i in range(1, 6):
        state, metrics = update(state, jax.random.PRNGKey(i))
    assert float(metrics["bc_loss"]) < float(first["bc_loss"]) - 0.1


def test_a_learner_without_valid_steps_does_not_change(train_state, rollout) -> None:
    """An absent learner (no valid step) takes no step: params and Adam state unchanged."""
    absent = rollout.replace(valid=jnp.zeros(rollout.actions.shape, bool))
    new, metrics = jax.jit(lambda s: ppo_update(s, absent, jax.random.PRNGKey(0), CFG, LearnerData.of(CFG, lr=1e-3)))(
        train_state
    )
    assert int(metrics["num_steps"]) == 0 and not bool(metrics["reverted"])
    for x, y in zip(jax.tree.leaves(new), jax.tree.leaves(train_state), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert float(metrics["approx_kl_final"]) == 0.0  # no valid step to measure it on
