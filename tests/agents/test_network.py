"""SocialNet: exact size, shapes, carry resets at episode starts, jit/vmap, step == sequence."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sociajax.agents.network import HIDDEN, OBS_SHAPE, PARAM_COUNT, Conv3x3, SocialNet, init_params, param_count

KEY = jax.random.PRNGKey(0)
NET = SocialNet()


# Test-side jits of tiny programs skip XLA's slow backend optimisations: compiling dominates.
def fast_jit(fun, **kwargs):
    options = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
    return jax.jit(fun, compiler_options=options, **kwargs)


T, B = 6, 2  # most calls share this shape, hence one compile


def random_obs(seed: int, lead: tuple[int, ...] = (T, B)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, lead + OBS_SHAPE, dtype=np.uint8)


def random_actions(seed: int, lead: tuple[int, ...] = (T, B)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 7, lead).astype(np.int32)


def random_carry(seed: int, batch: tuple[int, ...] = (B,)):
    rng = np.random.default_rng(seed)
    return tuple(jnp.asarray(rng.normal(size=batch + (HIDDEN,)), jnp.float32) for _ in range(2))


# Initialisation, compiled without XLA's slow optimisations (tests only: the values differ
# from the library's jitted init in the last bits).
fast_init = fast_jit(lambda key: init_params(NET, key))


@pytest.fixture(scope="module")
def params():
    return fast_init(KEY)


# Forward passes of tiny batches: compiling dominates, so skip XLA's slow optimisations.
@fast_jit
def run(params, carry, obs, starts, actions):
    return NET.apply({"params": params}, carry, obs, starts, actions)


@fast_jit
def run_step(params, carry, obs, starts, actions):
    return NET.apply({"params": params}, carry, obs, starts, actions, method="step")


def assert_outputs_close(a, b, atol=1e-5):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=1e-5)


# ---------------------------------------------------------------------- size
def test_param_count_is_papers_with_one_lstm_bias(params) -> None:
    """Layer by layer (kernel + bias):

    conv1   3*3*3*32 + 32                      =     896
    conv2   3*3*32*64 + 64                     =  18,496
    conv3   3*3*64*64 + 64                     =  36,928
    embed   576*192 + 192                      = 110,784
    lstm    4 gates * (192*192 + 192*192 + 192) = 295,680  (PyTorch adds a second 4*192 bias)
    value   (192*64 + 64) + (64*64 + 64) + (64*1 + 1) = 12,352 + 4,160 + 65  = 16,577
    policy  (192*64 + 64) + (64*64 + 64) + (64*7 + 7) = 12,352 + 4,160 + 455 = 16,967
    aux_fc  (192 + 7)*576 + 576                = 115,200
    deconv1 3*3*64*64 + 64                     =  36,928
    deconv2 3*3*64*32 + 32                     =  18,464
    deconv3 3*3*32*3 + 3                       =     867
    total                                      = 667,787 = 668,555 (paper, PyTorch) - 4*192
    """
    per_layer = {name: param_count(sub) for name, sub in params.items()}
    assert per_layer == {
        "conv1": 896,
        "conv2": 18_496,
        "conv3": 36_928,
        "embed": 110_784,
        "core": 295_680,
        "value1": 12_352,
        "value2": 4_160,
        "value_out": 65,
        "policy1": 12_352,
        "policy2": 4_160,
        "policy_out": 455,
        "aux_fc": 115_200,
        "deconv1": 36_928,
        "deconv2": 18_464,
        "deconv3": 867,
    }
    count = param_count(params)
    assert count == 667_787 == PARAM_COUNT
    assert count + 4 * HIDDEN == 668_555  # the paper's number, with PyTorch's b_hh


def test_vanilla_network_has_no_decoder() -> None:
    params = jax.eval_shape(lambda k: init_params(SocialNet(use_aux=False), k), KEY)  # shapes only
    assert param_count(params) == 667_787 - (115_200 + 36_928 + 18_464 + 867) == 496_328
    assert not any(k.startswith(("aux", "deconv")) for k in params)


# ---------------------------------------------------------------------- shapes
def test_shapes_and_dtypes(params) -> None:
    starts = np.zeros((T, B), bool)
    carry, logits, value, aux = run(params, NET.initial_carry(B), random_obs(0), starts, random_actions(0))
    assert [c.shape for c in carry] == [(B, HIDDEN)] * 2
    assert logits.shape == (T, B, 7) and value.shape == (T, B) and aux.shape == (T, B) + OBS_SHAPE
    assert logits.dtype == value.dtype == aux.dtype == jnp.float32
    # No actions: no prediction (shapes only, nothing to compile).
    no_actions = jax.eval_shape(
        lambda p: NET.apply({"params": p}, NET.initial_carry(B), random_obs(0), starts), params
    )
    assert no_actions[3] is None and no_actions[1].shape == (T, B, 7)
    carry, logits, value, aux = run_step(
        params, NET.initial_carry(B), random_obs(0)[0], starts[0], random_actions(0)[0]
    )
    assert logits.shape == (B, 7) and value.shape == (B,) and aux.shape == (B,) + OBS_SHAPE


def test_initial_carry_is_zeros_of_any_batch_shape() -> None:
    for batch, shape in [(4, (4, HIDDEN)), ((2, 3), (2, 3, HIDDEN)), ((), (HIDDEN,))]:
        c, h = NET.initial_carry(batch)
        assert c.shape == h.shape == shape and not c.any() and not h.any()


def test_first_policy_is_near_uniform(params) -> None:
    starts = np.ones((T, B), bool)
    _, logits, _, _ = run(params, NET.initial_carry(B), random_obs(1), starts, random_actions(1))
    entropy = -(jax.nn.softmax(logits) * jax.nn.log_softmax(logits)).sum(-1)
    assert float(entropy.min()) > np.log(7) - 1e-3


# ---------------------------------------------------------------------- resets
def test_carry_resets_exactly_at_episode_starts(params) -> None:
    """Env 0 starts an episode at t=6, env 1 never does: the joint 12-step run must equal
    (env 0) a run of obs[:6] from the carry then obs[6:] from zeros, and (env 1) a run of
    obs[:6] then obs[6:] continuing from the carry reached at t=6."""
    k = T
    obs = random_obs(2, (2 * T, B))
    actions = random_actions(3, (2 * T, B))
    starts = np.zeros((2 * T, B), bool)
    starts[k, 0] = True
    carry0 = random_carry(4)
    full = run(params, carry0, obs, starts, actions)

    no = np.zeros((T, B), bool)
    head = run(params, carry0, obs[:k], no, actions[:k])
    mid_carry = head[0]
    reset_carry = tuple(jnp.where(np.array([True, False])[:, None], 0.0, c) for c in mid_carry)
    tail = run(params, reset_carry, obs[k:], no, actions[k:])
    assert_outputs_close(full[0], tail[0])
    for i in (1, 2, 3):  # logits, value, aux
        assert_outputs_close(full[i], np.concatenate([head[i], tail[i]], 0))

    # The reset matters: without it env 0's outputs from t=6 on differ.
    unreset = run(params, mid_carry, obs[k:], no, actions[k:])
    assert np.abs(np.asarray(unreset[2][0, 0]) - np.asarray(full[2][k, 0])).max() > 1e-4


def test_start_at_step_zero_ignores_incoming_carry(params) -> None:
    obs, starts, actions = random_obs(5), np.zeros((T, B), bool), random_actions(5)
    starts[0] = True
    a = run(params, random_carry(6), obs, starts, actions)
    b = run(params, NET.initial_carry(B), obs, starts, actions)
    assert_outputs_close(a, b, atol=0)


# ---------------------------------------------------------------------- equivalences
def test_step_by_step_equals_sequence(params) -> None:
    obs, actions = random_obs(7), random_actions(9)
    starts = np.random.default_rng(8).random((T, B)) < 0.3
    carry = random_carry(10)
    seq = run(params, carry, obs, starts, actions)
    outs = []
    for i in range(T):
        carry, logits, value, aux = run_step(params, carry, obs[i], starts[i], actions[i])
        outs.append((logits, value, aux))
    assert_outputs_close(seq[0], carry)
    for j in range(3):
        assert_outputs_close(seq[j + 1], np.stack([o[j] for o in outs]))


def test_jit_and_vmap_over_agents_and_batch_shapes(params) -> None:
    """vmap over a stacked agent axis of params equals per-agent calls; an extra batch
    dimension equals the flattened batch."""
    other = fast_init(jax.random.PRNGKey(1))
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), params, other)
    obs = random_obs(11, (2, T, B))
    starts = np.zeros((2, T, B), bool)
    actions = random_actions(12, (2, T, B))
    carry = NET.initial_carry((2, B))
    vmapped = fast_jit(jax.vmap(lambda p, c, o, s, a: NET.apply({"params": p}, c, o, s, a)))
    out = vmapped(stacked, carry, obs, starts, actions)
    for i, p in enumerate((params, other)):
        single = run(p, NET.initial_carry(B), obs[i], starts[i], actions[i])
        assert_outputs_close(jax.tree.map(lambda x: x[i], out), single)

    # batch [1, B] == batch [B]
    (c, h), logits, value, aux = run(
        params, NET.initial_carry((1, B)), obs[0][:, None], starts[0][:, None], actions[0][:, None]
    )
    first = jax.tree.map(lambda x: x[0], out)
    assert_outputs_close(((c[0], h[0]), logits[:, 0], value[:, 0], aux[:, 0]), first)


def test_aux_prediction_depends_on_the_action(params) -> None:
    obs, starts = random_obs(13), np.ones((T, B), bool)
    preds = [
        run(params, NET.initial_carry(B), obs, starts, np.full((T, B), a, np.int32))[3] for a in range(3)
    ]
    assert float(jnp.abs(preds[0] - preds[1]).max()) > 1e-5
    assert float(jnp.abs(preds[1] - preds[2]).max()) > 1e-5


@pytest.mark.parametrize(
    "in_ch, out_ch, stride, size, transpose",
    [(3, 32, 3, 21, False), (32, 64, 1, 7, False), (64, 64, 1, 5, False),
     (64, 64, 1, 3, True), (64, 32, 1, 5, True), (32, 3, 3, 7, True)],
)
def test_matmul_convolutions_equal_flax_convolutions(in_ch, out_ch, stride, size, transpose) -> None:
    """Each of the network's six layers, written as patches @ kernel, matches ``nn.Conv`` /
    ``nn.ConvTranspose``: same parameter tree and initial values, same outputs."""
    from flax import linen as nn

    reference = (nn.ConvTranspose if transpose else nn.Conv)(
        out_ch, (3, 3), strides=(stride, stride), padding="VALID"
    )
    ours = Conv3x3(out_ch, stride=stride, transpose=transpose)
    x = jax.random.normal(KEY, (2, size, size, in_ch))
    params = ours.init(KEY, x)["params"]
    reference_params = reference.init(KEY, x)["params"]
    assert jax.tree.structure(params) == jax.tree.structure(reference_params)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(reference_params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    params = jax.tree.map(lambda p: p + jax.random.normal(jax.random.PRNGKey(1), p.shape), params)
    np.testing.assert_allclose(
        np.asarray(ours.apply({"params": params}, x)), np.asarray(reference.apply({"params": params}, x)),
        rtol=1e-5, atol=1e-4,
    )


@pytest.mark.parametrize("chunk", [7, 4])  # 21 frames: 3 whole chunks; 6 with a padded tail
def test_chunked_per_frame_layers_equal_whole_batch(params, chunk) -> None:
    """Running the encoder and decoder in chunks (``SocialNet.chunk``; the default on CPU)
    gives the numbers of running them on all frames at once, to float rounding (outputs and
    parameter gradients)."""
    obs = jax.random.randint(jax.random.PRNGKey(3), (7, 3) + OBS_SHAPE, 0, 256).astype(jnp.uint8)
    actions = jax.random.randint(jax.random.PRNGKey(4), (7, 3), 0, 7)
    starts = jnp.zeros((7, 3), bool).at[0].set(True)
    carry = SocialNet().initial_carry(3)

    def outputs(p, size):
        net = SocialNet(chunk=size)
        encoded = net.apply({"params": p}, obs, method=SocialNet.encode)
        out = net.apply({"params": p}, carry, obs[:-1], starts[:-1], actions[:-1], obs[1:], method="unroll")
        pred = net.apply({"params": p}, carry, obs[:-1], starts[:-1], actions[:-1], method="unroll").aux_pred
        return encoded, out.aux_error, pred

    chunked, whole = fast_jit(outputs, static_argnums=1)(params, chunk), outputs(params, 0)
    for a, b in zip(chunked, whole):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    loss = lambda size: jax.grad(lambda p: sum(jnp.sum(jnp.sin(x)) for x in outputs(p, size)))
    for a, b in zip(jax.tree.leaves(loss(chunk)(params)), jax.tree.leaves(loss(0)(params))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_aux_error_is_the_per_step_error_of_the_prediction(params) -> None:
    """``unroll(..., aux_target)`` scores the prediction it does not return: per step, the
    mean absolute error against ``target / 255`` (by hand here), masked nowhere."""
    obs, actions, starts = random_obs(20), random_actions(21), np.ones((T, B), bool)
    target = random_obs(22)
    pred = run(params, NET.initial_carry(B), obs, starts, actions)[3]
    out = fast_jit(lambda p: NET.apply({"params": p}, NET.initial_carry(B), obs, starts, actions, target,
                                       method="unroll"))(params)
    assert out.aux_pred is None
    by_hand = np.abs(np.asarray(pred, np.float64) - target / 255.0).mean((-3, -2, -1))
    np.testing.assert_allclose(out.aux_error, by_hand, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="aux_target needs action_for_aux"):
        NET.apply({"params": params}, NET.initial_carry(B), obs, starts, None, target, method="unroll")


def test_aux_error_switched_off_runs_no_decoder_and_is_zero(params) -> None:
    """``aux_enabled`` (traced: a learner whose auxiliary loss is off in its condition):
    True gives the error of the unswitched call, False zeros and no gradient into the
    decoder, and the decoder sits in a ``cond`` branch, so an unbatched update skips it."""
    obs, actions, starts = random_obs(20), random_actions(21), np.ones((T, B), bool)
    target = random_obs(22)

    def aux_error(p, enabled):
        return NET.apply({"params": p}, NET.initial_carry(B), obs, starts, actions, target, enabled,
                         method="unroll").aux_error

    plain = fast_jit(lambda p: aux_error(p, None))(params)
    np.testing.assert_allclose(fast_jit(aux_error)(params, True), plain, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(fast_jit(aux_error)(params, False), np.zeros((T, B)))
    grads = fast_jit(jax.grad(lambda p: jnp.sum(aux_error(p, False))))(params)
    for name in ("aux_fc", "deconv1", "deconv2", "deconv3"):
        assert all(not np.any(np.asarray(g)) for g in jax.tree.leaves(grads[name])), name
    assert "cond" in str(jax.make_jaxpr(aux_error)(params, False))


@pytest.mark.parametrize("unroll", [3, 16])  # 3 does not divide the 7 steps; 16 is more than all
def test_unrolled_lstm_equals_one_step_per_iteration(params, unroll) -> None:
    """``SocialNet.lstm_unroll`` (the default on GPU) changes the loop, not the numbers:
    outputs, carries at every step, and parameter gradients, with an episode start mid-way."""
    obs = jax.random.randint(jax.random.PRNGKey(5), (7, 3) + OBS_SHAPE, 0, 256).astype(jnp.uint8)
    starts = jnp.zeros((7, 3), bool).at[0].set(True).at[4, 1].set(True)
    carry = SocialNet().initial_carry(3)

    def outputs(p, size):
        out = SocialNet(lstm_unroll=size).apply({"params": p}, carry, obs, starts, method="unroll")
        return out.carry, out.logits, out.value, out.step_carries

    unrolled, looped = fast_jit(outputs, static_argnums=1)(params, unroll), outputs(params, 1)
    for a, b in zip(jax.tree.leaves(unrolled), jax.tree.leaves(looped)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    loss = lambda size: jax.grad(lambda p: sum(jnp.sum(jnp.sin(x)) for x in jax.tree.leaves(outputs(p, size))))
    for a, b in zip(jax.tree.leaves(loss(unroll)(params)), jax.tree.leaves(loss(1)(params))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=5e-6)


@pytest.mark.parametrize(("field", "value", "least"), [
    ("chunk", -1, 0), ("chunk", 2.5, 0), ("chunk", True, 0), ("lstm_unroll", 0, 1), ("lstm_unroll", 2.0, 1),
])
def test_bad_speed_settings_are_rejected_by_name(params, field, value, least) -> None:
    with pytest.raises(ValueError, match=f"SocialNet.{field} must be None or an int >= {least}, got {value!r}"):
        SocialNet(**{field: value}).apply({"params": params}, random_obs(0), method=SocialNet.encode)


@pytest.mark.parametrize("transpose", [False, True])
def test_conv3x3_rejects_strides_other_than_1_and_3(transpose) -> None:
    x = jnp.zeros((1, 7, 7, 4))
    with pytest.raises(ValueError, match="stride must be 1 or 3, got 2"):
        Conv3x3(8, stride=2, transpose=transpose).init(jax.random.PRNGKey(0), x)


def test_the_lstm_is_flaxs_optimized_lstm_cell() -> None:
    """SocialNet's LSTM declares nn.OptimizedLSTMCell's parameters (names, shapes, initial
    values) and computes its step exactly in float32, so checkpoints and numbers carry over."""
    from flax import linen as nn

    from sociajax.agents.network import _LSTMCellParams, _lstm_cell

    hidden, features, batch = 16, 24, 5
    key = jax.random.PRNGKey(7)
    x = jax.random.normal(jax.random.PRNGKey(1), (batch, features))
    carry = tuple(jax.random.normal(k, (batch, hidden)) for k in jax.random.split(jax.random.PRNGKey(2)))
    cell = nn.OptimizedLSTMCell(hidden)
    theirs = cell.init(key, carry, x)["params"]
    ours_module = _LSTMCellParams(hidden, features)
    ours = ours_module.init(key)["params"]
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        np.testing.assert_array_equal(a, b)
    expected, _ = cell.apply({"params": theirs}, carry, x)
    got = _lstm_cell(ours_module.apply({"params": ours}), carry, x, jnp.float32)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_the_view_shape_is_checked_by_name() -> None:
    for bad in ((20, 20, 3), (21, 18, 3), (12, 12, 3), (21, 21)):
        with pytest.raises(ValueError, match="SocialNet.obs_shape must be"):
            init_params(SocialNet(obs_shape=bad), jax.random.PRNGKey(0))
    # a larger view builds its own encoder grid (27 px: 9x9 tiles -> a 5x5 feature map)
    params = init_params(SocialNet(obs_shape=(27, 27, 3)), jax.random.PRNGKey(0))
    assert params["embed"]["kernel"].shape == (5 * 5 * 64, HIDDEN)
