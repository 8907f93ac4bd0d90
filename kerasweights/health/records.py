"""One recorded training step, as plain numbers on the host."""

import dataclasses
import math

import numpy as np

__all__ = ["StepRecord", "LayerStats"]


@dataclasses.dataclass
class LayerStats:
    """Gradient statistics of one layer (all its trainable variables).

    Attributes:
        name: The layer key (the variables' path prefix).
        norm: L2 norm of the layer's gradient (finite entries).
        max_abs: Largest finite absolute gradient entry.
        nan: NaN entries in the gradient.
        inf: Inf entries in the gradient.
        zero_fraction: Fraction of gradient entries exactly zero.
        update_ratio: ||weight update|| / ||weights before the update||.
        weight_nonfinite: Non-finite weight entries after the update.
        units: Units watched for dead ReLU (0 when not a ReLU layer).
        zero_units: Units zero on the whole batch at this step.
        dead_units: Units zero on the whole batch for ``dead_steps``
            recorded steps in a row.
        saturation: Fraction of saturated activations (tanh/sigmoid
            layers), else None.
    """

    name: str
    norm: float
    max_abs: float
    nan: int
    inf: int
    zero_fraction: float
    update_ratio: float
    weight_nonfinite: int
    units: int = 0
    zero_units: int = 0
    dead_units: int = 0
    saturation: float | None = None
    update_sumsq: float = 0.0
    weight_sumsq: float = 0.0

    @property
    def nonfinite(self):
        return self.nan + self.inf


@dataclasses.dataclass
class StepRecord:
    """Everything the tap recorded for one optimizer step.

    Attributes:
        step: The optimizer call index since the tap was installed (0-based).
        loss: The training loss of that step, unscaled.
        loss_scale: The loss scale divided out of the gradients (1.0 when
            there is no loss-scale optimizer).
        skipped: True when a loss-scale optimizer skipped this step because
            its scaled gradients overflowed.
        global_norm: L2 norm of all gradients (finite entries).
        layers: `LayerStats` per layer, in model order.
    """

    step: int
    loss: float
    loss_scale: float
    skipped: bool
    global_norm: float
    layers: list

    @property
    def grad_nonfinite(self):
        return sum(layer.nonfinite for layer in self.layers)

    @property
    def weight_nonfinite(self):
        return sum(layer.weight_nonfinite for layer in self.layers)

    @property
    def update_ratio(self):
        """Global ||update|| / ||weights|| over all layers."""
        num = sum(layer.update_sumsq for layer in self.layers)
        den = sum(layer.weight_sumsq for layer in self.layers)
        return math.sqrt(num / den) if den > 0 else float("nan")

    @classmethod
    def from_row(cls, tap, row):
        """Builds a record from one ring-buffer row of ``tap``."""
        from kerasweights.health.tap import _NS
        from kerasweights.health.tap import _NV

        row = np.asarray(row, dtype=np.float64)
        n_vars = len(tap.variables)
        per_var = row[_NS : _NS + _NV * n_vars].reshape(n_vars, _NV)
        saturation = row[_NS + _NV * n_vars :]
        sat_by_layer = {
            key: float(value)
            for key, value in zip(tap.saturating_keys, saturation, strict=False)
        }

        layers = []
        for li, key in enumerate(tap.layers):
            idx = [i for i, owner in enumerate(tap.var_layer) if owner == li]
            block = per_var[idx]
            sizes = [int(np.prod(tap.variables[i].shape)) for i in idx]
            recorded = ~np.isnan(block[:, 0])
            sumsq = float(np.nansum(block[:, 0]))
            upd = float(np.nansum(block[:, 5]))
            wsq = float(np.nansum(block[:, 6]))
            size = sum(np.asarray(sizes)[recorded]) or 1
            units = sum(
                int(np.prod(tap.relu_bias[i]))
                for i in idx
                if i in tap.relu_bias
            )
            relu_rows = [k for k, i in enumerate(idx) if i in tap.relu_bias]
            stats = LayerStats(
                name=key,
                norm=math.sqrt(sumsq),
                max_abs=float(np.nanmax(block[:, 1]))
                if recorded.any()
                else 0.0,
                nan=int(np.nansum(block[:, 2])),
                inf=int(np.nansum(block[:, 3])),
                zero_fraction=float(np.nansum(block[:, 4])) / size,
                update_ratio=math.sqrt(upd / wsq) if wsq > 0 else float("nan"),
                weight_nonfinite=int(np.nansum(block[:, 7])),
                units=units,
                zero_units=int(sum(block[k, 8] for k in relu_rows)),
                dead_units=int(sum(block[k, 9] for k in relu_rows)),
                saturation=sat_by_layer.get(key),
                update_sumsq=upd,
                weight_sumsq=wsq,
            )
            layers.append(stats)
        return cls(
            step=int(row[0]),
            loss=float(row[1]),
            loss_scale=float(row[2]),
            skipped=bool(row[3] > 0.5),
            global_norm=math.sqrt(sum(s.norm**2 for s in layers)),
            layers=layers,
        )

    def to_dict(self):
        """A JSON-ready dict (non-finite numbers become strings)."""
        return {
            "step": self.step,
            "loss": _json_float(self.loss),
            "loss_scale": _json_float(self.loss_scale),
            "skipped": self.skipped,
            "global_norm": _json_float(self.global_norm),
            "layers": [
                {
                    k: _json_float(v) if isinstance(v, float) else v
                    for k, v in dataclasses.asdict(layer).items()
                }
                for layer in self.layers
            ],
        }


def _json_float(value):
    if value is None:
        return None
    value = float(value)
    if math.isfinite(value):
        return value
    return str(value)
