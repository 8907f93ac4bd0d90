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

    def __post_init__(self):
        # Computed once: the detectors ask for these many times.
        self.grad_nonfinite = sum(layer.nonfinite for layer in self.layers)
        self.weight_nonfinite = sum(
            layer.weight_nonfinite for layer in self.layers
        )
        num = sum(layer.update_sumsq for layer in self.layers)
        den = sum(layer.weight_sumsq for layer in self.layers)
        self.update_ratio = math.sqrt(num / den) if den > 0 else math.nan

    @classmethod
    def from_row(cls, tap, row):
        """Builds a record from one ring-buffer row of ``tap``."""
        from kerasweights.health.tap import _NS
        from kerasweights.health.tap import _NV

        layout = tap.host_layout()
        n_vars = len(tap.variables)
        n_layers = len(tap.layers)
        per_var = row[_NS : _NS + _NV * n_vars].reshape(n_vars, _NV)
        saturation = row[_NS + _NV * n_vars :]
        recorded = ~np.isnan(per_var[:, 0])
        values = np.where(np.isnan(per_var), 0.0, per_var)
        owner = layout["owner"]

        def per_layer(column, mask=None):
            weights = values[:, column]
            if mask is not None:
                weights = weights * mask
            return np.bincount(owner, weights=weights, minlength=n_layers)

        sumsq = per_layer(0)
        max_abs = np.zeros(n_layers)
        np.maximum.at(max_abs, owner, values[:, 1])
        nan, inf, zeros = per_layer(2), per_layer(3), per_layer(4)
        upd, wsq, wbad = per_layer(5), per_layer(6), per_layer(7)
        relu = layout["relu"]
        zero_units, dead_units = per_layer(8, relu), per_layer(9, relu)
        size = np.bincount(
            owner, weights=layout["sizes"] * recorded, minlength=n_layers
        )
        sat = layout["saturation_of_layer"]
        layers = []
        for li, key in enumerate(tap.layers):
            slot = sat.get(li)
            layers.append(
                LayerStats(
                    name=key,
                    norm=math.sqrt(sumsq[li]),
                    max_abs=float(max_abs[li]),
                    nan=int(nan[li]),
                    inf=int(inf[li]),
                    zero_fraction=float(zeros[li]) / max(size[li], 1.0),
                    update_ratio=(
                        math.sqrt(upd[li] / wsq[li])
                        if wsq[li] > 0
                        else math.nan
                    ),
                    weight_nonfinite=int(wbad[li]),
                    units=int(layout["units"][li]),
                    zero_units=int(zero_units[li]),
                    dead_units=int(dead_units[li]),
                    saturation=None
                    if slot is None
                    else float(saturation[slot]),
                    update_sumsq=float(upd[li]),
                    weight_sumsq=float(wsq[li]),
                )
            )
        return cls(
            step=int(row[0]),
            loss=float(row[1]),
            loss_scale=float(row[2]),
            skipped=bool(row[3] > 0.5),
            global_norm=math.sqrt(float(np.sum(sumsq))),
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
