"""Seeing which layers' updates one group drives.

`GroupGradientMonitor` splits the gradient of the compiled loss on a probe
batch into the parts each group contributes and reports, per layer:

* ``group_grad_norm/<layer>/<group>``: the norm of group ``g``'s
  contribution ``grad_W sum_{i in g} w_i l_i / sum_i w_i`` (the
  contributions of all groups add up to the batch gradient);
* ``group_grad_cosine/<layer>``: the cosine between two groups'
  contributions (group 0 against group 1; with more groups, the smallest
  cosine over all pairs). Near 1: the groups push the layer the same way;
  near 0 or negative: the layer's update serves one group at the cost of
  another.

The values go into the epoch ``logs`` (so `History`, `CSVLogger` and
progress bars see them), to TensorBoard when ``log_dir`` is given, and to a
PNG at the end of training when ``png_path`` is given.
"""

import keras
import numpy as np

from kerasweights.errors import InputDataError
from kerasweights.errors import InvalidArgumentError
from kerasweights.fairness.group_codes import check_group_codes

__all__ = ["GroupGradientMonitor"]


def _per_sample_loss(model, y, y_pred):
    loss = model.loss
    if isinstance(loss, keras.losses.Loss):
        return loss.call(y, y_pred)
    fn = keras.losses.get(loss)
    if fn is None:
        raise InvalidArgumentError(
            "GroupGradientMonitor needs a model compiled with one loss. "
            f"Received: loss={loss!r}"
        )
    return fn(y, y_pred)


def _like(y, y_pred):
    """Labels shaped like one-score predictions ``(n, 1)`` when needed."""
    import tensorflow as tf

    y = tf.convert_to_tensor(y)
    if y.shape.rank == 1 and y_pred.shape.rank == 2 and y_pred.shape[-1] == 1:
        y = y[:, None]
    return tf.cast(y, y_pred.dtype)


@keras.saving.register_keras_serializable(package="kerasweights")
class GroupGradientMonitor(keras.callbacks.Callback):
    """Per-layer gradient norm of each group and cosine between groups.

    Give it a probe batch with `set_probe` before ``fit`` (arrays are not
    part of the config). It works with plain Keras models (pass the group
    codes to `set_probe`) and with the fairness training models (the probe
    inputs are a dict with the sensitive key).

    Args:
        sensitive: The sensitive input's name in a dict probe.
        num_groups: Number of group codes (>= 2).
        every_n_epochs: Measure every this many epochs (>= 1).
        log_dir: Optional TensorBoard folder.
        png_path: Optional PNG file written at the end of training.

    Raises:
        InvalidArgumentError: An argument is out of range.
        InputDataError: Training starts without a probe, or the probe has
            no row of some group.

    Example:
        >>> monitor = GroupGradientMonitor(png_path="groups.png")
        >>> monitor.set_probe(x_probe, y_probe, groups=g_probe)
        >>> model.fit(x, y, callbacks=[monitor])  # doctest: +SKIP
    """

    plugin_kind = "callback"
    plugin_name = "group_gradient_monitor"

    def __init__(
        self,
        sensitive="group",
        num_groups=2,
        every_n_epochs=1,
        log_dir=None,
        png_path=None,
    ):
        super().__init__()
        for name, value, low in (
            ("num_groups", num_groups, 2),
            ("every_n_epochs", every_n_epochs, 1),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or (value < low)
            ):
                raise InvalidArgumentError(
                    f"`{name}` must be an integer >= {low}. Received: "
                    f"{name}={value!r}"
                )
        self.sensitive = sensitive
        self.num_groups = num_groups
        self.every_n_epochs = every_n_epochs
        self.log_dir = log_dir
        self.png_path = png_path
        self.history = []
        self._probe = None
        self._writer = None

    def set_probe(self, x, y, groups=None, sample_weight=None):
        """The batch to measure on.

        Args:
            x: Model inputs; a dict holding ``sensitive`` for the fairness
                training models.
            y: Labels.
            groups: Group codes; default ``x[sensitive]``.
            sample_weight: Optional weights.

        Raises:
            InvalidArgumentError: A group code is not an integer in
                ``[0, num_groups)``.
            InputDataError: A group has no row in the probe.
        """
        if groups is None:
            if not isinstance(x, dict) or self.sensitive not in x:
                raise InputDataError(
                    "set_probe needs `groups`, or a dict `x` holding the "
                    f"sensitive input {self.sensitive!r}. Received: "
                    f"x of type {type(x).__name__}"
                )
            groups = x[self.sensitive]
        check_group_codes(
            groups, self.num_groups, "GroupGradientMonitor.set_probe"
        )
        groups = np.asarray(groups).reshape(-1).astype(int)
        present = np.bincount(groups, minlength=self.num_groups)
        if (present[: self.num_groups] == 0).any():
            missing = int(np.argmin(present[: self.num_groups]))
            raise InputDataError(
                "The probe must have rows of every group. Received: no row "
                f"of group {missing}"
            )
        weight = (
            np.ones(len(groups), "float32")
            if sample_weight is None
            else np.asarray(sample_weight, "float32").reshape(-1)
        )
        self._probe = (x, np.asarray(y), groups, weight)

    def measure(self):
        """``{name: value}`` of the current weights on the probe."""
        import tensorflow as tf

        x, y, groups, weight = self._probe
        model = self.model
        variables = model.trainable_variables
        total = float(weight.sum())
        grads = []
        for g in range(self.num_groups):
            mask = tf.constant((groups == g) * weight / total, "float32")
            with tf.GradientTape() as tape:
                y_pred = model(x, training=False)
                per = _per_sample_loss(model, _like(y, y_pred), y_pred)
                per = tf.reshape(tf.cast(per, "float32"), (-1,))
                loss = tf.reduce_sum(mask * per)
            grads.append(tape.gradient(loss, variables))
        by_layer = {}
        for i, variable in enumerate(variables):
            layer = (
                variable.path.split("/")[-2]
                if "/" in variable.path
                else (variable.name)
            )
            by_layer.setdefault(layer, []).append(i)
        values = {}
        for layer, index in by_layer.items():
            flat = []
            for g in range(self.num_groups):
                parts = [
                    np.zeros(variables[i].shape).ravel()
                    if grads[g][i] is None
                    else np.asarray(grads[g][i]).ravel()
                    for i in index
                ]
                flat.append(np.concatenate(parts))
                norm = float(np.linalg.norm(flat[-1]))
                values[f"group_grad_norm/{layer}/{g}"] = norm
            cosines = []
            for a in range(self.num_groups):
                for b in range(a + 1, self.num_groups):
                    den = np.linalg.norm(flat[a]) * np.linalg.norm(flat[b])
                    cosines.append(
                        float(flat[a] @ flat[b] / den) if den > 0 else 0.0
                    )
            values[f"group_grad_cosine/{layer}"] = min(cosines)
        return values

    def on_train_begin(self, logs=None):
        if self._probe is None:
            raise InputDataError(
                "GroupGradientMonitor needs a probe batch: call "
                "set_probe(x, y, groups=...) before fit. Received: no probe"
            )
        if self.log_dir:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        values = self.measure()
        self.history.append({"epoch": epoch, **values})
        if logs is not None:
            logs.update(values)
        if self._writer is not None:
            import tensorflow as tf

            with self._writer.as_default():
                for name, value in values.items():
                    tf.summary.scalar(name, value, step=epoch)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self.png_path and self.history:
            self.plot(self.png_path)

    def plot(self, path):
        """Last measurement: per-layer norms by group, and cosines."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        last = self.history[-1]
        layers = [
            k.split("/", 1)[1]
            for k in last
            if k.startswith("group_grad_cosine/")
        ]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        width = 0.8 / self.num_groups
        positions = np.arange(len(layers))
        for g in range(self.num_groups):
            heights = [last[f"group_grad_norm/{name}/{g}"] for name in layers]
            axes[0].bar(
                positions + g * width, heights, width, label=f"group {g}"
            )
        axes[0].set_xticks(positions + width * (self.num_groups - 1) / 2)
        axes[0].set_xticklabels(layers, rotation=30, ha="right")
        axes[0].set_ylabel("gradient norm contributed")
        axes[0].legend()
        cos = [last[f"group_grad_cosine/{name}"] for name in layers]
        axes[1].bar(positions, cos)
        axes[1].set_xticks(positions)
        axes[1].set_xticklabels(layers, rotation=30, ha="right")
        axes[1].set_ylim(-1, 1)
        axes[1].set_ylabel("cosine between groups' gradients")
        fig.suptitle(f"per-group gradients, epoch {last['epoch'] + 1}")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)

    def get_config(self):
        return {
            "sensitive": self.sensitive,
            "num_groups": self.num_groups,
            "every_n_epochs": self.every_n_epochs,
            "log_dir": self.log_dir,
            "png_path": self.png_path,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
