"""The weight transforms compression trains through: mask, share, round.

Every compressible weight keeps a float *shadow* copy. Before each
training step the layer's variable is set to ``T(shadow)``, where ``T``
applies, in this order,

1. the pruning mask (magnitude pruning: the smallest weights are zero),
2. weight sharing (clustering: each kept weight takes its cluster's mean),
3. int8 rounding (per output channel, symmetric, the grid TFLite uses).

After the step the change the optimizer made is added to the shadow: the
gradient was taken at the transformed weights and is applied to the float
ones, which is the straight-through estimator quantization-aware training
and trained clustering rely on. Pruned entries stay zero in the shadow, so
a pruned weight never grows back (as in tensorflow-model-optimization).

`WeightTransforms` runs all of this as a Keras callback, so it works with
any layer, ours or not, without wrapping or rebuilding it.
"""

import keras
import numpy as np

from kerasweights.errors import InvalidArgumentError

__all__ = [
    "INT8_LEVELS",
    "WeightTransforms",
    "fake_quantize_int8",
    "kmeans_1d",
    "magnitude_mask",
]

#: Largest int8 level used: symmetric [-127, 127], as TFLite's weights.
INT8_LEVELS = 127


def fake_quantize_int8(weight):
    """Round ``weight`` to the symmetric per-channel int8 grid.

    The channel axis is the last one (the output units of a dense,
    convolution or recurrent kernel). Each channel's scale is its largest
    absolute value over 127, so zeros stay exactly zero.

    Args:
        weight: A float NumPy array with at least two axes.

    Returns:
        An array of the same shape and dtype on the int8 grid.
    """
    axes = tuple(range(weight.ndim - 1))
    peak = np.max(np.abs(weight), axis=axes, keepdims=True)
    scale = np.where(peak > 0, peak / INT8_LEVELS, 1.0)
    levels = np.clip(np.round(weight / scale), -INT8_LEVELS, INT8_LEVELS)
    return (levels * scale).astype(weight.dtype)


def magnitude_mask(weight, sparsity, keep=None):
    """A mask that zeroes the ``sparsity`` share of smallest magnitudes.

    Args:
        weight: A NumPy array.
        sparsity: Share of entries to zero, in [0, 1).
        keep: The current mask; entries it already zeroes count as the
            smallest, so a pruned weight stays pruned.

    Returns:
        A boolean array: True where the weight is kept.
    """
    flat = np.abs(weight).ravel().astype("float64")
    if keep is not None:
        flat = np.where(keep.ravel(), flat, -1.0)
    count = int(round(sparsity * flat.size))
    mask = np.ones(flat.size, dtype=bool)
    if count > 0:
        mask[np.argpartition(flat, count - 1)[:count]] = False
    return mask.reshape(weight.shape)


def kmeans_1d(values, clusters, iterations=20):
    """Cluster scalar ``values`` into ``clusters`` groups (Lloyd's method).

    Centroids start evenly spaced between the smallest and largest value
    (linear initialisation), which keeps the few large weights their own
    centroids.

    Args:
        values: A 1-D float array.
        clusters: Number of clusters, a positive integer.
        iterations: Lloyd iterations.

    Returns:
        ``(labels, centroids)``: an int array like ``values`` and a float
        array of ``clusters`` centroids.
    """
    values = np.asarray(values, dtype="float64")
    if values.size == 0:
        return np.zeros(0, dtype="int64"), np.zeros(clusters)
    centroids = np.linspace(values.min(), values.max(), clusters)
    labels = np.zeros(values.size, dtype="int64")
    for _ in range(iterations):
        edges = (centroids[1:] + centroids[:-1]) / 2
        labels = np.searchsorted(edges, values)
        counts = np.bincount(labels, minlength=clusters)
        sums = np.bincount(labels, weights=values, minlength=clusters)
        moved = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        order = np.argsort(moved)
        moved = moved[order]
        if np.allclose(moved, centroids):
            centroids = moved
            break
        centroids = moved
    edges = (centroids[1:] + centroids[:-1]) / 2
    labels = np.searchsorted(edges, values)
    return labels, centroids


class _State:
    """Shadow weights, mask and cluster labels of one target."""

    def __init__(self, target):
        self.target = target
        self.shadow = np.array(target.variable.numpy(), dtype="float32")
        self.mask = None
        self.labels = None
        self.clusters = 0
        self.forward = None


class WeightTransforms(keras.callbacks.Callback):
    """Prune, cluster and int8-round weights while a model trains.

    Args:
        targets: The `WeightTarget` list to transform (see
            `compressible_weights`).
        schedule: A pruning schedule: a callable taking the step and
            returning ``(should_prune, sparsity)``, such as
            ``tfmot.sparsity.keras.PolynomialDecay`` (see `fit_schedule`);
            ``None`` prunes nothing.
        clusters: Number of weight clusters per weight, or ``None``.
        cluster_step: The step at which clustering starts (after the last
            mask update when pruning too). The weights are clustered at the
            end of training at the latest.
        quantize: ``"int8"`` to train on the int8 grid, or ``None``.

    Attributes:
        step: Training steps run so far.
        mask_updates: ``[(step, sparsity)]`` of every mask update.
        clustered_at: The step clustering started, or ``None``.
    """

    def __init__(
        self,
        targets,
        schedule=None,
        clusters=None,
        cluster_step=0,
        quantize=None,
    ):
        super().__init__()
        if quantize not in (None, "int8"):
            raise InvalidArgumentError(
                "`quantize` must be None or 'int8'. "
                f"Received: quantize={quantize!r}"
            )
        self.targets = list(targets)
        self.schedule = schedule
        self.clusters = clusters
        self.cluster_step = cluster_step
        self.quantize = quantize
        self.step = 0
        self.mask_updates = []
        self.clustered_at = None
        self._states = None

    # Transforms ------------------------------------------------------

    def _prune(self, sparsity):
        for state in self._states:
            state.mask = magnitude_mask(state.shadow, sparsity, state.mask)
            state.shadow = state.shadow * state.mask
            if state.labels is not None:
                self._cluster(state)

    def _cluster(self, state):
        kept = state.shadow != 0
        if state.mask is not None:
            kept &= state.mask
        count = min(self.clusters, max(int(kept.sum()), 1))
        labels, _ = kmeans_1d(state.shadow[kept], count)
        state.labels = np.full(state.shadow.shape, -1, dtype="int64")
        state.labels[kept] = labels
        state.clusters = count

    def _transformed(self, state):
        weight = state.shadow
        if state.mask is not None:
            weight = weight * state.mask
        if state.labels is not None:
            kept = state.labels >= 0
            labels = state.labels[kept]
            counts = np.bincount(labels, minlength=state.clusters)
            sums = np.bincount(
                labels, weights=weight[kept], minlength=state.clusters
            )
            centroids = sums / np.maximum(counts, 1)
            shared = np.zeros_like(weight)
            shared[kept] = centroids[labels]
            weight = shared
        if self.quantize == "int8":
            weight = fake_quantize_int8(weight)
        return weight.astype("float32")

    def _apply(self):
        for state in self._states:
            state.forward = self._transformed(state)
            state.target.variable.assign(state.forward)

    # Callback hooks --------------------------------------------------

    def _ensure_states(self):
        if self._states is None:
            self._states = [_State(t) for t in self.targets]

    def on_train_begin(self, logs=None):
        self._ensure_states()

    def on_train_batch_begin(self, batch, logs=None):
        self._ensure_states()
        if self.schedule is not None:
            should, sparsity = self.schedule(self.step)
            if bool(should):
                sparsity = float(sparsity)
                self._prune(sparsity)
                self.mask_updates.append((self.step, sparsity))
        if (
            self.clusters
            and self.clustered_at is None
            and self.step >= self.cluster_step
        ):
            for state in self._states:
                self._cluster(state)
            self.clustered_at = self.step
        self._apply()

    def on_train_batch_end(self, batch, logs=None):
        for state in self._states:
            trained = np.asarray(state.target.variable.numpy())
            state.shadow = state.shadow + (trained - state.forward)
            if state.mask is not None:
                state.shadow = state.shadow * state.mask
        self.step += 1

    def on_train_end(self, logs=None):
        self.finish()

    def finish(self):
        """Write the final transformed weights into the model.

        Clusters the weights now if clustering was asked for and training
        stopped before ``cluster_step``.
        """
        self._ensure_states()
        if self.clusters and self.clustered_at is None:
            for state in self._states:
                self._cluster(state)
            self.clustered_at = self.step
        self._apply()
