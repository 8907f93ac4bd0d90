"""The gradient tap: statistics of the real training step, computed in-graph.

`GradientTap` wraps two public methods of a compiled model's optimizer
instance, ``apply`` (which ``apply_gradients`` calls) and ``scale_loss``
(which every Keras 3 ``train_step`` calls on the loss), before ``fit``
traces its train function. The wrappers add a few graph ops to the step that
``fit`` itself runs, so the statistics describe the very gradients the
optimizer receives: no second forward or backward pass, no fixed probe
batch. This works the same for Sequential, functional and subclassed models,
with ``jit_compile=True`` (the ops are XLA-compatible) and with
``steps_per_execution > 1`` (one row of a small ring buffer per step).

Steps that are not recorded add no op: with one step per train-function
call (``steps_per_execution=1``) the model's train function becomes a small
Python function (`GradientTap._dispatch`) that runs the model's own,
untouched train function on them and the tapped one only on recorded steps
(the wrappers add no op while the plain one is traced). On CPU, alternating
between the two compiled functions has a cost of its own: the tapped call
that follows plain ones takes longer than the same call repeated (about
0.2 ms for the dense net of benchmarks/health_overhead.py; the cause lies in
TensorFlow's runtime, not in the added ops). With several steps per call
the tapped function runs every time and a ``tf.cond`` on the step counter
skips the statistics in between.

On a recorded step (every ``every_n_steps``-th optimizer call) the tap
writes, per trainable variable: the sum of squared gradient entries, the
largest finite absolute entry, the NaN, Inf and exact-zero counts, the sum of
squares of the weight update and of the weights, the non-finite weight
count, and for the bias of a ReLU layer the number of units whose gradient
was exactly zero on the whole batch (such a unit's output was zero for every
example) and how many have been so for ``dead_steps`` recorded steps in a
row. For tanh and sigmoid layers it records the fraction of activations in
the saturated range. Only this row of scalars leaves the device, and only
when the callback reads it.

Under a `keras.optimizers.LossScaleOptimizer` (``mixed_float16``) the
gradients are divided by the optimizer's current scale before any
statistic, so norms are the unscaled ones; a step whose scaled gradients
were not finite is the optimizer's own overflow skip and is flagged as
``skipped``, not as a NaN.

Under a `tf.distribute` strategy with several replicas the gradients the
optimizer receives are each replica's share; the tap sums them across
replicas (one extra all-reduce per step) so the statistics and the loss
are those of the global batch.
"""

import threading

import keras
import numpy as np
import tensorflow as tf

__all__ = ["GradientTap", "VAR_FIELDS", "STEP_FIELDS"]

# Columns of one ring-buffer row.
STEP_FIELDS = ("step", "loss", "loss_scale", "skipped")
VAR_FIELDS = (
    "sumsq",
    "max_abs",
    "nan",
    "inf",
    "zeros",
    "update_sumsq",
    "weight_sumsq",
    "weight_nonfinite",
    "zero_units",
    "dead_units",
)
_NV = len(VAR_FIELDS)
_NS = len(STEP_FIELDS)
# The raw row on the device (see `GradientTap._stats`, decoded by
# `GradientTap._decode`): a head (step, loss, loss scale), _FAST numbers
# per variable, the dead-unit counts of ReLU biases, the saturated
# fractions, then an exact block of a flag, _EXACT numbers per variable and
# one more, filled only on a step with a non-finite value.
_HEAD = 3
_FAST = 6
_EXACT = 6

# The callback reads the ring buffer once this many recorded steps are
# waiting (and at every epoch end): one device read per batch of steps.
# With on_problem="stop" or "raise" it reads every READ_BATCH recorded
# steps, so training stops soon after a problem; with "warn", which only
# reports, every READ_BATCH_WARN: a read with its diagnoses costs about a
# millisecond of host time, whatever the number of rows.
READ_BATCH = 15
READ_BATCH_WARN = 50

_SATURATING = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
# An activation within this distance of its bound counts as saturated.
SATURATION_MARGIN = 0.01
# A recorded step's weights become the recovery point only when its loss is
# at most ``ref + LOSS_JUMP * max(|ref|, 1)``, ``ref`` being the largest
# loss of an accepted step: weights that an exploding update left finite
# but useless (loss 1e28 where it was 0.7) are not kept.
LOSS_JUMP = 100.0


def _named_activation(layer):
    """The name of a layer's built-in activation we watch, or None.

    Only a plain ``activation`` attribute of the layer itself counts (Dense,
    Conv, Activation...); recurrent layers expose their cell's activation
    through a read-only property, which is not wrapped.
    """
    activation = vars(layer).get("activation")
    for name in ("relu", "tanh", "sigmoid"):
        if activation is getattr(keras.activations, name):
            return name
    return None


def _all_layers(model):
    """Every layer inside ``model`` (depth first), through public APIs."""
    seen, found = set(), []

    def visit(layer):
        for sub in getattr(layer, "layers", None) or []:
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            found.append(sub)
            visit(sub)

    visit(model)
    return found


def _layer_key(variable):
    path = getattr(variable, "path", None) or variable.name
    return path.rsplit("/", 1)[0] if "/" in path else path


class GradientTap:
    """Captures statistics of the gradients ``fit`` applies, step by step.

    Args:
        model: A compiled, built Keras model.
        every_n_steps: Record every n-th optimizer step (1: every step).
        dead_steps: Recorded steps in a row a ReLU unit's gradient must be
            exactly zero on the whole batch before it counts as dead.
        watch_activations: Also record the saturated fraction of tanh and
            sigmoid layers (wraps their ``activation`` attribute during
            fit).
        keep_gradients: Also keep a copy of the latest recorded step's
            (unscaled) gradients on the device, for histograms
            (`latest_gradients`); costs one copy of the gradients per
            recorded step.
        read_batch: Recorded steps the reader lets wait at most between
            two reads (`read`); the ring buffer holds twice that, plus one
            call's steps.

    Attributes:
        variables: The trainable variables watched, in model order.
        layers: Layer keys (variable path prefixes) in first-use order.
        saturating: ``(layer key, activation name)`` of watched layers.
        lost: Recorded steps whose row was overwritten before `read` saw
            it (0 while the reader keeps up).
    """

    def __init__(
        self,
        model,
        every_n_steps=1,
        dead_steps=3,
        watch_activations=True,
        keep_gradients=False,
        read_batch=READ_BATCH,
    ):
        self.model = model
        self.read_batch = int(read_batch)
        self.every_n_steps = int(every_n_steps)
        self.dead_steps = int(dead_steps)
        self.watch_activations = bool(watch_activations)
        self.keep_gradients = bool(keep_gradients)
        self.installed = False
        self._read_upto = -1
        # Recorded steps overwritten in the ring before `read` saw them.
        self.lost = 0

    # ------------------------------------------------------------ set-up
    def install(self):
        """Creates the variables, wraps the optimizer, resets train_function.

        Raises:
            InvalidArgumentError: The model is not compiled.
        """
        from kerasweights.errors import InvalidArgumentError

        model = self.model
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None:
            raise InvalidArgumentError(
                "The model must be compiled with an optimizer before "
                "GradientHealth can watch it. Received: optimizer=None"
            )
        self.optimizer = optimizer
        self.loss_scaled = isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        )
        self.strategy = model.distribute_strategy
        self.replicas = self.strategy.num_replicas_in_sync
        spe = max(1, int(getattr(model, "steps_per_execution", 1)))
        # Recorded steps one train-function call can add, and the ring size:
        # the callback reads before unread rows could be overwritten (with
        # slack: with "warn" its batch hook runs in a Keras worker thread,
        # which may lag a few steps behind training).
        self.per_call = -(-spe // self.every_n_steps)
        self.capacity = 2 * self.read_batch + self.per_call
        # One step per call and not every step recorded: the callback
        # runs the model's own train function on the steps in between, so
        # they cost nothing. Several steps per call: the tapped function
        # runs every time and a tf.cond picks the recorded steps.
        self.two_functions = spe == 1 and self.every_n_steps > 1
        self.conditional = spe > 1 and self.every_n_steps > 1
        self._plain = False
        self._traced = threading.local()
        self.ready = False
        self._wrapped_layers = []
        if model.trainable_variables:
            self._setup(watch_activations=self.watch_activations)
        # else: a model that builds itself on its first step (a subclassed
        # model never called); the variables are made during that first
        # trace, outside the graph, and activations are not watched.
        # The model's own train function, kept for the steps that are not
        # recorded and put back by `remove`.
        model.make_train_function()
        self.plain_function = model.train_function
        self._wrap_optimizer()
        self.installed = True
        model.make_train_function(force=True)
        self.tapped_function = model.train_function
        if self.two_functions:
            # One plain Python function picks the train function of each
            # call, so the callback need not set ``model.train_function``
            # (an attribute set through Keras's tracking) per batch.
            self._calls = 0
            model.train_function = self._dispatch

    def _dispatch(self, iterator):
        """The train function with ``two_functions``: the tapped step on
        recorded steps (every ``every_n_steps``-th call), the model's own
        in between."""
        recorded = self._calls % self.every_n_steps == 0
        self._calls += 1
        self._plain = not recorded
        if recorded:
            return self.tapped_function(iterator)
        return self.plain_function(iterator)

    def _setup(self, watch_activations):
        model = self.model
        self.variables = list(model.trainable_variables)
        if not self.variables:
            # Nothing to watch (a model without trainable weights).
            return
        self._index = {id(v): i for i, v in enumerate(self.variables)}
        self._index_by_path = {v.path: i for i, v in enumerate(self.variables)}

        self.layers = []
        self.var_layer = []
        for v in self.variables:
            key = _layer_key(v)
            if key not in self.layers:
                self.layers.append(key)
            self.var_layer.append(self.layers.index(key))

        # Bias variables of ReLU layers: their exact-zero gradient entries
        # are the units that were zero on the whole batch.
        self.relu_bias = {}
        self.saturating = []
        self._wrapped_layers = []
        for layer in _all_layers(model):
            name = _named_activation(layer)
            bias = getattr(layer, "bias", None)
            if name == "relu" and bias is not None and bias.trainable:
                idx = self._index.get(id(bias))
                if idx is not None:
                    self.relu_bias[idx] = tuple(bias.shape)
            if name in _SATURATING and watch_activations:
                self.saturating.append((layer, name))
        self.saturating_keys = [
            _layer_key(layer.trainable_variables[0])
            if layer.trainable_variables
            else layer.name
            for layer, _ in self.saturating
        ]

        # Float non-trainable weights of trainable layers (BatchNorm's
        # moving statistics...): the forward pass updates them, so they are
        # part of the recovery point. Frozen layers are left out (they do
        # not change, and may be large).
        self.extra = []
        seen = {id(v) for v in self.variables}
        for layer in [model, *_all_layers(model)]:
            if getattr(layer, "layers", None) or not layer.trainable:
                continue
            for v in layer.non_trainable_weights:
                dtype = str(getattr(v, "dtype", ""))
                if id(v) not in seen and dtype.startswith(("float", "bfloat")):
                    seen.add(id(v))
                    self.extra.append(v)

        with self.strategy.scope():
            self._make_variables()
        self._wrap_activations()
        self.ready = True

    def _ensure_ready(self):
        if not self.ready:
            with tf.init_scope():
                self._setup(watch_activations=False)

    def _variable(self, initial, name, dtype="float32"):
        return tf.Variable(
            initial,
            dtype=dtype,
            trainable=False,
            name=f"gradient_health_{name}",
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )

    def _make_variables(self):
        n_vars = len(self.variables)
        self.relu_order = sorted(self.relu_bias)
        width = (
            _HEAD
            + _FAST * n_vars
            + len(self.relu_order)
            + len(self.saturating)
            + _EXACT * n_vars
            + 1
        )
        self.width = width
        init = np.full((self.capacity, width), np.nan, np.float32)
        init[:, 0] = -1.0
        self.buffer = self._variable(init, "buffer")
        self.counter = self._variable(0, "counter", "int64")
        # The recovery point: the weights before the latest recorded step
        # whose loss and gradients were finite and sane (see `_stats`),
        # the non-trainable weights of `extra` as that step left them, the
        # step (-1: none yet), its loss, and the largest accepted loss.
        self.shadow = [
            self._variable(tf.zeros(v.shape, "float32"), f"shadow_{i}")
            for i, v in enumerate(self.variables)
        ]
        self.extra_shadow = [
            self._variable(tf.zeros(v.shape, "float32"), f"extra_{i}")
            for i, v in enumerate(self.extra)
        ]
        self.shadow_step = self._variable(-1, "shadow_step", "int64")
        self.shadow_loss = self._variable(np.nan, "shadow_loss")
        # The largest loss of an accepted step, and the loss a step must
        # not exceed to be accepted (see `LOSS_JUMP`).
        self.ref_loss = self._variable(-np.inf, "ref_loss")
        self.loss_limit = self._variable(np.inf, "loss_limit")
        # Zero-run counters of the units of all ReLU biases, one vector;
        # `relu_segments` says which bias each unit belongs to.
        sizes = [int(np.prod(self.relu_bias[p])) for p in self.relu_order]
        self.relu_segments = np.repeat(np.arange(len(sizes)), sizes)
        self.dead_count = self._variable(
            tf.zeros([sum(sizes)], "int32"), "dead", "int32"
        )
        self.saturation = [
            self._variable(0.0, f"saturation_{slot}")
            for slot in range(len(self.saturating))
        ]
        if self.keep_gradients:
            self.kept = [
                self._variable(tf.zeros(v.shape, "float32"), f"grad_{i}")
                for i, v in enumerate(self.variables)
            ]
            self.kept_step = self._variable(-1, "grad_step", "int64")

    def _wrap_optimizer(self):
        optimizer = self.optimizer
        original_apply = optimizer.apply
        original_scale_loss = optimizer.scale_loss
        tap = self

        def apply(grads, trainable_variables=None):
            tap._ensure_ready()
            if not tap.ready:
                return original_apply(grads, trainable_variables)
            return tap._apply(original_apply, grads, trainable_variables)

        def scale_loss(loss):
            tap._ensure_ready()
            # Handed to apply, later in the same traced step.
            tap._traced.loss = loss
            return original_scale_loss(loss)

        optimizer.apply = apply
        optimizer.scale_loss = scale_loss

    def _wrap_activations(self):
        tap = self

        for slot, (layer, name) in enumerate(self.saturating):
            original = layer.activation
            low, high = _SATURATING[name]

            def watched(x, _original=original, _slot=slot, _lo=low, _hi=high):
                y = _original(x)
                if not tap._plain:
                    tap._record_saturation(y, _slot, _lo, _hi)
                return y

            # Keep the original's name so a mid-fit save still serializes
            # the activation as the built-in one.
            watched.__name__ = original.__name__
            watched.__module__ = original.__module__
            watched.__qualname__ = original.__qualname__
            layer.activation = watched
            self._wrapped_layers.append((layer, original))

    def remove(self):
        """Restores the optimizer and layers; the next fit retraces."""
        if not self.installed:
            return
        for attr in ("apply", "scale_loss"):
            if attr in vars(self.optimizer):
                delattr(self.optimizer, attr)
        for layer, original in self._wrapped_layers:
            layer.activation = original
        self._wrapped_layers = []
        self.installed = False
        self.model.train_function = self.plain_function
        self.model.make_test_function(force=True)
        self.model.make_predict_function(force=True)

    # ------------------------------------------------------------ in-graph
    def _is_recorded(self):
        return tf.equal(self.counter % self.every_n_steps, 0)

    def _when_recorded(self, fn, otherwise):
        """Runs ``fn`` in the graph on recorded steps only."""
        if not self.conditional:
            # Every call of this function is a recorded step.
            return fn()
        return tf.cond(self._is_recorded(), fn, otherwise)

    def _take_loss(self):
        """The loss this replica's step passed to ``scale_loss``, or NaN."""
        loss = getattr(self._traced, "loss", None)
        self._traced.loss = None
        if loss is not None:
            graph = tf.compat.v1.get_default_graph()
            while graph is not None and graph is not loss.graph:
                graph = getattr(graph, "outer_graph", None)
            if graph is None:
                # Made in a graph this one cannot see (a custom step).
                loss = None
        if loss is None:
            return tf.constant(np.nan, "float32")
        return tf.cast(tf.reduce_sum(loss), "float32")

    def _record_saturation(self, y, slot, low, high):
        middle = (low + high) / 2.0
        reach = (high - low) / 2.0 - SATURATION_MARGIN

        def record():
            # Within SATURATION_MARGIN of either bound.
            far = tf.abs(tf.cast(y, "float32") - middle) >= reach
            self.saturation[slot].assign(tf.reduce_mean(_as_float(far)))
            return tf.constant(True)

        self._when_recorded(record, lambda: tf.constant(False))

    def _apply(self, original_apply, grads, trainable_variables):
        loss = self._take_loss()
        if self._plain:
            return original_apply(grads, trainable_variables)
        grads = list(grads)
        if trainable_variables is None:
            variables = list(self.variables)
        else:
            variables = list(trainable_variables)
        by_position = {}
        for v, g in zip(variables, grads, strict=True):
            pos = self._position(v)
            if pos is not None and g is not None:
                by_position[pos] = tf.cast(tf.convert_to_tensor(g), "float32")

        if self.loss_scaled:
            if not self.optimizer.built:
                # The optimizer builds itself on its first apply; build it
                # now, as apply would, so its current scale can be read.
                with keras.name_scope(
                    self.optimizer.name, caller=self.optimizer
                ):
                    self.optimizer.build(variables)
            # Read before apply, which halves it after an overflow.
            scale = tf.cast(self.optimizer.dynamic_scale, "float32")
        else:
            scale = tf.constant(1.0)
        if self.replicas > 1:
            ctx = tf.distribute.get_replica_context()
            if ctx is not None:
                # Each replica holds its share of the global batch's
                # gradient (and loss): their sum is the global one.
                keys = sorted(by_position)
                summed = ctx.all_reduce(
                    tf.distribute.ReduceOp.SUM,
                    [by_position[k] for k in keys] + [loss],
                )
                by_position = dict(zip(keys, summed[:-1], strict=True))
                loss = summed[-1]

        keys = tuple(sorted(by_position))
        # The weights about to be updated, read before apply changes them:
        # the base of the update ratio, and the recovery point when finite.
        before = [self._value(v) for v in self.variables]
        result = original_apply(grads, trainable_variables)

        def write_row():
            self._stats(
                keys, [by_position[k] for k in keys], before, scale, loss
            )
            return tf.constant(True)

        self._when_recorded(write_row, lambda: tf.constant(False))
        self.counter.assign_add(self.every_n_steps if self.two_functions else 1)
        return result

    @staticmethod
    def _value(variable):
        return tf.cast(tf.convert_to_tensor(variable), "float32")

    def _position(self, variable):
        pos = self._index.get(id(variable))
        if pos is None:
            pos = self._index_by_path.get(getattr(variable, "path", None))
        return pos

    def _stats(self, keys, grads, before, scale, loss):
        """Computes one ring-buffer row and stores it, with the recovery
        point and the dead-unit counters.

        On CPU every graph op costs a dispatch, and so does every node of a
        ``tf.cond`` branch that is not taken, so the row is built from as
        few ops as possible: per tensor one fused sum of squares
        (``l2_loss``), its max and min (the max abs is taken on the host),
        the zero count, and for the weights the sums of squares of the
        weights and of the update; all the scalars are stacked in one op.
        Scaling (the factor 2 of ``l2_loss``, the loss scale) is left to the
        host. Only when one of these numbers is not finite does a
        ``tf.cond`` take the exact path (`_exact`), which counts the NaN and
        Inf entries and takes norms over the finite ones; its branch is a
        handful of ops on all tensors at once, so the step that does not
        take it pays little for it.
        """
        n = len(self.variables)
        zero = tf.constant(0.0)
        grads = dict(zip(keys, grads, strict=True))
        g = [grads.get(pos) for pos in range(n)]
        self.present = np.asarray([x is not None for x in g])
        after = [self._value(v) for v in self.variables]
        fast, checked = [], [loss]
        for pos in range(n):
            x, b = g[pos], before[pos]
            weights = tf.nn.l2_loss(b)
            update = tf.nn.l2_loss(after[pos] - b)
            checked.append(weights)
            if x is None:
                fast += [zero, zero, zero, zero, update, weights]
                continue
            sumsq = tf.nn.l2_loss(x)
            checked.append(sumsq)
            # Half the number of non-zero entries (sign is 0 or +-1).
            fast += [
                sumsq,
                tf.reduce_max(x),
                tf.reduce_min(x),
                tf.nn.l2_loss(tf.sign(x)),
                update,
                weights,
            ]
        count = self.counter.read_value()
        pieces = [tf.stack([tf.cast(count, "float32"), loss, scale] + fast)]
        if self.relu_order:
            pieces.append(self._dead_units(g))
        pieces += [tf.reshape(s.read_value(), [1]) for s in self.saturation]
        row = tf.concat(pieces, 0)
        exact = tf.cond(
            tf.reduce_all(tf.math.is_finite(row)),
            lambda: tf.zeros([_EXACT * n + 1]),
            lambda: self._exact(g, after),
        )
        # The loss and the gradients of this step were computed at the
        # weights before its update: they vouch for those weights as the
        # recovery point. The sum is finite only when every term is.
        self._keep_recovery_point(before, tf.add_n(checked), loss, count)
        if self.keep_gradients:
            for pos, x in enumerate(g):
                if x is not None:
                    self.kept[pos].assign(x / scale)
            self.kept_step.assign(count)
        slot = tf.cast((count // self.every_n_steps) % self.capacity, "int32")
        row = tf.reshape(tf.concat([row, exact], 0), [1, -1])
        if tf.distribute.has_strategy():
            # A distributed (on-read) variable cannot be scattered into.
            self.buffer.assign(
                tf.tensor_scatter_nd_update(
                    self.buffer.read_value(), tf.reshape(slot, [1, 1]), row
                )
            )
        else:
            self.buffer.scatter_update(
                tf.IndexedSlices(row, tf.reshape(slot, [1]))
            )
        return tf.constant(True)

    def _dead_units(self, g):
        """Updates the zero-run counters of the ReLU biases (all in one
        vector); returns how many units of each bias are dead."""
        bias = tf.concat(
            [
                tf.zeros(self.relu_bias[pos]) if g[pos] is None else g[pos]
                for pos in self.relu_order
            ],
            0,
        )
        new = (self.dead_count + 1) * tf.cast(tf.equal(bias, 0.0), "int32")
        self.dead_count.assign(new)
        # Unsorted: XLA has no sorted segment sum.
        return tf.math.unsorted_segment_sum(
            _as_float(new >= self.dead_steps),
            self.relu_segments,
            len(self.relu_order),
        )

    def _exact(self, g, after):
        """The exact block of a row with a NaN or Inf somewhere.

        Per variable: NaN and Inf gradient entries, the sum of squares and
        the max abs of the finite entries, the non-finite weight entries
        after the update, the zero gradient entries; after a flag (1).
        Computed on all tensors at once (one flat vector and segment sums):
        slow per element, but few ops, and this branch runs only on such a
        step.
        """
        n = len(self.variables)
        sizes = [int(np.prod(v.shape)) for v in self.variables]
        present = [p for p in range(n) if g[p] is not None]

        def flat(tensors):
            return tf.concat([tf.reshape(t, [-1]) for t in tensors], 0)

        def per_var(values, positions):
            ids = np.repeat(positions, [sizes[p] for p in positions])
            return tf.math.unsorted_segment_sum(
                values, tf.constant(ids, "int32"), n
            )

        if present:
            grad = flat([g[p] for p in present])
            clean = tf.where(tf.math.is_finite(grad), grad, 0.0)
            ids = np.repeat(present, [sizes[p] for p in present])
            max_abs = tf.math.unsorted_segment_max(
                tf.abs(clean), tf.constant(ids, "int32"), n
            )
            columns = [
                per_var(_as_float(tf.math.is_nan(grad)), present),
                per_var(_as_float(tf.math.is_inf(grad)), present),
                per_var(clean * clean, present),
                tf.maximum(max_abs, 0.0),
            ]
        else:
            columns = [tf.zeros([n])] * 4
        everything = list(range(n))
        columns.append(per_var(_not_finite(flat(after)), everything))
        columns.append(
            per_var(_as_float(tf.equal(grad, 0.0)), present)
            if present
            else tf.zeros([n])
        )
        return tf.concat(
            [
                tf.ones([1]),
                tf.reshape(tf.stack(columns, axis=1), [-1]),
            ],
            0,
        )

    def _keep_recovery_point(self, before, checked, loss, count):
        """Makes ``before`` the recovery point when this step vouches for it.

        The loss and the gradients of a step are computed at the weights
        before its update, so they are what shows those weights usable:
        they are kept only when the loss, every gradient's and every
        weight's sum of squares are finite (``checked``, their sum, is
        finite), and the loss is not far above the largest loss of an
        accepted step (`LOSS_JUMP`). An exploding update can leave finite
        weights of 1e29 whose loss is NaN or huge; the point stays at the
        weights from before that update.
        """
        accept = tf.logical_and(
            tf.math.is_finite(checked), loss <= self.loss_limit.read_value()
        )

        def keep():
            for shadow, b in zip(self.shadow, before, strict=True):
                shadow.assign(b)
            for shadow, v in zip(self.extra_shadow, self.extra, strict=True):
                shadow.assign(self._value(v))
            self.shadow_step.assign(count)
            self.shadow_loss.assign(loss)
            ref = tf.maximum(self.ref_loss.read_value(), loss)
            self.ref_loss.assign(ref)
            self.loss_limit.assign(
                ref + LOSS_JUMP * tf.maximum(tf.abs(ref), 1.0)
            )
            return tf.constant(True)

        tf.cond(accept, keep, lambda: tf.constant(False))

    def _decode(self, raw):
        """Turns raw ring-buffer rows into rows of the host layout.

        The host layout is ``STEP_FIELDS``, then ``VAR_FIELDS`` per
        variable, then the saturated fractions; gradient figures are
        unscaled here (divided by the loss scale of their step).
        """
        n = len(self.variables)
        raw = np.asarray(raw, dtype=np.float64)
        rows = len(raw)
        scale = raw[:, 2, None]
        fast = raw[:, _HEAD : _HEAD + _FAST * n].reshape(rows, n, _FAST)
        at = _HEAD + _FAST * n
        dead = raw[:, at : at + len(self.relu_order)]
        at += len(self.relu_order)
        saturation = raw[:, at : at + len(self.saturating)]
        at += len(self.saturating)
        bad = raw[:, at] > 0.5
        exact = raw[:, at + 1 : at + 1 + _EXACT * n].reshape(rows, n, _EXACT)

        out = np.zeros((rows, n, _NV))
        out[:, :, 0] = 2.0 * fast[:, :, 0] / scale**2
        out[:, :, 1] = np.maximum(fast[:, :, 1], -fast[:, :, 2]) / scale
        out[:, :, 4] = self.host_layout()["sizes"] - 2.0 * fast[:, :, 3]
        out[:, :, 5] = 2.0 * fast[:, :, 4]
        out[:, :, 6] = 2.0 * fast[:, :, 5]
        if bad.any():
            out[bad, :, 0] = exact[bad, :, 2] / scale[bad] ** 2
            out[bad, :, 1] = exact[bad, :, 3] / scale[bad]
            out[bad, :, 2] = exact[bad, :, 0]
            out[bad, :, 3] = exact[bad, :, 1]
            out[bad, :, 4] = exact[bad, :, 5]
            out[bad, :, 7] = exact[bad, :, 4]
            # Weights that were not finite before the update: neither
            # their norm nor the update ratio means anything.
            weights_bad = bad & ~np.all(np.isfinite(out[:, :, 6]), axis=1)
            out[weights_bad, :, 5] = np.nan
            out[weights_bad, :, 6] = np.nan
        out[:, :, 8:] = np.nan
        relu = self.relu_order
        out[:, relu, 8] = out[:, relu, 4]
        out[:, relu, 9] = dead
        present = getattr(self, "present", None)
        if present is not None and not present.all():
            out[:, ~present, :] = np.nan
        nonfinite = np.nansum(out[:, :, 2] + out[:, :, 3], axis=1)
        skipped = self.loss_scaled & (nonfinite > 0)
        head = np.stack([raw[:, 0], raw[:, 1], raw[:, 2], skipped], axis=1)
        return np.concatenate(
            [head, out.reshape(rows, n * _NV), saturation], axis=1
        )

    # ------------------------------------------------------------ reading
    def host_layout(self):
        """Static per-variable facts the host needs to build records."""
        if getattr(self, "_layout", None) is None:
            n_layers = len(self.layers)
            owner = np.asarray(self.var_layer, dtype=np.int64)
            relu = np.zeros(len(self.variables))
            for i in self.relu_bias:
                relu[i] = 1.0
            units = np.zeros(n_layers)
            for i, shape in self.relu_bias.items():
                units[owner[i]] += float(np.prod(shape))
            slots = {}
            for slot, key in enumerate(self.saturating_keys):
                if key in self.layers:
                    slots[self.layers.index(key)] = slot
            onehot = np.zeros((len(self.variables), n_layers))
            onehot[np.arange(len(self.variables)), owner] = 1.0
            self._layout = {
                "owner": owner,
                "onehot": onehot,
                "members": [owner == li for li in range(n_layers)],
                "sizes": np.asarray(
                    [float(np.prod(v.shape)) for v in self.variables]
                ),
                "relu": relu,
                "units": units,
                "saturation_of_layer": slots,
            }
        return self._layout

    def read(self):
        """New recorded rows since the last call, oldest first.

        A recorded step whose row was overwritten before this call (the
        reader fell more than ``capacity`` recorded steps behind) is not
        returned; it is counted in ``lost``. This costs nothing on the
        device: rows carry their step.

        Returns:
            A list of `StepRecord` objects.
        """
        from kerasweights.health.records import StepRecord

        if not self.ready:
            return []
        buffer = np.asarray(self.buffer.numpy(), dtype=np.float64)
        rows = buffer[buffer[:, 0] > self._read_upto]
        rows = self._decode(rows[np.argsort(rows[:, 0], kind="stable")])
        records = StepRecord.from_rows(self, rows) if len(rows) else []
        if records:
            # Recorded steps are the multiples of every_n_steps: any of
            # them between the last one read and the newest one here that
            # is not here was overwritten before this read.
            n = self.every_n_steps
            previous = self._read_upto if self._read_upto >= 0 else -n
            expected = (records[-1].step - previous) // n
            self.lost += max(0, expected - len(records))
            self._read_upto = records[-1].step
        return records

    def latest_gradients(self):
        """The latest recorded step's unscaled gradients, by layer.

        Returns:
            ``(step, {layer key: 1-D NumPy array})``, or ``(None, {})``
            before the first recorded step or without ``keep_gradients``.
        """
        if not (self.ready and self.keep_gradients):
            return None, {}
        step = int(self.kept_step.numpy())
        if step < 0:
            return None, {}
        parts = {}
        for i, kept in enumerate(self.kept):
            key = self.layers[self.var_layer[i]]
            parts.setdefault(key, []).append(np.ravel(kept.numpy()))
        return step, {k: np.concatenate(v) for k, v in parts.items()}

    def last_finite_weights(self):
        """The trainable weights of the recovery point.

        Those are the weights before the latest recorded step whose loss
        and gradients were finite and sane (see `_keep_recovery_point`).

        Returns:
            A list of NumPy arrays, one per watched variable (in model
            dtype), aligned with ``self.variables``; None when no recorded
            step qualified yet.
        """
        if not self.ready or int(self.shadow_step.numpy()) < 0:
            return None
        return [
            np.asarray(s.numpy()).astype(v.dtype)
            for s, v in zip(self.shadow, self.variables, strict=True)
        ]

    def recovery_point(self):
        """The whole recovery point, or None when there is none yet.

        Returns:
            A dict: ``step`` (the recorded step whose weights these are,
            before its update), ``loss`` (that step's loss), ``weights``
            (as `last_finite_weights`) and ``extra`` (``(variable, value)``
            pairs of the non-trainable weights of trainable layers, e.g.
            BatchNorm statistics, as that step left them).
        """
        weights = self.last_finite_weights()
        if weights is None:
            return None
        return {
            "step": int(self.shadow_step.numpy()),
            "loss": float(self.shadow_loss.numpy()),
            "weights": weights,
            "extra": [
                (v, np.asarray(s.numpy()).astype(v.dtype))
                for s, v in zip(self.extra_shadow, self.extra, strict=True)
            ],
        }


def _as_float(mask):
    return tf.cast(mask, "float32")


def _count(mask):
    return tf.reduce_sum(_as_float(mask))


def _not_finite(x):
    return _as_float(tf.logical_not(tf.math.is_finite(x)))
