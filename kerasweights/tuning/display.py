"""The one place a search reports progress, gated by ``verbose``.

``verbose=0`` shows nothing; ``1`` shows one line per trial and, on a
terminal, a live epoch bar; ``2`` also shows each trial's hyperparameters
and one line per epoch. Progress goes to standard error, so standard
output stays free for the results table or ``--json``.
"""

import keras

__all__ = ["Display", "ProgressCallback"]


def _short(value):
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def format_hyperparameters(values):
    """The active hyperparameters in one short string.

    A plugin's own arguments (``dense_init/gain_variance_scaling_gain``)
    are shown inside its choice: ``dense_init=gain_variance_scaling(gain=1.5)``.
    Keras Tuner's own ``tuner/`` keys are left out.
    """
    nested = {}
    for key, value in values.items():
        if "/" in key and not key.startswith("tuner/"):
            parent, name = key.split("/", 1)
            chosen = str(values.get(parent, ""))
            if name.startswith(chosen + "_"):
                name = name[len(chosen) + 1 :]
            nested.setdefault(parent, []).append(f"{name}={_short(value)}")
    parts = []
    for key, value in values.items():
        if "/" in key:
            continue
        text = f"{key}={_short(value)}"
        if key in nested:
            text += f"({', '.join(nested[key])})"
        parts.append(text)
    return " ".join(parts)


class Display:
    """Progress and results of a search.

    Args:
        verbose: 0, 1 or 2.
        console: A `rich.console.Console` for progress; default standard
            error.
    """

    def __init__(self, verbose=1, console=None):
        self.verbose = int(verbose)
        if console is None:
            from rich.console import Console

            console = Console(stderr=True, highlight=False)
        self.console = console
        self._progress = None
        self._task = None

    def _line(self, text, level=1):
        if self.verbose >= level:
            self.console.print(text, markup=False, soft_wrap=True)

    def search_begin(self, tuner_name, total, epochs, space):
        shown = "?" if total is None else total
        self._line(
            f"Searching {shown} trials of {epochs} epochs with the "
            f"{tuner_name} tuner over {', '.join(space.models)} models"
        )
        for slot in space.slots:
            names = ", ".join(space.initializer_names(slot))
            self._line(f"  {slot} initializers: {names}", level=2)
        if "recurrent" in space.models:
            self._line(f"  recurrent cells: {', '.join(space.cell_names)}", 2)

    def trial_begin(self, number, total, epochs, hyperparameters):
        self._label = f"trial {number}" + (f"/{total}" if total else "")
        self._line(
            f"{self._label}: {format_hyperparameters(hyperparameters)}", 2
        )
        if self.verbose >= 1 and self.console.is_terminal:
            from rich.progress import Progress

            self._progress = Progress(console=self.console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self._label, total=epochs)

    def epoch_end(self, epoch, epochs, logs):
        metrics = "  ".join(
            f"{k} {_short(float(v))}"
            for k, v in (logs or {}).items()
            if k in ("loss", "accuracy", "val_loss", "val_accuracy")
        )
        if self._progress is not None:
            self._progress.update(
                self._task,
                completed=epoch + 1,
                total=epochs,
                description=f"{self._label} epoch {epoch + 1}/{epochs}",
            )
        self._line(f"  {self._label} epoch {epoch + 1}/{epochs}  {metrics}", 2)

    def trial_end(self, record, best, objective="val_accuracy"):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if record.finite:
            result = f"{objective} {record.score:.4f}"
        else:
            result = f"{record.status.upper()} ({record.reason})"
        best_text = f"  best so far {best:.4f}" if best is not None else ""
        self._line(
            f"{self._label} done in {record.seconds:.1f}s: {result}, "
            f"gradient health {record.health}{best_text}"
        )

    def message(self, text, level=1):
        self._line(text, level)


class ProgressCallback(keras.callbacks.Callback):
    """Sends epoch ends to a `Display`."""

    def __init__(self, display, epochs):
        super().__init__()
        self.display = display
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        self.display.epoch_end(
            epoch, self.params.get("epochs", self.epochs), logs
        )


def results_table(ranked, title, objective="val_accuracy"):
    """A `rich.table.Table` of ranked trials."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("rank")
    table.add_column("trial")
    table.add_column("hyperparameters", min_width=36, overflow="fold")
    table.add_column("val acc" if objective == "val_accuracy" else objective)
    table.add_column("health", overflow="fold")
    table.add_column("status", overflow="fold")
    for rank, r in enumerate(ranked, start=1):
        status = r.status if r.finite else f"{r.status}: {r.reason}"
        table.add_row(
            str(rank),
            str(r.number),
            format_hyperparameters(r.hyperparameters),
            "-" if r.score is None else f"{r.score:.4f}",
            r.health,
            status,
        )
    return table
