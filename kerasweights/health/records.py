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
        return cls.from_rows(tap, np.asarray(row)[None, :])[0]

    @classmethod
    def from_rows(cls, tap, rows):
        """Builds records from ring-buffer rows of ``tap`` (one per row).

        The per-layer sums of all rows are taken at once with NumPy; only
        the objects are made one by one.
        """
        from kerasweights.health.tap import _NS
        from kerasweights.health.tap import _NV

        rows = np.asarray(rows, dtype=np.float64)
        layout = tap.host_layout()
        n_vars = len(tap.variables)
        n_layers = len(tap.layers)
        per_var = rows[:, _NS : _NS + _NV * n_vars].reshape(-1, n_vars, _NV)
        saturation = rows[:, _NS + _NV * n_vars :]
        recorded = ~np.isnan(per_var[:, :, 0])
        values = np.where(np.isnan(per_var), 0.0, per_var)
        onehot = layout["onehot"]
        # [row, field, layer]; ReLU unit counts only from ReLU biases.
        relu = layout["relu"]
        values[:, :, 8] *= relu
        values[:, :, 9] *= relu
        sums = np.einsum("rvf,vl->rfl", values, onehot)
        max_abs = np.stack(
            [
                values[:, members, 1].max(axis=1, initial=0.0)
                for members in layout["members"]
            ],
            axis=1,
        )
        size = (recorded * layout["sizes"]) @ onehot
        sumsq, upd, wsq = sums[:, 0], sums[:, 5], sums[:, 6]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(wsq > 0, np.sqrt(upd / wsq), np.nan)
            zero_fraction = sums[:, 4] / np.maximum(size, 1.0)
        # Every figure as nested Python lists at once: the loop below only
        # makes the objects.
        cols = [
            np.sqrt(sumsq).tolist(),
            max_abs.tolist(),
            sums[:, 2].astype(np.int64).tolist(),
            sums[:, 3].astype(np.int64).tolist(),
            zero_fraction.tolist(),
            ratio.tolist(),
            sums[:, 7].astype(np.int64).tolist(),
            sums[:, 8].astype(np.int64).tolist(),
            sums[:, 9].astype(np.int64).tolist(),
            upd.tolist(),
            wsq.tolist(),
        ]
        units = layout["units"].astype(np.int64).tolist()
        sat = layout["saturation_of_layer"]
        sat_cols = [sat.get(li) for li in range(n_layers)]
        saturation = saturation.tolist()
        global_norm = np.sqrt(sumsq.sum(axis=1)).tolist()
        head = rows[:, :4].tolist()
        # The per-record totals `__post_init__` would add up layer by
        # layer, for all rows at once.
        nan_i, inf_i, wbad_i = (sums[:, k].astype(np.int64) for k in (2, 3, 7))
        grad_nonfinite = (nan_i.sum(axis=1) + inf_i.sum(axis=1)).tolist()
        weight_nonfinite = wbad_i.sum(axis=1).tolist()
        num, den = upd.sum(axis=1), wsq.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            total_ratio = np.where(
                den > 0, np.sqrt(num / np.where(den > 0, den, 1.0)), np.nan
            ).tolist()
        names = list(tap.layers)
        make = LayerStats
        records = []
        for r in range(len(rows)):
            sat_r = saturation[r]
            layers = [
                make(*fields)
                for fields in zip(
                    names,
                    *(c[r] for c in cols[:7]),
                    units,
                    cols[7][r],
                    cols[8][r],
                    [None if c is None else sat_r[c] for c in sat_cols],
                    cols[9][r],
                    cols[10][r],
                    strict=True,
                )
            ]
            step, loss, scale, skipped = head[r]
            # Made without __init__: the totals are already known.
            record = cls.__new__(cls)
            record.__dict__.update(
                step=int(step),
                loss=loss,
                loss_scale=scale,
                skipped=skipped > 0.5,
                global_norm=global_norm[r],
                layers=layers,
                grad_nonfinite=grad_nonfinite[r],
                weight_nonfinite=weight_nonfinite[r],
                update_ratio=total_ratio[r],
            )
            records.append(record)
        return records

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
