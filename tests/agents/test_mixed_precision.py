"""bfloat16 matmuls (``SocialNet.dtype`` / ``--network.dtype``) against float32 on one fixed
batch: forward outputs, the PPO loss and its gradients agree to bfloat16's rounding, every
parameter, gradient and optimizer moment stays float32, a short fit on the batch learns as much
in both precisions, and a bad dtype is refused by name.

Tolerances are set a few times above what was measured on CPU (2026-12-02, initial params,
fast-compiled): loss relative error 2e-6; gradients' global cosine 0.9999993, norm ratio
0.9993, worst leaf cosine 0.9991 (conv1's kernel); forward max |diff| of value 5e-4, decoder
output 3e-4, LSTM h 6e-4; the 30-step fit took the loss from 0.409 to 0.195 in float32 and to
0.194 in bfloat16 (drops 0.2136 and 0.2147). CPUs have no fast bfloat16: this checks numbers,
not speed.

One compiled program per dtype computes the checks (compiling dominates on 2 CPU cores: about
a minute in all when idle, 6 minutes at load 8); the fit compiles its own (marked slow).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sociajax.agents.network import DTYPES, HIDDEN, SocialNet, init_params
from sociajax.agents.ppo import Minibatch, PPOConfig, create_train_state, minibatch_update, ppo_loss
from sociajax.training import NetworkConfig, TrainConfig
from sociajax.training.trainer import make_train

L, M = 16, 8  # one minibatch: 8 segments of 16 steps
FIT_STEPS = 30
CFG = PPOConfig(num_envs=M, minibatch_segments=M, num_minibatches=1, segment_len=L, lr=1e-3)
# A few colours in 3x3-pixel tiles, like real views (floor, wall, goal, shadow, an agent).
PALETTE = np.array([(0, 0, 0), (74, 65, 42), (255, 255, 0), (35, 25, 30), (255, 0, 0)], np.uint8)
OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def fixed_batch(seed: int = 0) -> Minibatch:
    """A deterministic minibatch with an episode start mid-segment in three segments."""
    rng = np.random.default_rng(seed)
    tiles = rng.choice(len(PALETTE), p=[0.6, 0.2, 0.05, 0.1, 0.05], size=(L + 1, M, 7, 7))
    obs = PALETTE[tiles].repeat(3, 2).repeat(3, 3)
    starts = np.zeros((L + 1, M), bool)
    starts[0] = True
    starts[9, :3] = True
    normal = lambda: rng.standard_normal((L, M)).astype(np.float32)  # noqa: E731
    zeros = jnp.zeros((M, HIDDEN), jnp.float32)
    return Minibatch(
        init_carry=(zeros, zeros), obs=obs[:-1], next_obs=obs[1:], starts=starts[:-1],
        next_starts=starts[1:], valid=np.ones((L, M), bool),
        actions=rng.integers(0, 7, (L, M)).astype(np.int32),
        old_log_probs=(np.log(1 / 7) + 0.05 * normal()).astype(np.float32),
        old_values=normal(), advantages=normal(), returns=normal(),
    )


BATCH = fixed_batch()


def _check(dtype: str) -> dict:
    """Forward outputs, loss and gradients at the initial params, and one Adam step on them."""
    net = SocialNet(dtype=dtype)
    state = create_train_state(jax.random.PRNGKey(0), CFG, net)

    def program(state):
        out = net.apply({"params": state.params}, BATCH.init_carry, BATCH.obs, BATCH.starts, BATCH.actions,
                        method="unroll")
        (loss, _), grads = jax.value_and_grad(ppo_loss, has_aux=True)(state.params, net.apply, BATCH, CFG)
        direction, opt_state = state.tx.update(grads, state.opt_state, state.params)  # as minibatch_update
        params = jax.tree.map(lambda p, d: p - CFG.lr * d, state.params, direction)
        return dict(out=out, loss=loss, grads=grads, state=state.replace(params=params, opt_state=opt_state))

    return jax.jit(program, compiler_options=OPTIONS)(state)


def _fit(dtype: str) -> dict:
    """FIT_STEPS steps of ``minibatch_update`` on the batch: the loss before and after."""
    net = SocialNet(dtype=dtype)
    state = create_train_state(jax.random.PRNGKey(0), CFG, net)

    def program(state):
        def step(s, _):
            s, metrics = minibatch_update(s, BATCH, CFG)
            return s, metrics["loss"]

        state, losses = jax.lax.scan(step, state, None, FIT_STEPS)
        final, _ = ppo_loss(state.params, net.apply, BATCH, CFG)
        return dict(loss=losses[0], losses=losses, final=final, state=state)

    return jax.jit(program, compiler_options=OPTIONS)(state)


@pytest.fixture(scope="module")
def runs() -> dict:
    return {dtype: _check(dtype) for dtype in DTYPES}


def _flat(tree) -> jax.Array:
    return jnp.concatenate([x.ravel() for x in jax.tree.leaves(tree)])


def _cosine(a: jax.Array, b: jax.Array) -> float:
    return float(jnp.vdot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b) + 1e-30))


def test_forward_outputs_are_float32_and_close(runs) -> None:
    full, half = runs["float32"]["out"], runs["bfloat16"]["out"]
    for name in ("logits", "value", "aux_pred"):
        assert getattr(half, name).dtype == jnp.float32, name
    assert all(c.dtype == jnp.float32 for c in half.carry + half.step_carries)
    assert float(jnp.max(jnp.abs(half.value - full.value))) < 5e-3
    assert float(jnp.max(jnp.abs(half.logits - full.logits))) < 1e-3
    assert float(jnp.max(jnp.abs(half.aux_pred - full.aux_pred))) < 5e-3
    assert float(jnp.max(jnp.abs(half.carry[1] - full.carry[1]))) < 5e-3
    assert not jnp.array_equal(half.value, full.value)  # bfloat16 really ran


def test_loss_and_gradients_match_float32(runs) -> None:
    full, half = runs["float32"], runs["bfloat16"]
    assert half["loss"].dtype == jnp.float32
    assert abs(float(half["loss"] - full["loss"])) / abs(float(full["loss"])) < 1e-4
    g32, g16 = _flat(full["grads"]), _flat(half["grads"])
    assert _cosine(g32, g16) > 0.9999
    assert abs(float(jnp.linalg.norm(g16) / jnp.linalg.norm(g32)) - 1.0) < 0.01
    # Every leaf, biases included (a bias gradient summed in bfloat16 came out 13x too small).
    leaf_cos = jax.tree.map(_cosine, full["grads"], half["grads"])
    assert min(jax.tree.leaves(leaf_cos)) > 0.995, leaf_cos


def test_params_gradients_and_optimizer_stay_float32(runs) -> None:
    half = runs["bfloat16"]
    for tree in (half["grads"], half["state"].params, half["state"].opt_state):
        dtypes = {x.dtype for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)}
        assert dtypes == {jnp.dtype(jnp.float32)}


@pytest.mark.slow
def test_a_short_fit_learns_as_well_in_bfloat16() -> None:
    full, half = _fit("float32"), _fit("bfloat16")
    drop32 = float(full["loss"] - full["final"])
    drop16 = float(half["loss"] - half["final"])
    assert drop32 > 0.1 * abs(float(full["loss"]))  # the fit does learn...
    assert abs(drop16 - drop32) < 0.1 * drop32  # ...and as much in bfloat16
    assert np.all(np.isfinite(half["losses"]))
    assert {x.dtype for x in jax.tree.leaves(half["state"].params)} == {jnp.dtype(jnp.float32)}


def test_bad_dtype_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"SocialNet\.dtype .*'float16'"):
        init_params(SocialNet(dtype="float16"), jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"network\.dtype .*'float16'"):
        TrainConfig(network=NetworkConfig(dtype="float16"))
    with pytest.raises(ValueError, match=r"network\.dtype .*'half'"):
        TrainConfig.from_dict({"agents": [{}], "network": {"dtype": "half"}})


def test_dtype_is_part_of_the_compiled_program() -> None:
    base = TrainConfig(run_dir="unused", progress=False, baseline_episodes=0)
    half = dataclasses.replace(base, network=NetworkConfig(dtype="bfloat16"))
    assert make_train(base).program_key != make_train(half).program_key
    assert make_train(half).population.network.dtype == "bfloat16"
