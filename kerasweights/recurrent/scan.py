"""Fast TensorFlow paths for the element-wise recurrences.

On a CPU the training step of minGRU, minLSTM and SRU is dominated by
passes over whole ``(time, batch, units)`` tensors (gates, candidate and
their gradients) and by the per-step cost of the loop, not by arithmetic
(profile in docs/benchmarks-recurrent.md). This module therefore

* keeps every sequence **time-major** ``(time, batch, units)``, so that one
  step is a contiguous slice and no projected sequence is transposed;
* runs the recurrence as **unrolled steps on slices** of that layout when
  the time length is static and at most `UNROLL_LIMIT` (each step's
  operands stay in the CPU cache; the graph grows with the length), and as
  a while loop over blocks of `BLOCK` unrolled steps otherwise (unknown or
  long sequences, and graphs compiled by XLA);
* writes each cell's gradient out by hand: the recurrence backwards is the
  linear recurrence ``g_t = dh_t + a_{t+1} g_{t+1}``, and the gate
  arithmetic before and after it is one function per direction that XLA
  compiles into a single fused pass when TensorFlow is built with XLA
  (`fuse`). No per-step intermediate is kept for automatic
  differentiation.

Only the TensorFlow backend uses this module; the layers fall back to
`keras.ops` code on the other backends.
"""

import tensorflow as tf

__all__ = [
    "BLOCK",
    "UNROLL_LIMIT",
    "fuse",
    "linear_recurrence",
    "min_gru_sequence",
    "min_lstm_sequence",
    "sru_cells",
    "sru_output",
    "sru_sequence",
    "steps",
    "unrolled_length",
    "unstack",
]

# Longest static sequence whose steps are unrolled in the graph. Tracing
# grows with the length (about 3 s for 512 steps, forward and backward, on
# the 2-core project machine); longer or unknown lengths use `BLOCK`-step
# iterations of a while loop, which cost more per step.
UNROLL_LIMIT = 1024

# Steps per iteration of the while loop (unknown or long sequences).
BLOCK = 16

_JIT = {}


def fuse(fn):
    """``fn`` compiled by XLA into fused loops, when TensorFlow has XLA.

    The gate arithmetic of a whole sequence is a chain of element-wise
    operations; as separate TensorFlow kernels each one is a pass over
    memory, while XLA computes the chain in one pass. Without XLA the plain
    function runs (same results, slower).
    """
    if fn not in _JIT:
        if tf.test.is_built_with_xla():
            _JIT[fn] = tf.function(fn, jit_compile=True, autograph=False)
        else:
            _JIT[fn] = fn
    return _JIT[fn]


def _static_length(x):
    return x.shape[0]


def _in_xla():
    """Whether the graph being traced will be compiled by XLA."""
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - internal module moved
        return False
    return control_flow_util.GraphOrParentsInXlaContext(
        tf.compat.v1.get_default_graph()
    )


def unrolled_length(x):
    """The time length of ``x`` if its steps should be unrolled, else None.

    Unrolled when the length is static, at most `UNROLL_LIMIT`, and the
    graph is not compiled by XLA: on the project machine XLA compiled a
    training step with 100 unrolled steps several times slower than one
    with the while loop, which also ran faster there (first-step column
    of ``python -m benchmarks.recurrent_speed --jit``).
    """
    length = _static_length(x)
    if length is None or length > UNROLL_LIMIT or _in_xla():
        return None
    return length


def _unrolled(coefficients, offsets, h0, reverse=False):
    """Steps ``h = a * h + b`` over lists; returns the list of states."""
    count = len(coefficients)
    states = [None] * count
    order = range(count - 1, -1, -1) if reverse else range(count)
    h = h0
    for t in order:
        h = coefficients[t] * h + offsets[t]
        states[t] = h
    return states


def _blocked(a, b, h0, reverse=False):
    """``h_t = a_t h_{t-1} + b_t`` in a while loop of `BLOCK`-step bodies.

    ``reverse`` runs from the last step to the first
    (``h_t = a_t h_{t+1} + b_t``). Works for unknown lengths: the sequence
    is padded to a multiple of `BLOCK` after its end with ``a = 1`` and
    ``b = 0``, steps that keep the state, so in reverse the padding hands
    ``h0`` on unchanged.
    """
    k = BLOCK
    length = tf.shape(a)[0]
    count = (length + k - 1) // k
    pad = [[0, count * k - length], [0, 0], [0, 0]]
    inner = tf.shape(a)[1:]
    blocked_shape = tf.concat([[count, k], inner], 0)
    a_blocks = tf.reshape(tf.pad(a, pad, constant_values=1), blocked_shape)
    b_blocks = tf.reshape(tf.pad(b, pad), blocked_shape)
    out = tf.TensorArray(
        h0.dtype,
        size=count,
        element_shape=tf.TensorShape([k]).concatenate(h0.shape),
    )

    def body(i, h, out):
        index = count - 1 - i if reverse else i
        states = _unrolled(
            tf.unstack(a_blocks[index], num=k),
            tf.unstack(b_blocks[index], num=k),
            h,
            reverse,
        )
        h = states[0] if reverse else states[-1]
        return i + 1, h, out.write(index, tf.stack(states))

    _, _, out = tf.while_loop(
        lambda i, *_: i < count,
        body,
        (tf.constant(0), h0, out),
        maximum_iterations=count,
    )
    flat = tf.reshape(out.stack(), tf.concat([[count * k], inner], 0))
    result = flat[:length]
    result.set_shape(a.shape)
    return result


def steps(a, b, h0, reverse=False):
    """All states of ``h_t = a_t h_{t-1} + b_t``; time-major in and out.

    ``a``, ``b``: ``(time, batch, units)``; ``h0``: ``(batch, units)``.
    With ``reverse``, ``h_t = a_t h_{t+1} + b_t`` from the last step back.
    No gradient is defined here; see `linear_recurrence`.
    """
    length = unrolled_length(a)
    if length is not None:
        states = _unrolled(
            tf.unstack(a, num=length), tf.unstack(b, num=length), h0, reverse
        )
        return tf.stack(states)
    return _blocked(a, b, h0, reverse)


def _previous(h, h0):
    """``h_{t-1}`` at position ``t`` (``h0`` at the first step)."""
    return tf.concat([h0[None], h[:-1]], 0)


def unstack(x):
    """The time slices of a static-length sequence, one operation."""
    return tf.unstack(x, num=_static_length(x))


def _unstack(x):
    length = unrolled_length(x)
    if length is not None:
        return tf.unstack(x, num=length)
    return None


def _forward(a, b, h0):
    """``(all h_t, a as a list or None)``: the list serves the backward."""
    coefficients = _unstack(a)
    if coefficients is None:
        return _blocked(a, b, h0), None
    states = _unrolled(coefficients, tf.unstack(b, num=len(coefficients)), h0)
    return tf.stack(states), coefficients


def _backward(a, coefficients, dh, last_only=False):
    """``g_t = dh_t + a_{t+1} g_{t+1}``: the total gradient of each state.

    ``coefficients``: ``a`` as a list (from `_forward`) or ``None``. With
    ``last_only``, ``dh`` is the gradient of the last state alone, as when
    a layer returns only its last output: each step is then one product.
    Returns ``g`` and ``a_1 g_1`` (the gradient of the initial state).
    """
    zero = tf.zeros_like(dh if last_only else dh[0])
    if coefficients is None:
        if last_only:
            dh = tf.concat([tf.zeros_like(a[1:]), dh[None]], 0)
        shifted = tf.concat([a[1:], tf.zeros_like(a[:1])], 0)
        g = _blocked(shifted, dh, zero, reverse=True)
        return g, a[0] * g[0]
    count = len(coefficients)
    if last_only:
        states = [dh]
        for t in range(count - 1, 0, -1):
            states.append(coefficients[t] * states[-1])
        states.reverse()
    else:
        states = _unrolled(
            coefficients[1:] + [zero],
            tf.unstack(dh, num=count),
            zero,
            reverse=True,
        )
    return tf.stack(states), coefficients[0] * states[0]


def linear_recurrence(a, b, h0):
    """``h_t = a_t h_{t-1} + b_t`` with its gradient written out.

    Time-major ``a``, ``b`` ``(time, batch, units)`` and ``h0``
    ``(batch, units)``; returns every ``h_t``, time-major. With ``g`` the
    total gradient of each state (`_backward`): ``da_t = g_t h_{t-1}``,
    ``db_t = g_t`` and ``dh0 = a_1 g_1``.
    """

    @tf.custom_gradient
    def recurrence(a, b, h0):
        h, coefficients = _forward(a, b, h0)

        def grad(dh):
            g, d_h0 = _backward(a, coefficients, dh)
            return g * _previous(h, h0), g, d_h0

        return h, grad

    return recurrence(a, b, h0)


def _column_sums(x):
    """Sum over time and batch of a ``(time, batch, units)`` tensor.

    A product with a row of ones: TensorFlow's CPU reduction over the two
    leading axes measured several times slower than the matrix product.
    """
    rows = tf.reshape(x, [-1, tf.shape(x)[-1]])
    ones = tf.ones([1, tf.shape(rows)[0]], dtype=x.dtype)
    return tf.reshape(tf.matmul(ones, rows), tf.shape(x)[-1:])


def _with_bias_grads(grads):
    """``grads`` and, for each, the gradient of the bias added to it."""
    grads = list(grads)
    return grads + [_column_sums(g) for g in grads]


# minGRU --------------------------------------------------------------
#
# The fused functions are kept small: XLA on CPU recomputed shared
# subexpressions once per output of a larger function (measured: the
# minLSTM gradient in one function took 2.4 times as long as in two).


def _candidate(k):
    """``g(k) = max(k + 1/2, sigmoid(k))`` and its ``sigmoid(k)``."""
    s = tf.sigmoid(k)
    return tf.maximum(k + 0.5, s), s


def _candidate_grad(k, s, upstream):
    """``upstream * g'(k)``: 1 for ``k >= 0``, ``s (1 - s)`` below."""
    return tf.where(k >= 0, upstream, upstream * s * (1.0 - s))


def _keep_candidate(a, x_h, b_h):
    """``(1 - a) g(x_h + b_h)``: the offset ``b`` of both cells."""
    candidate, _ = _candidate(x_h + b_h)
    return (1.0 - a) * candidate


def _min_gru_forget(x_z, b_z):
    return tf.sigmoid(-(x_z + b_z))


def _offset_grads(g, h, h0, a, x_h, b_h):
    """For ``h_t = a h_{t-1} + (1 - a) g(k_h)``: ``(dL/da a (1 - a),
    dL/dk_h)``."""
    k_h = x_h + b_h
    candidate, s = _candidate(k_h)
    keep = 1.0 - a
    d_a = g * (_previous(h, h0) - candidate) * a * keep
    return d_a, _candidate_grad(k_h, s, g * keep)


def min_gru_sequence(x_z, x_h, b_z, b_h, h0, last_only=False):
    """minGRU over a whole time-major sequence, gradient written out.

    ``x_z``, ``x_h``: the input products ``W_z x_t`` and ``W_h x_t``,
    ``(time, batch, units)``; ``b_z``, ``b_h``: the biases. Returns every
    ``h_t`` (``last_only``: the last one, whose gradient is then the only
    one to flow back). With ``a = 1 - z = sigmoid(-k_z)``,
    ``da/dk_z = -a (1 - a)``. The backward pass recomputes the candidate
    inside fused functions instead of keeping it.
    """

    @tf.custom_gradient
    def sequence(x_z, x_h, b_z, b_h, h0):
        a = fuse(_min_gru_forget)(x_z, b_z)
        b = fuse(_keep_candidate)(a, x_h, b_h)
        h, coefficients = _forward(a, b, h0)

        def grad(dh):
            g, d_h0 = _backward(a, coefficients, dh, last_only)
            d_a, d_h = fuse(_offset_grads)(g, h, h0, a, x_h, b_h)
            d_z = -d_a
            return _with_bias_grads([d_z, d_h]) + [d_h0]

        return (h[-1] if last_only else h), grad

    return sequence(x_z, x_h, b_z, b_h, h0)


# minLSTM -------------------------------------------------------------


def _min_lstm_forget(x_f, x_i, b_f, b_i):
    """``f / (f + i)``, as ``sigmoid(log f - log i)``.

    The quotient itself is 0 / 0 when both gates underflow (pre-activations
    below about -87 in float32); the difference of logs stays finite.
    """
    return tf.sigmoid(
        tf.nn.softplus(-(x_i + b_i)) - tf.nn.softplus(-(x_f + b_f))
    )


def _min_lstm_gate_grads(d_a, x_f, x_i, b_f, b_i):
    # a = f / (f + i): da/dk_f = (1 - f) a (1 - a), da/dk_i = -(1 - i) a
    # (1 - a); d_a already carries a (1 - a).
    return d_a * tf.sigmoid(-(x_f + b_f)), -d_a * tf.sigmoid(-(x_i + b_i))


def min_lstm_sequence(x_f, x_i, x_h, b_f, b_i, b_h, h0, last_only=False):
    """minLSTM over a whole time-major sequence, gradient written out.

    Input products of the forget gate, input gate and candidate,
    ``(time, batch, units)``, and their biases; returns every ``h_t``
    (``last_only``: the last one, as in `min_gru_sequence`).
    """

    @tf.custom_gradient
    def sequence(x_f, x_i, x_h, b_f, b_i, b_h, h0):
        a = fuse(_min_lstm_forget)(x_f, x_i, b_f, b_i)
        b = fuse(_keep_candidate)(a, x_h, b_h)
        h, coefficients = _forward(a, b, h0)

        def grad(dh):
            g, d_h0 = _backward(a, coefficients, dh, last_only)
            d_a, d_h = fuse(_offset_grads)(g, h, h0, a, x_h, b_h)
            d_f, d_i = fuse(_min_lstm_gate_grads)(d_a, x_f, x_i, b_f, b_i)
            return _with_bias_grads([d_f, d_i, d_h]) + [d_h0]

        return (h[-1] if last_only else h), grad

    return sequence(x_f, x_i, x_h, b_f, b_i, b_h, h0)


# SRU -----------------------------------------------------------------


def _sru_unrolled(candidates, x_fs, v_f, c):
    states = []
    for cand_t, x_f_t in zip(candidates, x_fs, strict=True):
        c = cand_t + tf.sigmoid(x_f_t + v_f * c) * (c - cand_t)
        states.append(c)
    return states


def sru_cells(candidate, x_f, v_f, c0):
    """SRU's ``c_t`` for all steps (forward only), time-major."""
    length = unrolled_length(candidate)
    if length is not None:
        return tf.stack(
            _sru_unrolled(
                tf.unstack(candidate, num=length),
                tf.unstack(x_f, num=length),
                v_f,
                c0,
            )
        )
    k = BLOCK
    total = tf.shape(candidate)[0]
    count = (total + k - 1) // k
    pad = [[0, count * k - total], [0, 0], [0, 0]]
    inner = tf.shape(candidate)[1:]
    blocked_shape = tf.concat([[count, k], inner], 0)
    cand_blocks = tf.reshape(tf.pad(candidate, pad), blocked_shape)
    x_f_blocks = tf.reshape(tf.pad(x_f, pad), blocked_shape)
    out = tf.TensorArray(
        c0.dtype,
        size=count,
        element_shape=tf.TensorShape([k]).concatenate(c0.shape),
    )

    def body(i, c, out):
        states = _sru_unrolled(
            tf.unstack(cand_blocks[i], num=k),
            tf.unstack(x_f_blocks[i], num=k),
            v_f,
            c,
        )
        return i + 1, states[-1], out.write(i, tf.stack(states))

    _, _, out = tf.while_loop(
        lambda i, *_: i < count,
        body,
        (tf.constant(0), c0, out),
        maximum_iterations=count,
    )
    flat = tf.reshape(out.stack(), tf.concat([[count * k], inner], 0))
    result = flat[:total]
    result.set_shape(candidate.shape)
    return result


def _sru_jacobian(c, c0, candidate, x_f, v_f):
    # f_t = sigmoid(x_f + v_f c_{t-1}); dc_t/dc_{t-1} = f + v_f d with
    # d = (c_{t-1} - x~_t) f (1 - f).
    previous = _previous(c, c0)
    f = tf.sigmoid(x_f + v_f * previous)
    d = (previous - candidate) * f * (1.0 - f)
    return f + v_f * d


def _sru_grads(g, c, c0, candidate, x_f, v_f):
    previous = _previous(c, c0)
    f = tf.sigmoid(x_f + v_f * previous)
    return g * (1.0 - f), g * (previous - candidate) * f * (1.0 - f)


def _times_previous(x, c, c0):
    return x * _previous(c, c0)


def sru_sequence(candidate, x_f, v_f, c0):
    """SRU's state ``c_t = x~_t + f_t (c_{t-1} - x~_t)`` for all steps.

    Time-major ``candidate`` (``W x_t``) and ``x_f`` (``W_f x_t + b_f``),
    ``(time, batch, units)``; ``v_f`` a ``(units,)`` vector. The gradient:
    with ``A_t = dc_t / dc_{t-1}`` (`_sru_jacobian`), the total gradient
    ``G`` of each state solves ``G_t = dc_t + A_{t+1} G_{t+1}``, and the
    other gradients follow element-wise from it (`_sru_grads`).
    """

    @tf.custom_gradient
    def cells(candidate, x_f, v_f, c0):
        c = sru_cells(candidate, x_f, v_f, c0)

        def grad(dc):
            a = fuse(_sru_jacobian)(c, c0, candidate, x_f, v_f)
            g, d_c0 = _backward(a, _unstack(a), dc)
            d_cand, d_x_f = fuse(_sru_grads)(g, c, c0, candidate, x_f, v_f)
            d_v_f = _column_sums(fuse(_times_previous)(d_x_f, c, c0))
            return d_cand, d_x_f, d_v_f, d_c0

        return c, grad

    return cells(candidate, x_f, v_f, c0)


def _sru_output(c, previous, x_r, v_r, highway, activation):
    r = tf.sigmoid(x_r + v_r * previous)
    return highway + r * (activation(c) - highway)


def sru_output(c, previous, x_r, v_r, highway, activation, fused):
    """SRU's ``h = r (activation(c) - x') + x'``, ``r`` from ``c_{t-1}``.

    ``fused``: compiled by XLA (`fuse`), differentiated automatically.
    """
    if fused:
        return fuse(_sru_output)(c, previous, x_r, v_r, highway, activation)
    return _sru_output(c, previous, x_r, v_r, highway, activation)
