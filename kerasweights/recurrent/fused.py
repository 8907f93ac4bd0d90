"""Written-out backpropagation through time for the matrix-product cells.

TensorFlow differentiates a ``tf.while_loop`` by pushing every per-step
intermediate on a stack in the forward pass, popping it in the backward
pass, and computing each weight gradient as one small product per step.
For LayerNormLSTM, LayerNormGRU, PeepholeLSTM, JANET and MGU this module
replaces that with a hand-written gradient (``tf.custom_gradient``):

* the forward loop multiplies each step's inputs by the input kernel
  (the layer-normalised cells project and normalise the whole input
  sequence before the loop instead) and the state by the recurrent
  kernel, and keeps only what the backward pass needs (previous states,
  gate activations, normalised values and reciprocal standard
  deviations), as references in TensorArrays (no copies);
* the backward loop runs in reverse time on one step's small tensors (on
  a CPU, element-wise operations on a whole sequence at once measured
  slower here: they leave the caches), using TensorFlow's fused
  ``SigmoidGrad``/``TanhGrad``; per step it makes one product with the
  transposed recurrent kernel (two for MGU) and adds the gain, bias and
  peephole gradients into batch-row accumulators;
* after the loop, the recurrent and input kernel gradients are ONE matrix
  product each over all steps and the whole batch, and each accumulator
  one reduction over the batch. The input gradients are computed outside
  the XLA functions (below), so a training step, which never reads the
  gradient of its inputs, drops that product.

At a masked step the states are kept: the step's own gradients are
computed from zero state gradients and the incoming ones pass unchanged.
Both loops run several steps per iteration. In graphs, the training
calls of LayerNormLSTM, LayerNormGRU, PeepholeLSTM and MGU run the
forward loop and the gradient each as one XLA-compiled function
(`XLA_LOOPS`), which fuses a step's element-wise operations.
`_differentiable` holds what the five cells share around their own step
and backward-step functions. The functions take time-major
tensors and use TensorFlow directly; the layers call them only on the
TensorFlow backend (`FusedLoop`).
"""

import keras
from keras import ops

__all__ = [
    "FusedLoop",
    "run_cell",
    "janet_sequence",
    "layer_norm_gru_sequence",
    "layer_norm_lstm_sequence",
    "mgu_sequence",
    "peephole_lstm_sequence",
]

# Steps run per iteration of each while loop (the rest after the loop).
STEPS_PER_ITERATION = 8


# Whether the layers that gain from it (LayerNormLSTM, LayerNormGRU,
# PeepholeLSTM and MGU) run the loops of their training calls as XLA
# functions; False runs every loop as plain TensorFlow operations (the
# tests compare both).
XLA_LOOPS = True


def _xla(wanted):
    """Whether a training call's loops are compiled by XLA.

    Only in graphs (`tf.function`, Keras ``fit``): called eagerly under a
    gradient tape, a compiled function would hand the tape its loop's
    TensorLists, which cannot leave XLA; eager calls run the plain loops.
    """
    import tensorflow as tf

    return (
        wanted
        and XLA_LOOPS
        and not tf.executing_eagerly()
        and tf.test.is_built_with_xla()
    )


# Above zero while a function for XLA is traced: its loops run one step
# per iteration (measured faster under XLA than `STEPS_PER_ITERATION`
# steps, and compiled in a third of the time).
_COMPILING = [0]


def _compiled(fn, *args):
    """``fn(*args)`` as one XLA-compiled function.

    The element-wise work of a step is a chain of small operations, one
    pass over memory each as separate TensorFlow kernels; XLA fuses the
    chain. The function is called from the ordinary graph of the training
    step, so only the loop is compiled (per input shape, on first use).
    """
    import tensorflow as tf

    def traced(*args):
        _COMPILING[0] += 1
        try:
            return fn(*args)
        finally:
            _COMPILING[0] -= 1

    return tf.function(traced, jit_compile=True, autograph=False)(*args)


def _forward_records(forward, xla):
    """``forward()``'s carry and records; stacked tensors under XLA.

    TensorArrays cannot leave an XLA function, so with ``xla`` the records
    are returned stacked (XLA writes each step into the stacked buffer).
    """
    if not xla:
        return forward()

    def stacked():
        carry, saved = forward()
        return carry, [_stack(o) for o in saved]

    return _compiled(stacked)


def _compiled_grad(grad, xla, x, kernel_in, at):
    """``grad`` (one XLA function with ``xla``) and the input gradients.

    ``grad(*upstream)`` returns the gradient of the projected inputs ``x
    kernel_in``, then the gradients of the other arguments in order, less
    ``x`` (the first) and ``kernel_in`` (argument ``at``). Those two are
    computed here from the first, outside XLA: in a graph that never reads
    the input's gradient (a training step) that product is then dropped.
    """
    inner = grad
    if xla:

        def inner(*upstream):
            given = [g is not None for g in upstream]

            def body(*present):
                values = iter(present)
                return grad(*(next(values) if g else None for g in given))

            return _compiled(body, *(g for g in upstream if g is not None))

    def full(*upstream):
        d_xw, *rest = inner(*upstream)
        d_x, d_kernel_in = _input_grads(x, kernel_in, d_xw)
        rest.insert(at - 1, d_kernel_in)
        return (d_x, *rest)

    return full


def _scan(step, init, xs, emit_shapes, length, reverse=False, keep=None):
    """Runs ``step`` over time; ``(carry, emitted TensorArrays)``.

    ``xs`` holds time-major tensors or TensorArrays; ``step(carry,
    inputs)`` returns ``(carry, emitted)`` (lists), each emitted tensor of
    the shape given in ``emit_shapes``. Every step writes its own entry
    (a reference, no copy), in time order also when ``reverse`` runs from
    the last step to the first. ``length`` is an int when static. With
    ``keep``, only the first ``keep`` emitted tensors are recorded.
    """
    import tensorflow as tf

    static = length if isinstance(length, int) else None
    k = 1 if _COMPILING[0] else STEPS_PER_ITERATION
    if static is None or static < 2 * k:
        k = 1
    chunks = length // k
    main = chunks * k
    dtype = init[0].dtype
    arrays = [
        x
        if isinstance(x, tf.TensorArray)
        else tf.TensorArray(
            x.dtype, size=length, element_shape=x.shape[1:]
        ).unstack(x)
        for x in xs
    ]
    emit_shapes = emit_shapes[:keep] if keep else emit_shapes
    outs = [
        # Read by the backward loop, then stacked: keep what was read.
        tf.TensorArray(
            dtype, size=length, element_shape=shape, clear_after_read=False
        )
        for shape in emit_shapes
    ]

    def run(carry, outs, t):
        carry, ys = step(list(carry), [a.read(t) for a in arrays])
        written = [
            o.write(t, y) for o, y in zip(outs, ys[: len(outs)], strict=True)
        ]
        for w in written:
            # Eager TensorArrays warn when a written array is dropped.
            getattr(w, "mark_used", lambda: None)()
        return carry, written

    tail = list(range(main, static)) if k > 1 else []
    carry = list(init)
    if reverse:
        for t in reversed(tail):
            carry, outs = run(carry, outs, t)

    def body(j, carry, outs):
        chunk = chunks - 1 - j if reverse else j
        order = range(k - 1, -1, -1) if reverse else range(k)
        for s in order:
            carry, outs = run(carry, outs, chunk * k + s)
        return j + 1, carry, outs

    _, carry, outs = tf.while_loop(
        lambda j, *_: j < chunks,
        body,
        (tf.constant(0), carry, outs),
        maximum_iterations=chunks,
    )
    carry = list(carry)
    if not reverse:
        for t in tail:
            carry, outs = run(carry, outs, t)
    return carry, list(outs)


def _length(x):
    import tensorflow as tf

    return x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]


def _outer(a, b):
    """``sum_t a_t^T b_t`` over time-major stacks: one matrix product."""
    import tensorflow as tf

    return tf.matmul(
        tf.reshape(a, [-1, a.shape[-1]]),
        tf.reshape(b, [-1, b.shape[-1]]),
        transpose_a=True,
    )


def _project(x, kernel_in):
    """``x kernel_in`` for a time-major ``x``: one matrix product."""
    import tensorflow as tf

    flat = tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), kernel_in)
    shape = tf.concat([tf.shape(x)[:2], [kernel_in.shape[-1]]], 0)
    return tf.reshape(flat, shape)


def _row_mean(x):
    """Mean over the last axis, keeping it.

    Of a step's ``(batch, width)`` tensor, as a product with a column of
    ``1 / width``: in the XLA-compiled loops on CPU that measured faster
    than a reduction (in ad-hoc timings of LayerNormLSTM's and
    LayerNormGRU's training steps, not kept as a command).
    """
    import tensorflow as tf

    if x.shape.rank != 2:
        return tf.reduce_mean(x, axis=-1, keepdims=True)
    n = x.shape[-1]
    return tf.matmul(x, tf.fill([n, 1], tf.constant(1.0 / n, x.dtype)))


def _moments(x, epsilon):
    """``(x - mean) / std`` and ``1 / std`` over the last axis."""
    import tensorflow as tf

    centred = x - _row_mean(x)
    inv = tf.math.rsqrt(_row_mean(tf.square(centred)) + epsilon)
    return centred * inv, inv


def _norm_backward(d_hat, x_hat, inv):
    """Gradient through ``x_hat = (x - mean(x)) * inv`` (biased variance)."""
    mean_d = _row_mean(d_hat)
    mean_dx = _row_mean(d_hat * x_hat)
    return (d_hat - mean_d - x_hat * mean_dx) * inv


def _sigmoid_grad(y, dy):
    """``dy * y * (1 - y)`` in one operation."""
    import tensorflow as tf

    return tf.raw_ops.SigmoidGrad(y=y, dy=dy)


def _tanh_grad(y, dy):
    """``dy * (1 - y * y)`` in one operation."""
    import tensorflow as tf

    return tf.raw_ops.TanhGrad(y=y, dy=dy)


def _keep(mask, new, old):
    import tensorflow as tf

    return new if mask is None else tf.where(mask, new, old)


def _backward(core, d_hs, states, accumulators, arrays, shapes, mask, length):
    """The reverse loop around ``core``, with the state gradients.

    ``core(d_states, accumulators, inputs)`` returns the gradients of the
    previous states, the updated accumulators and the emitted per-step
    gradients, given the gradients of the step's new states. The upstream
    gradient of every output ``h_t`` is added to the first state's. At a
    masked step the state is kept, so its gradient passes unchanged and the
    step's own gradients are zero (the core sees zero state gradients).
    """
    import tensorflow as tf

    n = len(states)
    xs = [d_hs] + list(arrays)
    if mask is not None:
        valid = tf.cast(mask, d_hs.dtype)
        xs += [valid, 1.0 - valid]

    def back(carry, inputs):
        d = carry[:n]
        d[0] = d[0] + inputs[0]
        rest = inputs[1 : 1 + len(arrays)]
        if mask is not None:
            valid, kept = inputs[-2], inputs[-1]
            live = [g * valid for g in d]
            d_prev, accs, ys = core(live, carry[n:], rest)
            d_prev = [p + g * kept for p, g in zip(d_prev, d, strict=True)]
        else:
            d_prev, accs, ys = core(d, carry[n:], rest)
        return list(d_prev) + list(accs), ys

    carry, outs = _scan(
        back,
        list(states) + list(accumulators),
        xs,
        shapes,
        length,
        reverse=True,
    )
    return carry[:n], carry[n:], [o.stack() for o in outs]


def _zeros(h0, width):
    """Zeros of shape ``(batch, width)``."""
    import tensorflow as tf

    return tf.zeros(tf.concat([tf.shape(h0)[:1], [width]], 0), h0.dtype)


def _input_grads(x, kernel_in, d_xw):
    """Gradients of ``x`` and ``kernel_in`` through ``xw = x kernel_in``."""
    import tensorflow as tf

    d_x = tf.matmul(
        tf.reshape(d_xw, [-1, d_xw.shape[-1]]), kernel_in, transpose_b=True
    )
    return tf.reshape(d_x, tf.shape(x)), _outer(x, d_xw)


def _run(forward, written_gradient, *args):
    """``forward(*args)``'s outputs, with its written-out gradient or not.

    Without it (inference calls) TensorFlow differentiates the forward
    loop itself when asked, and a SavedModel holds no gradient function
    (whose captured TensorArrays it cannot save).
    """
    import tensorflow as tf

    if written_gradient:
        return tf.custom_gradient(forward)(*args)
    return forward(*args)[0]


def _for_backward(saved):
    """The forward's records as the backward loop will read them.

    In graphs they stay TensorArrays (references, no copies). When the
    forward ran eagerly its TensorArrays are Python lists, which a backward
    traced as a graph (``tape.jacobian``'s vectorised loop) cannot index
    with a symbolic step: there they are handed over stacked (a copy, in
    eager calls only). Stacking in graphs too measured slower training
    steps (see `_reachable` for SavedModels).
    """
    import tensorflow as tf

    if len(saved) < 2 or not tf.executing_eagerly():
        return saved
    return [saved[0]] + [_stack(o) for o in saved[1:]]


def _saving():
    """Whether `tf.saved_model.save` is running (``True`` if unknown)."""
    try:
        from tensorflow.python.saved_model import save_context
    except ImportError:  # pragma: no cover - moved in a later TensorFlow
        return True
    return save_context.in_save_context()


def _reachable(saved, forward):
    """``saved``, or the forward loop's records computed again.

    The backward loop reads the forward's TensorArrays, capturing them
    where its graph cannot reach theirs (an eager tape over a
    `tf.function`). When `tf.saved_model.save` traces the gradient on its
    own, in a graph of its own, those captures would be variants, which a
    SavedModel cannot hold: there the forward loop runs again inside the
    gradient.
    """
    import tensorflow as tf

    arrays = [o for o in saved[1:] if isinstance(o, tf.TensorArray)]
    if not arrays or not _saving():
        return saved
    graph = tf.compat.v1.get_default_graph()
    while graph is not None:
        if graph is arrays[0].flow.graph:
            return saved
        graph = getattr(graph, "outer_graph", None)
    return _for_backward(forward()[1])


def _stack(records):
    """``records`` stacked over time (TensorArray or tensor)."""
    import tensorflow as tf

    if isinstance(records, tf.TensorArray):
        return records.stack()
    return records


def _time_inputs(tensors, mask):
    return list(tensors) + ([mask] if mask is not None else [])


def _final_grad(grad, like):
    import tensorflow as tf

    return tf.zeros_like(like) if grad is None else grad


def _forward_scan(step, init, xs, mask, shapes, length, written_gradient):
    """`_scan` of a forward loop over the time-major ``xs`` (and mask).

    Training calls (``written_gradient``) record everything ``step`` emits
    for the backward loop; other calls only the outputs (the first).
    """
    return _scan(
        step,
        init,
        _time_inputs(xs, mask),
        shapes,
        length,
        keep=None if written_gradient else 1,
    )


def _differentiable(forward, backward, xla, x, kernel_in, cell_state=False):
    """Runs ``forward``; its outputs and their gradient function.

    ``forward()`` returns the final states and the records, every output
    ``h_t`` first; ``backward(records, *upstream)`` returns what
    `_compiled_grad` wants of its ``grad``. The outputs are every ``h_t``,
    with the final cell state where ``cell_state`` (the LSTMs), and
    ``kernel_in`` follows ``x`` and the initial states among the
    arguments. The forward loop and the gradient run as XLA functions with
    ``xla``.
    """
    carry, saved = _forward_records(forward, xla)
    hs = _stack(saved[0])
    saved = _for_backward(saved)

    def grad(*upstream):
        return backward(_reachable(saved, forward), *upstream)

    outputs = (hs, carry[1]) if cell_state else hs
    return outputs, _compiled_grad(grad, xla, x, kernel_in, 2 + cell_state)


def janet_sequence(
    x, h0, kernel_in, bias, kernel, beta, mask=None, written_gradient=True
):
    """JANET states for time-major inputs ``x`` ``(T, B, features)``.

    ``mask``: ``(T, B, 1)`` booleans or ``None``. Returns every ``h_t``,
    time-major.
    """
    import tensorflow as tf

    units = kernel.shape[0]
    shape = [h0.shape[0], units]
    length = _length(x)

    def run(x, h0, kernel_in, bias, kernel):
        def step(carry, inputs):
            h = carry[0]
            z = tf.matmul(inputs[0], kernel_in) + tf.matmul(h, kernel) + bias
            s, c = tf.split(z, 2, axis=-1)
            f = tf.sigmoid(s)
            i = tf.sigmoid(beta - s)
            g = tf.tanh(c)
            h_new = f * h + i * g
            h_new = _keep(inputs[1] if mask is not None else None, h_new, h)
            return [h_new], [h_new, h, f, i, g]

        def forward():
            return _forward_scan(
                step, [h0], [x], mask, [shape] * 5, length, written_gradient
            )

        def backward(records, d_hs):
            def core(d, accs, inputs):
                d_h = d[0]
                h, f, i, g = inputs
                d_s = _sigmoid_grad(f, d_h * h) - _sigmoid_grad(i, d_h * g)
                d_z = tf.concat([d_s, _tanh_grad(g, d_h * i)], -1)
                d_prev = d_h * f + tf.matmul(d_z, kernel, transpose_b=True)
                return [d_prev], [accs[0] + d_z], [d_z]

            (d_h0,), (d_bias,), (d_zs,) = _backward(
                core,
                d_hs,
                [tf.zeros_like(h0)],
                [_zeros(h0, 2 * units)],
                records[1:],
                [[shape[0], 2 * units]],
                mask,
                length,
            )
            return (
                d_zs,
                d_h0,
                tf.reduce_sum(d_bias, 0),
                _outer(_stack(records[1]), d_zs),
            )

        return _differentiable(forward, backward, False, x, kernel_in)

    return _run(run, written_gradient, x, h0, kernel_in, bias, kernel)


def mgu_sequence(
    x, h0, kernel_in, bias, kernel_f, kernel_h, mask=None, written_gradient=True
):
    """MGU states for time-major inputs ``x`` ``(T, B, features)``."""
    import tensorflow as tf

    shape = [h0.shape[0], kernel_f.shape[0]]
    length = _length(x)
    xla = _xla(written_gradient)

    def run(x, h0, kernel_in, bias, kernel_f, kernel_h):
        def step(carry, inputs):
            h = carry[0]
            x_f, x_h = tf.split(tf.matmul(inputs[0], kernel_in) + bias, 2, -1)
            f = tf.sigmoid(x_f + tf.matmul(h, kernel_f))
            fh = f * h
            cand = tf.tanh(x_h + tf.matmul(fh, kernel_h))
            h_new = h + f * (cand - h)
            h_new = _keep(inputs[1] if mask is not None else None, h_new, h)
            return [h_new], [h_new, h, fh, f, cand]

        def forward():
            return _forward_scan(
                step, [h0], [x], mask, [shape] * 5, length, written_gradient
            )

        def backward(records, d_hs):
            def core(d, accs, inputs):
                d_h = d[0]
                h, f, cand = inputs
                d_ah = _tanh_grad(cand, d_h * f)
                d_fh = tf.matmul(d_ah, kernel_h, transpose_b=True)
                d_af = _sigmoid_grad(f, d_h * (cand - h) + d_fh * h)
                d_prev = (
                    d_h
                    + (d_fh - d_h) * f
                    + tf.matmul(d_af, kernel_f, transpose_b=True)
                )
                d_a = tf.concat([d_af, d_ah], -1)
                return [d_prev], [accs[0] + d_a], [d_af, d_ah, d_a]

            (d_h0,), (d_bias,), (d_af, d_ah, d_a) = _backward(
                core,
                d_hs,
                [tf.zeros_like(h0)],
                [_zeros(h0, 2 * shape[1])],
                [records[1], records[3], records[4]],
                [shape, shape, [shape[0], 2 * shape[1]]],
                mask,
                length,
            )
            return (
                d_a,
                d_h0,
                tf.reduce_sum(d_bias, 0),
                _outer(_stack(records[1]), d_af),
                _outer(_stack(records[2]), d_ah),
            )

        return _differentiable(forward, backward, xla, x, kernel_in)

    return _run(
        run, written_gradient, x, h0, kernel_in, bias, kernel_f, kernel_h
    )


def peephole_lstm_sequence(
    x,
    h0,
    c0,
    kernel_in,
    bias,
    kernel,
    peephole,
    mask=None,
    written_gradient=True,
):
    """Peephole LSTM; returns ``(every h_t time-major, c_T)``."""
    import tensorflow as tf

    units = kernel.shape[0]
    shape = [h0.shape[0], units]
    length = _length(x)
    xla = _xla(written_gradient)

    def run(x, h0, c0, kernel_in, bias, kernel, peephole):
        # Vectors broadcast to batch rows once: element-wise operations on
        # equal shapes are cheaper than broadcasting ones inside the loops.
        p_i, p_f, p_o = (tf.zeros_like(h0) + p for p in tf.split(peephole, 3))
        bias = _zeros(h0, 4 * units) + bias

        def step(carry, inputs):
            h, c = carry
            z = tf.matmul(inputs[0], kernel_in) + tf.matmul(h, kernel) + bias
            z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
            i = tf.sigmoid(z_i + p_i * c)
            f = tf.sigmoid(z_f + p_f * c)
            g = tf.tanh(z_c)
            c_new = f * c + i * g
            o = tf.sigmoid(z_o + p_o * c_new)
            tc = tf.tanh(c_new)
            h_new = o * tc
            valid = inputs[1] if mask is not None else None
            h_new = _keep(valid, h_new, h)
            kept_c = _keep(valid, c_new, c)
            return [h_new, kept_c], [h_new, h, c, c_new, i, f, g, o, tc]

        def forward():
            return _forward_scan(
                step, [h0, c0], [x], mask, [shape] * 9, length, written_gradient
            )

        def backward(records, d_hs, d_c_last):
            def core(d, accs, inputs):
                d_h, d_c = d
                c, c_new, i, f, g, o, tc = inputs
                d_zo = _sigmoid_grad(o, d_h * tc)
                d_c = d_c + _tanh_grad(tc, d_h * o) + d_zo * p_o
                d_zi = _sigmoid_grad(i, d_c * g)
                d_zf = _sigmoid_grad(f, d_c * c)
                d_zc = _tanh_grad(g, d_c * i)
                d_z = tf.concat([d_zi, d_zf, d_zc, d_zo], -1)
                d_h_prev = tf.matmul(d_z, kernel, transpose_b=True)
                d_c_prev = d_c * f + d_zi * p_i + d_zf * p_f
                a_i, a_f, a_o, a_b = accs
                accs = [
                    a_i + d_zi * c,
                    a_f + d_zf * c,
                    a_o + d_zo * c_new,
                    a_b + d_z,
                ]
                return [d_h_prev, d_c_prev], accs, [d_z]

            zeros = tf.zeros_like(h0)
            (d_h0, d_c0), accs, (d_zs,) = _backward(
                core,
                d_hs,
                [zeros, _final_grad(d_c_last, c0)],
                [zeros] * 3 + [_zeros(h0, 4 * units)],
                records[2:],
                [[shape[0], 4 * units]],
                mask,
                length,
            )
            sums = [tf.reduce_sum(a, 0) for a in accs]
            d_peephole = tf.concat(sums[:3], 0)
            return (
                d_zs,
                d_h0,
                d_c0,
                sums[3],
                _outer(_stack(records[1]), d_zs),
                d_peephole,
            )

        return _differentiable(
            forward, backward, xla, x, kernel_in, cell_state=True
        )

    return _run(
        run, written_gradient, x, h0, c0, kernel_in, bias, kernel, peephole
    )


def layer_norm_lstm_sequence(
    x,
    h0,
    c0,
    kernel_in,
    kernel,
    input_gamma,
    bias,
    gamma,
    cell_gamma,
    cell_beta,
    epsilon,
    mask=None,
    written_gradient=True,
):
    """Layer-normalised LSTM for time-major inputs ``x``.

    The gate term is ``LN(x W; g_x) + LN(U h; g_h) + b``. The input term
    does not depend on the state: it is computed for the whole sequence
    before the forward loop (in the XLA function, a measured gain there);
    its gradient is still computed step by step in the backward loop
    (summing the gain and bias gradients over the whole sequence after the
    loop measured slower under XLA). Returns ``(every h_t time-major,
    c_T)``.
    """
    import tensorflow as tf

    units = kernel.shape[0]
    batch = h0.shape[0]
    shape = [batch, units]
    wide = [batch, 4 * units]
    column = [batch, 1]
    length = _length(x)
    xla = _xla(written_gradient)

    def run(
        x,
        h0,
        c0,
        kernel_in,
        kernel,
        input_gamma,
        bias,
        gamma,
        cell_gamma,
        cell_beta,
    ):
        def step(carry, inputs):
            h, c = carry
            r_hat, r_inv = _moments(tf.matmul(h, kernel), epsilon)
            z = inputs[0] + r_hat * gamma
            z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
            i = tf.sigmoid(z_i)
            f = tf.sigmoid(z_f)
            g = tf.tanh(z_c)
            o = tf.sigmoid(z_o)
            c_new = f * c + i * g
            c_hat, c_inv = _moments(c_new, epsilon)
            tn = tf.tanh(c_hat * cell_gamma + cell_beta)
            h_new = o * tn
            valid = inputs[1] if mask is not None else None
            h_new = _keep(valid, h_new, h)
            kept_c = _keep(valid, c_new, c)
            saved = [h_new, h, c, r_hat, r_inv]
            return [h_new, kept_c], saved + [i, f, g, o, c_hat, c_inv, tn]

        shapes = [shape] * 3 + [wide, column] + [shape] * 5 + [column, shape]

        def forward():
            x_hat, x_inv = _moments(_project(x, kernel_in), epsilon)
            carry, saved = _forward_scan(
                step,
                [h0, c0],
                [x_hat * input_gamma + bias],
                mask,
                shapes,
                length,
                written_gradient,
            )
            return carry, saved + [x_hat, x_inv]

        def backward(records, d_hs, d_c_last):
            def core(d, accs, inputs):
                d_h, d_c = d
                c, r_hat, r_inv, i, f, g, o, c_hat, c_inv, tn = inputs[:10]
                x_hat, x_inv = inputs[10:]
                d_zo = _sigmoid_grad(o, d_h * tn)
                d_n = _tanh_grad(tn, d_h * o)
                d_c = d_c + _norm_backward(d_n * cell_gamma, c_hat, c_inv)
                d_z = tf.concat(
                    [
                        _sigmoid_grad(i, d_c * g),
                        _sigmoid_grad(f, d_c * c),
                        _tanh_grad(g, d_c * i),
                        d_zo,
                    ],
                    -1,
                )
                d_x = _norm_backward(d_z * input_gamma, x_hat, x_inv)
                d_r = _norm_backward(d_z * gamma, r_hat, r_inv)
                d_h_prev = tf.matmul(d_r, kernel, transpose_b=True)
                a_x, a_b, a_g, a_cg, a_cb = accs
                accs = [
                    a_x + d_z * x_hat,
                    a_b + d_z,
                    a_g + d_z * r_hat,
                    a_cg + d_n * c_hat,
                    a_cb + d_n,
                ]
                return [d_h_prev, d_c * f], accs, [d_x, d_r]

            zeros = tf.zeros_like(h0)
            wide_zeros = _zeros(h0, 4 * units)
            (d_h0, d_c0), accs, (d_xs, d_rs) = _backward(
                core,
                d_hs,
                [zeros, _final_grad(d_c_last, c0)],
                [wide_zeros] * 3 + [zeros] * 2,
                records[2:],
                [wide, wide],
                mask,
                length,
            )
            a_x, a_b, a_g, a_cg, a_cb = (tf.reduce_sum(a, 0) for a in accs)
            return (
                d_xs,
                d_h0,
                d_c0,
                _outer(_stack(records[1]), d_rs),
                a_x,
                a_b,
                a_g,
                a_cg,
                a_cb,
            )

        return _differentiable(
            forward, backward, xla, x, kernel_in, cell_state=True
        )

    return _run(
        run,
        written_gradient,
        x,
        h0,
        c0,
        kernel_in,
        kernel,
        input_gamma,
        bias,
        gamma,
        cell_gamma,
        cell_beta,
    )


def layer_norm_gru_sequence(
    x,
    h0,
    kernel_in,
    kernel,
    input_gamma,
    bias,
    gamma,
    epsilon,
    mask=None,
    written_gradient=True,
):
    """Layer-normalised GRU for time-major inputs ``x``.

    The input term is normalised for the whole sequence before the loop,
    as in `layer_norm_lstm_sequence`. Returns every ``h_t``, time-major.
    """
    import tensorflow as tf

    units = kernel.shape[0]
    batch = h0.shape[0]
    shape = [batch, units]
    wide = [batch, 3 * units]
    column = [batch, 1]
    length = _length(x)
    xla = _xla(written_gradient)

    def run(x, h0, kernel_in, kernel, input_gamma, bias, gamma):
        def step(carry, inputs):
            h = carry[0]
            s_hat, s_inv = _moments(tf.matmul(h, kernel), epsilon)
            s_z, s_r, s_n = tf.split(s_hat * gamma, 3, axis=-1)
            a_z, a_r, a_n = tf.split(inputs[0], 3, axis=-1)
            z = tf.sigmoid(a_z + s_z)
            r = tf.sigmoid(a_r + s_r)
            n = tf.tanh(a_n + r * s_n)
            h_new = n + z * (h - n)
            h_new = _keep(inputs[1] if mask is not None else None, h_new, h)
            saved = [h_new, h, s_hat, s_inv]
            return [h_new], saved + [z, r, n, s_n]

        shapes = [shape, shape, wide, column] + [shape] * 4

        def forward():
            x_hat, x_inv = _moments(_project(x, kernel_in), epsilon)
            carry, saved = _forward_scan(
                step,
                [h0],
                [x_hat * input_gamma + bias],
                mask,
                shapes,
                length,
                written_gradient,
            )
            return carry, saved + [x_hat, x_inv]

        def backward(records, d_hs):
            def core(d, accs, inputs):
                d_h = d[0]
                h, s_hat, s_inv, z, r, n, s_n, x_hat, x_inv = inputs
                d_az = _sigmoid_grad(z, d_h * (h - n))
                d_an = _tanh_grad(n, d_h - d_h * z)
                d_ar = _sigmoid_grad(r, d_an * s_n)
                d_a = tf.concat([d_az, d_ar, d_an], -1)
                d_s = tf.concat([d_az, d_ar, d_an * r], -1)
                d_x = _norm_backward(d_a * input_gamma, x_hat, x_inv)
                d_sh = _norm_backward(d_s * gamma, s_hat, s_inv)
                d_prev = d_h * z + tf.matmul(d_sh, kernel, transpose_b=True)
                a_x, a_b, a_g = accs
                accs = [a_x + d_a * x_hat, a_b + d_a, a_g + d_s * s_hat]
                return [d_prev], accs, [d_x, d_sh]

            (d_h0,), accs, (d_xs, d_ss) = _backward(
                core,
                d_hs,
                [tf.zeros_like(h0)],
                [_zeros(h0, 3 * units)] * 3,
                records[1:],
                [wide, wide],
                mask,
                length,
            )
            a_x, a_b, a_g = (tf.reduce_sum(a, 0) for a in accs)
            return (
                d_xs,
                d_h0,
                _outer(_stack(records[1]), d_ss),
                a_x,
                a_b,
                a_g,
            )

        return _differentiable(forward, backward, xla, x, kernel_in)

    return _run(
        run,
        written_gradient,
        x,
        h0,
        kernel_in,
        kernel,
        input_gamma,
        bias,
        gamma,
    )


class FusedLoop:
    """Mixin of the layers whose cell has a ``fused_sequence`` method.

    The fast path of LayerNormLSTM, LayerNormGRU, PeepholeLSTM, MGU and
    JANET. On the TensorFlow backend, without ``unroll``, with the default
    activations and no active recurrent-dropout mask (``recurrent_dropout``
    is 0, or the call is not training), the layer runs the cell's
    written-out forward and backward loops (this module; masks,
    ``go_backwards``, initial states and input dropout included).
    Otherwise, and on other backends, it runs the general loop of
    `GatedRNN`, whose gradient TensorFlow derives. Set ``layer.fused =
    False`` to force the general loop (the tests compare the two).

    In graphs (`tf.function`, ``fit``) the forward and backward loops of a
    training call each run as one XLA-compiled function, called from the
    ordinary graph of the step, so that XLA fuses each step's element-wise
    work (when TensorFlow has XLA; ``jit_compile`` of the model is not
    needed); JANET's loops are not compiled. The first training step
    compiles them, and so does the first step at each new input shape.
    Eager training calls and inference calls (and so exports) run the
    plain loops; ``kerasweights.recurrent.fused.XLA_LOOPS = False`` turns
    XLA off. A function that differentiates a training call (a train
    step) saves in a SavedModel, with the custom gradient, which reads the
    forward loop's stacked records (see docs/recurrent.md). A gradient
    of a gradient through a compiled training call (a gradient penalty)
    fails in TensorFlow ("TensorList crossing the XLA/TF boundary"): set
    ``layer.fused = False`` or ``XLA_LOOPS = False`` for such models.
    """

    fused = True

    def uses_fused_loop(self, training=False):
        cell = self.cell
        return (
            self.fused
            and keras.backend.backend() == "tensorflow"
            and not self.unroll
            and not (training and cell.recurrent_dropout > 0)
            and cell.fused_supported()
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self.uses_fused_loop(training):
            return super().inner_loop(
                sequences, initial_state, mask, training=training
            )
        cell = self.cell
        states = list(initial_state)
        if mask is not None:
            mask = ops.cast(mask, "bool")
        if self.go_backwards:
            sequences = ops.flip(sequences, axis=1)
            if mask is not None:
                mask = ops.flip(mask, axis=1)
        input_mask, _ = cell.dropout_masks(
            sequences[:, 0, :], states[0], training
        )
        if input_mask is not None:
            sequences = sequences * ops.expand_dims(input_mask, 1)
        time_mask = None
        if mask is not None:
            time_mask = ops.expand_dims(ops.transpose(mask, (1, 0)), -1)
        # The written-out gradient in training calls; inference calls
        # (and exports) keep only the forward loop.
        hs, new_states = cell.fused_sequence(
            ops.transpose(sequences, (1, 0, 2)),
            states,
            time_mask,
            written_gradient=isinstance(training, (bool, int))
            and bool(training),
        )
        outputs = ops.transpose(hs, (1, 0, 2))
        if mask is None:
            return outputs[:, -1], outputs, new_states
        valid = ops.expand_dims(mask, -1)
        # Before the first valid step the carried output is zero.
        seen = ops.cumsum(ops.cast(valid, "int32"), axis=1) > 0
        carried = ops.where(seen, outputs, ops.zeros_like(outputs))
        if self.zero_output_for_mask:
            outputs = ops.where(valid, outputs, ops.zeros_like(outputs))
        else:
            outputs = carried
        return carried[:, -1], outputs, new_states


def run_cell(sequence, sequences, states, weights, *constants, **options):
    """A cell's ``fused_sequence``: ``sequence`` (one of this module's).

    Calls ``sequence(sequences, *states, *weights, *constants, **options)``
    with the weights cast to the inputs' dtype; returns every ``h_t``
    (time-major) and the final states.
    """
    dtype = sequences.dtype
    out = sequence(
        sequences,
        *states,
        *(ops.cast(w, dtype) for w in weights),
        *constants,
        **options,
    )
    if len(states) == 1:
        return out, [out[-1]]
    hs, c_last = out
    return hs, [hs[-1], c_last]


def default_activations(cell):
    """Whether ``cell`` uses ``tanh`` and ``sigmoid`` (the fused loops')."""
    activation = getattr(cell, "activation", keras.activations.tanh)
    gate = getattr(cell, "recurrent_activation", keras.activations.sigmoid)
    return (
        activation is keras.activations.tanh
        and gate is keras.activations.sigmoid
    )
