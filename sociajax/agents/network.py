"""The learners' network: a CNN-LSTM actor-critic with an auxiliary next-observation decoder.

Architecture (paper, Appendix 7.7; shapes for one 21x21x3 egocentric view)::

    obs uint8 [21, 21, 3] -> / 255
    Conv 3->32, 3x3, stride 3, VALID   -> [7, 7, 32]   leaky ReLU
    Conv 32->64, 3x3, stride 1, VALID  -> [5, 5, 64]   leaky ReLU
    Conv 64->64, 3x3, stride 1, VALID  -> [3, 3, 64]   leaky ReLU
    flatten 576 -> Dense 192, tanh
    LSTM 192 (carry reset to zeros where an episode starts)
    value head:  Dense 64 tanh, Dense 64 tanh, Dense 1
    policy head: Dense 64 tanh, Dense 64 tanh, Dense 7 (logits; 3 with the "move" action set)
    aux decoder: concat(LSTM output 192, one-hot action) -> Dense 576, tanh -> [3, 3, 64]
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

from sociajax.envs.core import NUM_ACTIONS  # the default policy head: the paper's 7 actions

if TYPE_CHECKING:
    import distrax

OBS_SHAPE = (21, 21, 3)
HIDDEN = 192
PARAM_COUNT = 667_787  # with aux decoder, one LSTM bias per gate (PyTorch count: 668,555)

Carry = tuple  # (c, h), each float32 [*batch, HIDDEN]
DTYPES = ("float32", "bfloat16")  # SocialNet.dtype / NetworkConfig.dtype: the matmuls' precision


def check_dtype(owner: str, dtype: Any) -> None:
    """Raise a ValueError naming ``owner.dtype`` unless ``dtype`` is one of :data:`DTYPES`."""
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"{owner}.dtype must be one of {DTYPES}, got {dtype!r}")


def check_obs_shape(owner: str, shape: Any) -> None:
    """Raise a ValueError naming ``owner.obs_shape`` unless it is a square view (side, side, C)
    whose side is a multiple of 3 and at least 15 (the stride-3 convolution and two 3x3
    VALID ones need a 5x5 grid or more)."""
    ok = (
        isinstance(shape, tuple) and len(shape) == 3 and all(isinstance(n, int) and n > 0 for n in shape)
        and shape[0] == shape[1] and shape[0] % 3 == 0 and shape[0] >= 15
    )
    if not ok:
        raise ValueError(f"{owner}.obs_shape must be (side, side, channels) with side a multiple of 3 and >= 15, got {shape!r}")


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


def _matmul(x: jax.Array, kernel: jax.Array, dtype: Any) -> jax.Array:
    """``x @ kernel`` with both cast to ``dtype`` (the matmul's precision)."""
    return x.astype(dtype) @ kernel.astype(dtype)


def _add_bias(y: jax.Array, bias: jax.Array) -> jax.Array:
    """``y + bias`` summed in float32, returned in ``y``'s dtype. The bias's gradient sums the
    output's gradient over every frame and pixel: in bfloat16 that sum stalls (measured: the
    last transposed convolution's bias gradient came out 13x too small on 128 frames)."""
    return (y.astype(jnp.float32) + bias.astype(jnp.float32)).astype(y.dtype)


def _dense(layer: tuple[jax.Array, jax.Array], x: jax.Array, dtype: Any) -> jax.Array:
    """A dense layer on its ``(kernel, bias)``: the matmul in ``dtype``, the bias added in
    float32 (``nn.Dense``'s numbers in float32)."""
    kernel, bias = layer
    return _add_bias(_matmul(x, kernel, dtype), bias)


def _conv(layer: tuple[jax.Array, jax.Array], x: jax.Array, dtype: Any, stride: int, transpose: bool = False) -> jax.Array:
    """:func:`conv3x3` on its ``(kernel, bias)`` with input and kernel in ``dtype``."""
    kernel, bias = layer
    return conv3x3(x.astype(dtype), kernel.astype(dtype), bias, stride, transpose)


class _Params(nn.Module):
    """Declares one layer's parameters under its name (``kernel``, then ``bias`` unless
    ``use_bias`` is False; float32, as ``nn.Dense`` / ``nn.Conv`` create them) and returns
    them. Every layer of :class:`SocialNet` computes as a pure function of these, so the
    same code runs at init and apply, and chunked maps, remat and scans close over them."""

    kernel_shape: tuple[int, ...]
    kernel_init: Any = nn.initializers.lecun_normal()
    use_bias: bool = True

    @nn.compact
    def __call__(self) -> tuple[jax.Array, Optional[jax.Array]]:
        kernel = self.param("kernel", self.kernel_init, self.kernel_shape, jnp.float32)
        if not self.use_bias:
            return kernel, None
        return kernel, self.param("bias", nn.initializers.zeros_init(), (self.kernel_shape[-1],), jnp.float32)


_GATES = ("i", "f", "g", "o")


class _LSTMCellParams(nn.Module):
    """The parameters of ``nn.OptimizedLSTMCell`` (same names, shapes and initialisers, so
    checkpoints and initial values are shared): per gate, an input kernel ``i*`` (LeCun
    normal, no bias) and a recurrent kernel ``h*`` (orthogonal) with the gate's bias.
    Returns them concatenated over the gates: (w_in [F, 4H], w_h [H, 4H], bias [4H])."""

    features: int
    in_features: int

    @nn.compact
    def __call__(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        w_in, w_h, bias = [], [], []
        for gate in _GATES:
            w_in.append(_Params((self.in_features, self.features), use_bias=False, name=f"i{gate}")()[0])
            kernel, b = _Params((self.features, self.features), nn.initializers.orthogonal(), name=f"h{gate}")()
            w_h.append(kernel)
            bias.append(b)
        return jnp.concatenate(w_in, -1), jnp.concatenate(w_h, -1), jnp.concatenate(bias, -1)


class _LSTMParams(nn.Module):
    """Holds the cell's parameters under ``cell`` (the tree ``core/cell/...``)."""

    features: int
    in_features: int

    @nn.compact
    def __call__(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        return _LSTMCellParams(self.features, self.in_features, name="cell")()


def _lstm_cell(weights: tuple[jax.Array, jax.Array, jax.Array], carry: Carry, x: jax.Array, dtype: Any) -> Carry:
    """One LSTM step (``nn.OptimizedLSTMCell``'s function, gates i, f, g, o) with the two
    gate projections in ``dtype`` and everything else (bias, gates, carry) in float32: a
    float32 carry keeps small updates of c over hundreds of steps, and float32 bias sums keep
    its gradient exact. The sums run in the cell's order, so float32 gives its numbers."""
    w_in, w_h, bias = weights
    c, h = carry
    z = (_matmul(h, w_h, dtype).astype(jnp.float32) + bias) + _matmul(x, w_in, dtype).astype(jnp.float32)
    zi, zf, zg, zo = jnp.split(z, 4, axis=-1)
    new_c = jax.nn.sigmoid(zf) * c + jax.nn.sigmoid(zi) * jnp.tanh(zg)
    return new_c, jax.nn.sigmoid(zo) * jnp.tanh(new_c)


def _reset_lstm(
    weights: tuple[jax.Array, jax.Array, jax.Array],
    carry: Carry,
    x: jax.Array,
    starts: jax.Array,
    dtype: Any,
    unroll: int,
) -> tuple[Carry, tuple[jax.Array, Carry]]:
    """The LSTM over time (x [T, *batch, F], starts [T, *batch]), its carry zeroed before
    step t where ``starts[t]`` (PureJaxRL's ``ScannedRNN`` idea: a ``where``, no ``cond``).
    Returns (final carry, (outputs [T, *batch, H], the carry each step consumed, after its
    reset)). ``unroll`` steps run per loop iteration: the same numbers, fewer iterations."""

    def step(carry: Carry, inputs: tuple[jax.Array, jax.Array]):
        x_t, start = inputs
        keep = jnp.logical_not(start)[..., None]
        carry = jax.tree.map(lambda c: jnp.where(keep, c, jnp.zeros_like(c)), carry)
        new_carry = _lstm_cell(weights, carry, x_t, dtype)
        return new_carry, (new_carry[1], carry)

    return jax.lax.scan(step, carry, (x, starts), unroll=unroll)


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


Layer = tuple  # (kernel, bias) of one layer


def _encoder(layers: Sequence[Layer], dtype: Any, x: jax.Array) -> jax.Array:
    """uint8 [N, side, side, 3] -> [N, H]: three convolutions and the embedding (``layers`` =
    conv1, conv2, conv3, embed), the matmuls in ``dtype``."""
    x = x.astype(jnp.float32) / 255.0
    for layer, stride in zip(layers[:3], (3, 1, 1)):
        x = nn.leaky_relu(_conv(layer, x, dtype, stride))
    return jnp.tanh(_dense(layers[3], x.reshape(x.shape[0], -1), dtype))


def _decoder(layers: Sequence[Layer], dtype: Any, grid: int, z: jax.Array) -> jax.Array:
    """[N, H + A] -> [N, side, side, 3] (``layers`` = aux_fc, deconv1, deconv2, deconv3; the
    first reshapes to the encoder's last grid, ``grid`` x ``grid`` x 64), in ``dtype``."""
    z = jnp.tanh(_dense(layers[0], z, dtype)).reshape(z.shape[0], grid, grid, 64)
    z = nn.leaky_relu(_conv(layers[1], z, dtype, 1, transpose=True))
    z = nn.leaky_relu(_conv(layers[2], z, dtype, 1, transpose=True))
    return _conv(layers[3], z, dtype, 3, transpose=True)


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
    small chunks stay in it, several times faster forward and about twice as fast for the
    gradient (rematerialised chunks, see :func:`_in_chunks`; numbers in docs/benchmarks.md).
    GPUs want the whole batch at once."""
    return 128 if jax.default_backend() == "cpu" else 0


def default_lstm_unroll() -> int:
    """LSTM steps per loop iteration when ``SocialNet.lstm_unroll`` is None: 1 on CPU, 8 elsewhere.

    An update unrolls the LSTM over the whole rollout 11 times (257 steps each, at the paper's
    schedule). XLA:GPU runs each iteration of a loop as its own kernel launches plus a
    synchronisation with the host, a fixed cost much larger than one LSTM step of 128 envs, so
    fewer, longer iterations win there (``benchmarks/gpu_suite.sh`` compares 1 and 8). On
    CPU a loop iteration costs little and unrolling is slower (docs/benchmarks.md)."""
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

    ``SocialNet(num_actions=7, use_aux=True, obs_shape=(21, 21, 3))``: the action count and
    view shape are the env's (``Population`` passes them). ``use_aux=False`` drops the
    decoder (the paper's "vanilla PPO" baseline): 496,328 parameters.

    One forward path: :meth:`setup` declares every layer's parameters once (one line each),
    and every call computes from them with pure functions (:func:`_encoder`, the LSTM scan,
    the heads, :func:`_decoder`), at init and apply alike. Adding a layer is one line in
    ``setup`` and one in the function that uses it.

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
    obs_shape: tuple[int, int, int] = OBS_SHAPE

    @property
    def compute_dtype(self) -> Any:
        """The jnp dtype of the matmuls (from ``dtype``)."""
        return jnp.dtype(self.dtype)

    @property
    def grid(self) -> int:
        """Side of the encoder's last feature map (3 for a 21x21 view)."""
        return self.obs_shape[0] // 3 - 4

    def setup(self) -> None:
        check_speed_settings("SocialNet", chunk=self.chunk, lstm_unroll=self.lstm_unroll)
        check_dtype("SocialNet", self.dtype)
        check_obs_shape("SocialNet", self.obs_shape)
        if isinstance(self.num_actions, bool) or not isinstance(self.num_actions, int) or self.num_actions < 1:
            raise ValueError(f"SocialNet.num_actions must be a positive integer, got {self.num_actions!r}")
        # The parameters, one line per layer (names and shapes of the paper's layers; see the
        # module doc); every forward pass below computes from them.
        channels, hidden, flat = self.obs_shape[-1], self.hidden_size, self.grid * self.grid * 64
        self.conv1 = _Params((3, 3, channels, 32))
        self.conv2 = _Params((3, 3, 32, 64))
        self.conv3 = _Params((3, 3, 64, 64))
        self.embed = _Params((flat, hidden))
        self.core = _LSTMParams(hidden, hidden)
        self.value1 = _Params((hidden, 64))
        self.value2 = _Params((64, 64))
        self.value_out = _Params((64, 1), nn.initializers.orthogonal(1.0))
        self.policy1 = _Params((hidden, 64))
        self.policy2 = _Params((64, 64))
        self.policy_out = _Params((64, self.num_actions), nn.initializers.orthogonal(0.01))
        if self.use_aux:
            self.aux_fc = _Params((hidden + self.num_actions, flat))
            self.deconv1 = _Params((3, 3, 64, 64))
            self.deconv2 = _Params((3, 3, 64, 32))
            self.deconv3 = _Params((3, 3, 32, channels))

    # ------------------------------------------------------------------ pieces
    def initial_carry(self, batch_shape: Union[int, Sequence[int]] = ()) -> Carry:
        """Zero (c, h), each float32 [*batch_shape, hidden_size]. Needs no params."""
        if isinstance(batch_shape, int):
            batch_shape = (batch_shape,)
        zeros = jnp.zeros(tuple(batch_shape) + (self.hidden_size,), jnp.float32)
        return (zeros, zeros)

    def _per_frame(self, body: Any, layers: Sequence[Layer], xs: Any) -> Any:
        """``body(layers, dtype, xs)`` over arrays xs [N, ...], in chunks of ``chunk`` frames
        when N is large enough (see the class doc). Kernels are cast to ``dtype`` once,
        biases stay float32."""
        dtype = self.compute_dtype
        fn = functools.partial(body, tuple((kernel.astype(dtype), bias) for kernel, bias in layers), dtype)
        chunk = default_chunk() if self.chunk is None else self.chunk
        if chunk > 0 and jax.tree.leaves(xs)[0].shape[0] > 2 * chunk:
            return _in_chunks(fn, xs, chunk)
        return fn(xs)

    def _decoder_layers(self) -> tuple[Layer, ...]:
        return (self.aux_fc(), self.deconv1(), self.deconv2(), self.deconv3())

    def encode(self, obs: jax.Array) -> jax.Array:
        """uint8 [..., side, side, 3] -> [..., hidden_size] (convs + Dense + tanh), in ``dtype``."""
        x, lead = _flatten_lead(obs, 3)
        layers = (self.conv1(), self.conv2(), self.conv3(), self.embed())
        return self._per_frame(_encoder, layers, x).reshape(lead + (self.hidden_size,))

    def heads(self, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        """LSTM output [..., H] -> (logits [..., num_actions], value [...]), float32. The hidden
        layers run in ``dtype``, the last ones in float32 (tiny matmuls; the value regresses
        onto returns that bfloat16 would round by up to 0.4%)."""
        low, f32 = self.compute_dtype, jnp.float32
        v = jnp.tanh(_dense(self.value1(), h, low))
        v = jnp.tanh(_dense(self.value2(), v, low))
        value = _dense(self.value_out(), v, f32)[..., 0]
        p = jnp.tanh(_dense(self.policy1(), h, low))
        p = jnp.tanh(_dense(self.policy2(), p, low))
        return _dense(self.policy_out(), p, f32), value

    def decode(self, h: jax.Array, actions: jax.Array) -> jax.Array:
        """(LSTM output [..., H], actions int [...]) -> predicted next obs [..., side, side, 3]
        on the [0, 1] scale (linear output; see module doc), float32."""
        z, lead = _flatten_lead(self._decoder_input(h, actions), 1)
        body = lambda layers, dtype, z: _decoder(layers, dtype, self.grid, z)  # noqa: E731
        return self._per_frame(body, self._decoder_layers(), z).reshape(lead + self.obs_shape).astype(jnp.float32)

    def aux_error(
        self, h: jax.Array, actions: jax.Array, target: jax.Array, enabled: Optional[jax.Array] = None
    ) -> jax.Array:
        """``frame_abs_error(decode(h, actions), target)`` [...] for uint8 targets
        [..., side, side, 3], without holding all predictions at once: with chunking each
        chunk's error is taken where its prediction is made (the training loss's path).

        ``enabled`` (a traced bool): where False the decoder is not run and the error is 0,
        for a learner whose auxiliary loss is off in this program's condition (a
        ``lax.cond``: skipped where the update runs unbatched, a select under ``vmap``)."""
        z, lead = _flatten_lead(self._decoder_input(h, actions), 1)
        target = target.reshape((-1,) + self.obs_shape)
        grid = self.grid
        layers = self._decoder_layers()  # read here: no Flax variable access inside the cond

        def body(layers: Sequence[Layer], dtype: Any, zt: tuple[jax.Array, jax.Array]) -> jax.Array:
            return frame_abs_error(_decoder(layers, dtype, grid, zt[0]).astype(jnp.float32), zt[1])

        def error(z: jax.Array, target: jax.Array) -> jax.Array:
            return self._per_frame(body, layers, (z, target))

        if enabled is None:
            return error(z, target).reshape(lead)
        off = lambda z, target: jnp.zeros(z.shape[:1], jnp.float32)  # noqa: E731
        return jax.lax.cond(enabled, error, off, z, target).reshape(lead)

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
        aux_enabled: Optional[jax.Array] = None,
    ) -> UnrollOutput:
        """Run a time sequence. obs uint8 [T, *B, 21, 21, 3]; starts bool [T, *B];
        carry (c, h) [*B, H]; action_for_aux int [T, *B] or None; aux_target uint8
        [T, *B, 21, 21, 3] or None (the next observations: then ``aux_error`` is returned in
        place of ``aux_pred``, see :meth:`aux_error`, which ``aux_enabled`` may switch off).
        See :class:`UnrollOutput`."""
        x = self.encode(obs)
        unroll = default_lstm_unroll() if self.lstm_unroll is None else self.lstm_unroll
        carry, (h, step_carries) = _reset_lstm(
            self.core(), carry, x, jnp.asarray(starts, bool), self.compute_dtype, unroll
        )
        logits, value = self.heads(h)
        aux_pred = aux_error = None
        if aux_target is not None and action_for_aux is None:
            raise ValueError("SocialNet.unroll: aux_target needs action_for_aux")
        if self.use_aux:
            self._decoder_layers()  # the decoder's params exist (are created at init) even when unused
            if aux_target is not None:
                aux_error = self.aux_error(h, jnp.asarray(action_for_aux, jnp.int32), aux_target, aux_enabled)
            elif action_for_aux is not None:
                aux_pred = self.decode(h, jnp.asarray(action_for_aux, jnp.int32))
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
    obs = jnp.zeros((1, 1) + tuple(network.obs_shape), jnp.uint8)
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
