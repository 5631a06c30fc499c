"""The learners' network: a CNN-LSTM actor-critic with an auxiliary next-observation decoder.

Architecture (paper, Appendix 7.7; shapes for one 21x21x3 egocentric view)::

    obs uint8 [21, 21, 3] -> / 255
    Conv 3->32, 3x3, stride 3, VALID   -> [7, 7, 32]   leaky ReLU
    Conv 32->64, 3x3, stride 1, VALID  -> [5, 5, 64]   leaky ReLU
    Conv 64->64, 3x3, stride 1, VALID  -> [3, 3, 64]   leaky ReLU
    flatten 576 -> Dense 192, tanh
    LSTM 192 (carry reset to zeros where an episode starts)
    value head:  Dense 64 tanh, Dense 64 tanh, Dense 1
    policy head: Dense 64 tanh, Dense 64 tanh, Dense 7 (logits)
    aux decoder: concat(LSTM output 192, one-hot action 7) -> Dense 576, tanh -> [3, 3, 64]
                 ConvT 64->64 3x3 VALID -> [5, 5, 64]  leaky ReLU
                 ConvT 64->32 3x3 VALID -> [7, 7, 32]  leaky ReLU
                 ConvT 32->3 3x3 stride 3 VALID -> [21, 21, 3]  (no output activation)

The decoder's first layer is a Dense with tanh, like every non-convolutional layer in the
paper (7.7); without it, it and the first transposed convolution would collapse into one
linear map. The decoder predicts an observation scaled to [0, 1] (the next one for the
paper's PRED loss, the current one for REC; see ``agents.ppo``) under a mean-absolute-error
loss. Its last layer is linear, on purpose: with an L1 loss a
sigmoid output has gradient ``sign(err) * sigmoid'(z)``, which vanishes when the sigmoid
saturates on the wrong side, so a saturated pixel can stay wrong for good; a linear output
gets a constant-size gradient and L1 drives it to the (conditional) median exactly, including
the many pixels that are exactly 0 or 1. Clip to [0, 1] only for display. (The paper does not
name the final activation; the released code used a ReLU.)

Parameter count: **667,787**. The paper's 668,555 counts PyTorch's two LSTM bias vectors
(``b_ih`` and ``b_hh``, 2 x 4 x 192); Flax's LSTM cells have one bias per gate, which is the
same function class (the two PyTorch biases only ever appear as their sum):
668,555 - 4 x 192 = 667,787. See ``tests/agents/test_network.py`` for the layer-by-layer sum.

Initialisation (the paper does not say): Flax defaults (LeCun-normal kernels, zero biases)
except the last policy layer (orthogonal, scale 0.01, so the first policy is near uniform,
as recommended by Andrychowicz et al. 2020, which the paper follows) and the last value layer
(orthogonal, scale 1).

Time convention: every call takes a time sequence ``obs [T, B, 21, 21, 3]`` and
``starts [T, B]``; ``starts[t]`` True means ``obs[t]`` is the first observation of an episode,
so the carry is reset to zeros *before* step ``t`` is processed (PureJaxRL's ``ScannedRNN``
idea: ``jnp.where(start, zeros, carry)`` inside the scan, no ``cond``). ``B`` may be any
tuple of batch dimensions, including none.

Precision (``SocialNet.dtype``): "float32" (default) or "bfloat16". With "bfloat16" the
matmuls of the convolutions, transposed convolutions, the embedding, the LSTM's gate
projections and the heads' hidden layers run in bfloat16; the parameters stay float32 (cast
at each use, so their gradients and Adam's moments are float32), and the LSTM carry, the
logits and value (their last layers run in float32), the decoder's error and every loss are
float32. GPUs multiply bfloat16 at several times their float32 (TF32) rate; CPUs mostly do
not, so there it is a correctness check only (``tests/agents/test_mixed_precision.py``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax import struct

if TYPE_CHECKING:
    import distrax

NUM_ACTIONS = 7
OBS_SHAPE = (21, 21, 3)
HIDDEN = 192
PARAM_COUNT = 667_787  # with aux decoder, one LSTM bias per gate (PyTorch count: 668,555)

Carry = tuple  # (c, h), each float32 [*batch, HIDDEN]
DTYPES = ("float32", "bfloat16")  # SocialNet.dtype / NetworkConfig.dtype: the matmuls' precision


def check_dtype(owner: str, dtype: Any) -> None:
    """Raise a ValueError naming ``owner.dtype`` unless ``dtype`` is one of :data:`DTYPES`."""
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"{owner}.dtype must be one of {DTYPES}, got {dtype!r}")


@struct.dataclass
class UnrollOutput:
    """Everything one unroll produces. Leading axes [T, *batch].

    carry:        final (c, h) after the last step.
    logits:       float32 [T, *batch, num_actions].
    value:        float32 [T, *batch].
    aux_pred:     float32 [T, *batch, 21, 21, 3] or None (no decoder / no actions given /
                  ``aux_target`` given).
    step_carries: (c, h), each [T, *batch, HIDDEN]: the carry the LSTM consumed at step t,
                  i.e. after the reset (zeros wherever ``starts[t]``). Slicing it at a segment
                  start gives the stored state PPO's minibatches start from.
    aux_error:    float32 [T, *batch] or None: per step, the mean absolute error of the
                  prediction against ``aux_target / 255`` (only when ``aux_target`` is given).
    """

    carry: Carry
    logits: jax.Array
    value: jax.Array
    aux_pred: Optional[jax.Array]
    step_carries: Carry
    aux_error: Optional[jax.Array] = None


class _ResetLSTMStep(nn.Module):
    """One step of :func:`ResetLSTM`: zero the carry where ``start``, then the LSTM cell."""

    features: int = HIDDEN
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, carry: Carry, xs: tuple[jax.Array, jax.Array]):
        x, start = xs
        keep = jnp.logical_not(start)[..., None]
        carry = jax.tree.map(lambda c: jnp.where(keep, c, jnp.zeros_like(c)), carry)
        cell = nn.OptimizedLSTMCell(self.features, name="cell")
        if self.is_initializing() or jnp.dtype(self.dtype) == jnp.float32:
            new_carry, y = cell(carry, x)
            return new_carry, (y, carry)
        new_carry = _lstm_cell(self.variables["params"]["cell"], carry, x, self.dtype)
        return new_carry, (new_carry[1], carry)


def _lstm_cell(params: Any, carry: Carry, x: jax.Array, dtype: Any) -> Carry:
    """``nn.OptimizedLSTMCell``'s step on its ``params`` with the two gate projections in
    ``dtype`` and everything else (bias, gates, carry) in float32: a float32 carry keeps
    small updates of c over hundreds of steps, and float32 bias sums keep its gradient exact."""
    c, h = carry
    gates = ("i", "f", "g", "o")
    w_in = jnp.concatenate([params[f"i{g}"]["kernel"] for g in gates], -1)
    w_h = jnp.concatenate([params[f"h{g}"]["kernel"] for g in gates], -1)
    bias = jnp.concatenate([params[f"h{g}"]["bias"] for g in gates], -1)
    z = _matmul(x, w_in, dtype).astype(jnp.float32) + _matmul(h, w_h, dtype).astype(jnp.float32) + bias
    zi, zf, zg, zo = jnp.split(z, 4, axis=-1)
    new_c = jax.nn.sigmoid(zf) * c + jax.nn.sigmoid(zi) * jnp.tanh(zg)
    return new_c, jax.nn.sigmoid(zo) * jnp.tanh(new_c)


def _matmul(x: jax.Array, kernel: jax.Array, dtype: Any) -> jax.Array:
    """``x @ kernel`` with both cast to ``dtype`` (the matmul's precision)."""
    return x.astype(dtype) @ kernel.astype(dtype)


def _add_bias(y: jax.Array, bias: jax.Array) -> jax.Array:
    """``y + bias`` summed in float32, returned in ``y``'s dtype. The bias's gradient sums the
    output's gradient over every frame and pixel: in bfloat16 that sum stalls (measured: the
    last transposed convolution's bias gradient came out 13x too small on 128 frames)."""
    return (y.astype(jnp.float32) + bias.astype(jnp.float32)).astype(y.dtype)


def _dense(params: Any, x: jax.Array, dtype: Any) -> jax.Array:
    """``nn.Dense`` on explicit params: the matmul in ``dtype``, the bias added in float32."""
    return _add_bias(_matmul(x, params["kernel"], dtype), params["bias"])


def ResetLSTM(
    features: int = HIDDEN, unroll: int = 1, name: Optional[str] = None, dtype: Any = jnp.float32
) -> nn.Module:
    """An LSTM scanned over time whose carry is zeroed where ``starts[t]`` is True.

    ``__call__(carry, (x [T, *batch, F], starts [T, *batch]))`` returns
    ``(final_carry, (outputs [T, *batch, H], step_carries))``. ``unroll`` steps run per loop
    iteration (``lax.scan``'s ``unroll``): the same numbers, fewer iterations. ``dtype``: the
    gate projections' precision (carry and outputs stay float32).
    """
    scanned = nn.scan(
        _ResetLSTMStep,
        variable_broadcast="params",
        split_rngs={"params": False},
        in_axes=0,
        out_axes=0,
        unroll=unroll,
    )
    return scanned(features, dtype, name=name)


def _patches(x: jax.Array, stride: int) -> jax.Array:
    """[N, H, W, C] -> [N, H', W', 9C]: each 3x3 VALID window as one vector, ordered
    (dy, dx, c) like a [3, 3, C, F] kernel. Stride 3 windows do not overlap (a reshape)."""
    n, h, w, c = x.shape
    if stride == 3:
        x = x.reshape(n, h // 3, 3, w // 3, 3, c).transpose(0, 1, 3, 2, 4, 5)
        return x.reshape(n, h // 3, w // 3, 9 * c)
    return jnp.concatenate([x[:, dy : dy + h - 2, dx : dx + w - 2] for dy in range(3) for dx in range(3)], -1)


class Conv3x3(nn.Module):
    """3x3 VALID convolution (stride 1 or 3), or its transpose, as one matrix product.

    Same parameters (``kernel`` [3, 3, C, F], ``bias`` [F]), initialisation and outputs as
    ``nn.Conv`` / ``nn.ConvTranspose`` with ``kernel_size=(3, 3), padding="VALID"`` (tested to
    float rounding), but written as patches @ kernel: on CPU XLA's convolutions with 3 to 64
    channels on 3x3 to 21x21 images run far below matmul speed (the whole PPO update became
    2.5x faster). A transpose multiplies each input pixel by the nine kernel taps at once, then
    places the results: stride 3 as non-overlapping 3x3 blocks (kernel flipped), stride 1 by
    overlap-adding nine shifted planes, so no multiply is spent on zero padding.
    """

    features: int
    stride: int = 1
    transpose: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        return conv3x3(x, kernel, bias, self.stride, self.transpose)


def conv3x3(x: jax.Array, kernel: jax.Array, bias: jax.Array, stride: int = 1, transpose: bool = False) -> jax.Array:
    """:class:`Conv3x3`'s computation on explicit parameters (x [N, H, W, C])."""
    if stride not in (1, 3):
        raise ValueError(f"Conv3x3.stride must be 1 or 3, got {stride}")
    features = kernel.shape[-1]
    if not transpose:
        return _add_bias(_patches(x, stride) @ kernel.reshape(-1, features), bias)
    # Each input pixel times each kernel tap: [N, H, W, 3, 3, F], one matmul.
    n, h, w, c = x.shape
    taps = kernel.transpose(2, 0, 1, 3).reshape(c, 9 * features)
    blocks = (x.reshape(-1, c) @ taps).reshape(n, h, w, 3, 3, features)
    if stride == 3:  # non-overlapping 3x3 output blocks, kernel flipped
        blocks = blocks[:, :, :, ::-1, ::-1]
        return _add_bias(blocks.transpose(0, 1, 3, 2, 4, 5).reshape(n, 3 * h, 3 * w, features), bias)
    # Stride 1: tap (dy, dx) of pixel (i, j) lands on output (i + 2 - dy, j + 2 - dx);
    # overlap-add the nine shifted planes (no multiplies by zero padding).
    pad = lambda a, dy, dx: jnp.pad(a, ((0, 0), (2 - dy, dy), (2 - dx, dx), (0, 0)))
    return _add_bias(sum(pad(blocks[:, :, :, dy, dx], dy, dx) for dy in range(3) for dx in range(3)), bias)


def _encoder(layers: Sequence[Any], x: jax.Array) -> jax.Array:
    """uint8 [N, 21, 21, 3] -> [N, H] through ``layers`` = (conv1, conv2, conv3, embed), in the
    layers' dtype (each casts its input)."""
    x = x.astype(jnp.float32) / 255.0
    for conv in layers[:3]:
        x = nn.leaky_relu(conv(x))
    return jnp.tanh(layers[3](x.reshape(x.shape[0], -1)))


def _decoder(layers: Sequence[Any], z: jax.Array) -> jax.Array:
    """[N, H + A] -> [N, 21, 21, 3] through ``layers`` = (aux_fc, deconv1, deconv2, deconv3),
    in the layers' dtype."""
    z = jnp.tanh(layers[0](z)).reshape(z.shape[0], 3, 3, 64)
    z = nn.leaky_relu(layers[1](z))
    z = nn.leaky_relu(layers[2](z))
    return layers[3](z)


# (name, stride, transpose) of each per-frame layer; stride None: a Dense layer.
_ENCODER = (("conv1", 3, False), ("conv2", 1, False), ("conv3", 1, False), ("embed", None, False))
_DECODER = (("aux_fc", None, False), ("deconv1", 1, True), ("deconv2", 1, True), ("deconv3", 3, True))


def _layer_maps(params: Any, spec: Sequence[tuple], dtype: Any = jnp.float32) -> tuple[Any, ...]:
    """The layers of ``spec`` as pure functions of explicit ``params`` (which ``lax.map`` and
    ``jax.checkpoint`` may close over), computing what the submodules compute. Each casts its
    parameters and input to ``dtype`` (the computation's precision; the cast of a float32
    parameter passes its gradient back in float32; float32 casts are no-ops)."""

    def layer(name: str, stride: Optional[int], transpose: bool) -> Any:
        kernel, bias = params[name]["kernel"].astype(dtype), params[name]["bias"]
        if stride is None:
            return lambda x: _add_bias(x.astype(dtype) @ kernel, bias)
        conv = functools.partial(conv3x3, kernel=kernel, bias=bias, stride=stride, transpose=transpose)
        return lambda x: conv(x.astype(dtype))

    return tuple(layer(*entry) for entry in spec)


def _in_chunks(fn: Any, xs: Any, chunk: int) -> Any:
    """``fn`` over the leading axis of the arrays in ``xs`` in chunks of ``chunk`` rows, one
    after another (``lax.map``; the last chunk zero-padded). The numbers of ``fn(xs)``, row
    for row, to float rounding.

    Each chunk is rematerialised (``jax.checkpoint``): a gradient recomputes the chunk's
    forward pass next to its backward pass, so neither ever leaves the cache, instead of
    storing every chunk's activations for later."""
    n = jax.tree.leaves(xs)[0].shape[0]
    pad = -n % chunk

    def split(x: jax.Array) -> jax.Array:
        x = jnp.pad(x, ((0, pad),) + ((0, 0),) * (x.ndim - 1))
        return x.reshape((-1, chunk) + x.shape[1:])

    out = jax.lax.map(jax.checkpoint(fn), jax.tree.map(split, xs))
    return jax.tree.map(lambda o: o.reshape((n + pad,) + o.shape[2:])[:n], out)


def frame_abs_error(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean absolute error per frame of a prediction [..., 21, 21, 3] on the [0, 1] scale
    against a uint8 observation [..., 21, 21, 3] -> [...] (the auxiliary loss before its
    masked mean)."""
    return jnp.mean(jnp.abs(pred - target.astype(jnp.float32) / 255.0), axis=(-3, -2, -1))


def default_chunk() -> int:
    """Frames per chunk for the per-frame layers (encoder, decoder) when ``SocialNet.chunk``
    is None: 128 on CPU, 0 (the whole batch at once) elsewhere.

    On CPU the convolutions' patch matrices and the transposed convolutions' tap planes for
    thousands of frames (100+ MB) spill out of cache, and the layers run at memory speed;
    small chunks stay in it. Measured on 2 cores: encoding 4,096 frames 103 -> 27 ms; the
    gradient over a paper minibatch (8,192 frames) of the encoder 477 -> 193 ms and of the
    decoder with its error 651 -> 313-359 ms (rematerialised chunks, see :func:`_in_chunks`);
    a paper-schedule update of 2 learners 40 s with chunks of 256, 36 s with 128 or 64. GPUs
    want the whole batch at once."""
    return 128 if jax.default_backend() == "cpu" else 0


def default_lstm_unroll() -> int:
    """LSTM steps per loop iteration when ``SocialNet.lstm_unroll`` is None: 1 on CPU, 8 elsewhere.

    An update unrolls the LSTM over the whole rollout 11 times (257 steps each, at the paper's
    schedule). XLA:GPU runs each iteration of a loop as its own kernel launches plus a
    synchronisation with the host, a fixed cost much larger than one LSTM step of 128 envs, so
    fewer, longer iterations win there (not yet timed on a GPU: ``benchmarks/gpu_suite.sh``
    compares 1 and 8). On CPU a loop iteration costs little and unrolling is slower: a
    recompute of 2 learners over 128 envs x 257 steps took 657-671 ms with 1 step per
    iteration, 717-735 ms with 8 (2 cores)."""
    return 1 if jax.default_backend() == "cpu" else 8


_LEAST = {"chunk": 0, "lstm_unroll": 1}


def check_speed_settings(owner: str, **settings: Optional[int]) -> None:
    """Raise a ValueError naming ``owner.field`` unless each of ``chunk`` (>= 0) and
    ``lstm_unroll`` (>= 1) given is None or an int in range."""
    for field, value in settings.items():
        least = _LEAST[field]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise ValueError(f"{owner}.{field} must be None or an int >= {least}, got {value!r}")


def _flatten_lead(x: jax.Array, tail: int) -> tuple[jax.Array, tuple[int, ...]]:
    """Merge all but the last ``tail`` axes (convs want exactly one batch axis)."""
    lead = x.shape[: x.ndim - tail]
    return x.reshape((-1,) + x.shape[x.ndim - tail :]), lead


class SocialNet(nn.Module):
    """CNN-LSTM actor-critic with the auxiliary next-observation decoder (see module doc).

    ``SocialNet(num_actions=7, use_aux=True)``. ``use_aux=False`` drops the decoder (the
    paper's "vanilla PPO" baseline): 496,328 parameters.

    ``chunk``: the encoder and decoder, which act on each frame alone, run over more than
    ``2 * chunk`` frames ``chunk`` frames at a time (the same numbers to float rounding,
    gradients included); 0 runs them on all frames at once; None (default) takes
    :func:`default_chunk` (128 on CPU, 0 on GPU). ``lstm_unroll``: LSTM steps per loop iteration
    (>= 1); None takes :func:`default_lstm_unroll` (1 on CPU, 8 on GPU). Both are speed only: no
    parameter depends on them. ``dtype``: "float32" or "bfloat16", the matmuls' precision
    (module doc, "Precision"); parameters are float32 either way, so checkpoints are shared.
    """

    num_actions: int = NUM_ACTIONS
    use_aux: bool = True
    hidden_size: int = HIDDEN
    chunk: Optional[int] = None
    lstm_unroll: Optional[int] = None
    dtype: str = "float32"

    @property
    def compute_dtype(self) -> Any:
        """The jnp dtype of the matmuls (from ``dtype``)."""
        return jnp.dtype(self.dtype)

    def setup(self) -> None:
        check_speed_settings("SocialNet", chunk=self.chunk, lstm_unroll=self.lstm_unroll)
        check_dtype("SocialNet", self.dtype)
        self.conv1 = Conv3x3(32, stride=3)
        self.conv2 = Conv3x3(64)
        self.conv3 = Conv3x3(64)
        self.embed = nn.Dense(self.hidden_size)
        unroll = default_lstm_unroll() if self.lstm_unroll is None else self.lstm_unroll
        self.core = ResetLSTM(self.hidden_size, unroll, dtype=self.compute_dtype)
        self.value1 = nn.Dense(64)
        self.value2 = nn.Dense(64)
        self.value_out = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))
        self.policy1 = nn.Dense(64)
        self.policy2 = nn.Dense(64)
        self.policy_out = nn.Dense(self.num_actions, kernel_init=nn.initializers.orthogonal(0.01))
        if self.use_aux:
            self.aux_fc = nn.Dense(3 * 3 * 64)
            self.deconv1 = Conv3x3(64, transpose=True)
            self.deconv2 = Conv3x3(32, transpose=True)
            self.deconv3 = Conv3x3(OBS_SHAPE[-1], stride=3, transpose=True)

    # ------------------------------------------------------------------ pieces
    def initial_carry(self, batch_shape: Union[int, Sequence[int]] = ()) -> Carry:
        """Zero (c, h), each float32 [*batch_shape, hidden_size]. Needs no params."""
        if isinstance(batch_shape, int):
            batch_shape = (batch_shape,)
        zeros = jnp.zeros(tuple(batch_shape) + (self.hidden_size,), jnp.float32)
        return (zeros, zeros)

    def _per_frame(self, body: Any, spec: Sequence[tuple], xs: Any) -> Any:
        """``body(layers, xs)`` for the layers named in ``spec``, over arrays xs [N, ...], in
        chunks of ``chunk`` frames when N is large enough (see the class doc)."""
        if self.is_initializing():  # the submodules themselves, so that they create their params
            return body(tuple(getattr(self, name) for name, *_ in spec), xs)
        params = {name: getattr(self, name).variables["params"] for name, *_ in spec}
        layers = _layer_maps(params, spec, self.compute_dtype)
        chunk = default_chunk() if self.chunk is None else self.chunk
        if chunk > 0 and jax.tree.leaves(xs)[0].shape[0] > 2 * chunk:
            return _in_chunks(functools.partial(body, layers), xs, chunk)
        return body(layers, xs)

    def encode(self, obs: jax.Array) -> jax.Array:
        """uint8 [..., 21, 21, 3] -> [..., hidden_size] (convs + Dense + tanh), in ``dtype``."""
        x, lead = _flatten_lead(obs, 3)
        return self._per_frame(_encoder, _ENCODER, x).reshape(lead + (self.hidden_size,))

    def heads(self, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        """LSTM output [..., H] -> (logits [..., num_actions], value [...]), float32. The hidden
        layers run in ``dtype``, the last ones in float32 (tiny matmuls; the value regresses
        onto returns that bfloat16 would round by up to 0.4%)."""
        low, f32 = self.compute_dtype, jnp.float32

        def dense(name: str, x: jax.Array, dtype: Any) -> jax.Array:
            layer = getattr(self, name)
            return layer(x) if self.is_initializing() else _dense(layer.variables["params"], x, dtype)

        v = jnp.tanh(dense("value1", h, low))
        v = jnp.tanh(dense("value2", v, low))
        value = dense("value_out", v, f32)[..., 0]
        p = jnp.tanh(dense("policy1", h, low))
        p = jnp.tanh(dense("policy2", p, low))
        return dense("policy_out", p, f32), value

    def decode(self, h: jax.Array, actions: jax.Array) -> jax.Array:
        """(LSTM output [..., H], actions int [...]) -> predicted next obs [..., 21, 21, 3]
        on the [0, 1] scale (linear output; see module doc), float32."""
        z, lead = _flatten_lead(self._decoder_input(h, actions), 1)
        return self._per_frame(_decoder, _DECODER, z).reshape(lead + OBS_SHAPE).astype(jnp.float32)

    def aux_error(self, h: jax.Array, actions: jax.Array, target: jax.Array) -> jax.Array:
        """``frame_abs_error(decode(h, actions), target)`` [...] for uint8 targets
        [..., 21, 21, 3], without holding all predictions at once: with chunking each chunk's
        error is taken where its prediction is made (the training loss's path)."""
        z, lead = _flatten_lead(self._decoder_input(h, actions), 1)
        target = target.reshape((-1,) + OBS_SHAPE)
        body = lambda layers, zt: frame_abs_error(_decoder(layers, zt[0]).astype(jnp.float32), zt[1])
        return self._per_frame(body, _DECODER, (z, target)).reshape(lead)

    def _decoder_input(self, h: jax.Array, actions: jax.Array) -> jax.Array:
        return jnp.concatenate([h, jax.nn.one_hot(actions, self.num_actions, dtype=h.dtype)], -1)

    # ------------------------------------------------------------------ calls
    def unroll(
        self,
        carry: Carry,
        obs: jax.Array,
        starts: jax.Array,
        action_for_aux: Optional[jax.Array] = None,
        aux_target: Optional[jax.Array] = None,
    ) -> UnrollOutput:
        """Run a time sequence. obs uint8 [T, *B, 21, 21, 3]; starts bool [T, *B];
        carry (c, h) [*B, H]; action_for_aux int [T, *B] or None; aux_target uint8
        [T, *B, 21, 21, 3] or None (the next observations: then ``aux_error`` is returned in
        place of ``aux_pred``, see :meth:`aux_error`). See :class:`UnrollOutput`."""
        x = self.encode(obs)
        carry, (h, step_carries) = self.core(carry, (x, jnp.asarray(starts, bool)))
        logits, value = self.heads(h)
        aux_pred = aux_error = None
        if aux_target is not None and action_for_aux is None:
            raise ValueError("SocialNet.unroll: aux_target needs action_for_aux")
        if self.use_aux:
            if aux_target is not None:
                aux_error = self.aux_error(h, jnp.asarray(action_for_aux, jnp.int32), aux_target)
            elif action_for_aux is not None:
                aux_pred = self.decode(h, jnp.asarray(action_for_aux, jnp.int32))
            elif self.is_initializing():  # create the decoder's params all the same
                self.decode(h, jnp.zeros(h.shape[:-1], jnp.int32))
        return UnrollOutput(carry, logits, value, aux_pred, step_carries, aux_error)

    def __call__(
        self,
        carry: Carry,
        obs: jax.Array,
        starts: jax.Array,
        action_for_aux: Optional[jax.Array] = None,
    ) -> tuple[Carry, jax.Array, jax.Array, Optional[jax.Array]]:
        """Time sequence -> (new_carry, logits [T, *B, A], value [T, *B], aux_pred or None).

        ``starts[t]`` True: ``obs[t]`` begins an episode, the carry is zeroed before step t.
        ``aux_pred[t]`` predicts ``obs[t + 1] / 255`` given ``action_for_aux[t]``; it is None
        when ``use_aux`` is False or no actions are given.
        """
        out = self.unroll(carry, obs, starts, action_for_aux)
        return out.carry, out.logits, out.value, out.aux_pred

    def step(
        self,
        carry: Carry,
        obs: jax.Array,
        starts: jax.Array,
        action_for_aux: Optional[jax.Array] = None,
    ) -> tuple[Carry, jax.Array, jax.Array, Optional[jax.Array]]:
        """One step (acting in a rollout): obs [*B, 21, 21, 3], starts [*B] ->
        (new_carry, logits [*B, A], value [*B], aux_pred [*B, 21, 21, 3] or None)."""
        act = None if action_for_aux is None else jnp.asarray(action_for_aux)[None]
        out = self.unroll(carry, obs[None], jnp.asarray(starts)[None], act)
        aux = None if out.aux_pred is None else out.aux_pred[0]
        return out.carry, out.logits[0], out.value[0], aux


def action_distribution(logits: jax.Array) -> "distrax.Categorical":
    """The action distribution of logits [..., num_actions]: the one implementation of
    sampling, log-probabilities and entropy that acting, PPO and behaviour cloning share.
    (distrax is imported here, not at module import: it loads TensorFlow Probability.)"""
    import distrax

    return distrax.Categorical(logits=logits.astype(jnp.float32))


def _init(network: SocialNet, key: jax.Array) -> Any:
    obs = jnp.zeros((1, 1) + OBS_SHAPE, jnp.uint8)
    starts = jnp.ones((1, 1), bool)
    actions = jnp.zeros((1, 1), jnp.int32)
    return network.init(key, network.initial_carry((1,)), obs, starts, actions)["params"]


_init_jit = jax.jit(_init, static_argnums=0)


def init_params(network: SocialNet, key: jax.Array) -> Any:
    """The ``params`` collection of ``network`` (decoder included when ``use_aux``).

    Jitted, one compile per network config (eagerly, each initialiser would compile on its
    own); under an outer trace (``jit``, ``vmap`` over seeds, ``eval_shape``) it is traced
    into the caller's computation."""
    if isinstance(key, jax.core.Tracer):
        return _init(network, key)
    return _init_jit(network, key)


def param_count(params: Any) -> int:
    """Number of scalars in a parameter pytree."""
    return int(sum(x.size for x in jax.tree.leaves(params)))
