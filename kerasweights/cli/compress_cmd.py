"""``kerasweights compress``: prune, cluster and quantize a .keras model."""

import argparse
import json
import os
import re
import sys

__all__ = ["add_parser", "run"]

# TFLite's C++ runtime announces its default CPU delegate on the stderr
# file descriptor when the compressed model is first run; it says nothing
# the report does not, and `-q` promises silence on success.
_TFLITE_CHATTER = re.compile(
    r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"
)
# tf.lite.Interpreter warns on every start that it moves to ai_edge_litert;
# kerasweights runs the stock interpreter on purpose (export does the same).
_INTERPRETER_DEPRECATION = r"\s*Warning: tf\.lite\.Interpreter is deprecated"


def _without_tflite_chatter():
    """Drop TFLite's delegate line from file descriptor 2, keep the rest."""
    from kerasweights._startup import filtered_stderr

    return filtered_stderr(_TFLITE_CHATTER)


def _sparsity(text):
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = None
    if value is None or not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            "expected a sparsity strictly between 0 and 1 (the share of each "
            f"kernel's weights set to zero, e.g. 0.5 or 50%). Received: "
            f"{text!r}"
        )
    return value


def _positive(low, high=None):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"{low} to {high}"
            raise argparse.ArgumentTypeError(
                f"expected an integer {bound}. Received: {text!r}"
            )
        return value

    return parse


def _rate(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a learning rate in (0, 1). Received: {text!r}"
        )
    return value


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "compress",
        help="prune, cluster and int8-quantize a .keras model",
        description=(
            "Fine-tune a copy of MODEL while pruning, clustering and/or "
            "quantizing its kernels; report file size, parameters, accuracy "
            "and latency before and after; write the compressed model to "
            "OUTDIR as a SavedModel and a TFLite file, each verified in a "
            "fresh process that never imports kerasweights."
        ),
    )
    parser.add_argument("model", metavar="MODEL.keras", help="a .keras file")
    parser.add_argument("outdir", metavar="OUTDIR", help="output folder")
    parser.add_argument(
        "--prune",
        type=_sparsity,
        metavar="SPARSITY",
        help="share of every kernel's weights to zero by magnitude, e.g. 0.5",
    )
    parser.add_argument(
        "--quantize",
        choices=("int8", "int8-ptq"),
        help="int8: quantization-aware fine-tuning, then int8 TFLite "
        "weights; int8-ptq: post-training int8 only",
    )
    parser.add_argument(
        "--cluster",
        type=_positive(2, 256),
        metavar="N",
        help="share N values per kernel (2 to 256)",
    )
    parser.add_argument(
        "--data",
        metavar="FILE.npz",
        help="fine-tuning data: a .npz with x_train, y_train, x_test, y_test "
        "(or x and y, split 80/20; see docs/getting-started.md, --data "
        "files); default: the embedded digits when the model takes "
        "(8, 8, 1) images or (8, 8) row sequences",
    )
    parser.add_argument(
        "--epochs",
        type=_positive(1),
        default=4,
        help="fine-tuning epochs (default 4)",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive(1),
        default=32,
        help="fine-tuning batch size (default 32)",
    )
    parser.add_argument(
        "--learning-rate",
        type=_rate,
        default=1e-3,
        help="Adam learning rate of the fine-tuning (default 0.001)",
    )
    parser.add_argument(
        "--seed", type=_positive(0), default=0, help="seed (default 0)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous kerasweights compress run in OUTDIR "
        "(folders holding other files are always refused)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the JSON report on stdout"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing on success"
    )
    return parser


_SPLIT = ("x_train", "y_train", "x_test", "y_test")
_MIN_EXAMPLES = 10


def _read_data(path):
    """``(DataFile, (x_train, y_train, x_test, y_test))`` of ``--data``."""
    import numpy as np

    from kerasweights.cli._data import arrays_named
    from kerasweights.cli._data import check_same_length
    from kerasweights.cli._data import read_data_file
    from kerasweights.errors import InputDataError

    data = read_data_file(path)
    names, arrays = arrays_named(data, "compress", (_SPLIT, ("x", "y")))
    if names == _SPLIT:
        check_same_length(data, "x_train", "y_train")
        check_same_length(data, "x_test", "y_test")
        return data, arrays
    check_same_length(data, "x", "y")
    x, y = arrays
    if len(x) < _MIN_EXAMPLES:
        raise InputDataError(
            f"{data.prefix}: arrays 'x' and 'y' hold {len(x)} examples; "
            f"kerasweights compress needs at least {_MIN_EXAMPLES} to split "
            "them 80/20 into training and test data."
        )
    order = np.random.default_rng(0).permutation(len(x))
    cut = int(0.8 * len(x))
    train, test = order[:cut], order[cut:]
    return data, (x[train], y[train], x[test], y[test])


def _check_data(data, model):
    """Inputs against the model's input; class indices against its units.

    Labels shaped like the output without its last axis, for an output of
    several units, can only be class indices: whole numbers in [0, units).
    """
    from kerasweights.cli._data import check_class_labels
    from kerasweights.cli._data import check_input_shape

    keys = [k for k in (*_SPLIT, "x", "y") if k in data.arrays]
    for key in keys:
        if key.startswith("x"):
            check_input_shape(data, key, model)
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1:
        return
    try:
        shape = tuple(outputs[0].shape)
        units = int(shape[-1])
    except (TypeError, ValueError, AttributeError, IndexError):
        return
    for key in keys:
        y = data.arrays[key]
        if key.startswith("y") and units > 1 and y.ndim == len(shape) - 1:
            check_class_labels(data, key, units)


def _digits_for(model):
    from kerasweights.datasets.digits import load_digits
    from kerasweights.errors import InputDataError

    shapes = [tuple(t.shape[1:]) for t in model.inputs]
    if shapes == [(8, 8, 1)]:
        view = "image"
    elif shapes in ([(8, 8)], [(None, 8)]):
        view = "sequence"
    else:
        raise InputDataError(
            f"No --data given, and the model takes inputs of shape "
            f"{[(-1, *s) for s in shapes]}; the embedded digits fit only "
            "(-1, 8, 8, 1) images or (-1, 8, 8) row sequences. Pass --data "
            "FILE.npz with x_train, y_train, x_test and y_test."
        )
    split = load_digits(view, seed=0)
    return split.x_train, split.y_train, split.x_test, split.y_test


def _bytes(n):
    return f"{n / 1024:.1f} KiB"


def _print_report(report):
    before, after = report["before"], report["after"]
    metric = report["settings"]["metric"]
    rows = [("parameters (nonzero)", "parameters")]
    lines = []
    for label, _ in rows:
        b, a = before["parameters"], after["parameters"]
        lines.append(
            (
                label,
                f"{b['total']} ({b['nonzero']})",
                f"{a['total']} ({a['nonzero']})",
            )
        )
    for key, label in (
        ("keras", ".keras file"),
        ("keras_gzip", ".keras file, gzipped"),
        ("tflite", "TFLite file"),
        ("tflite_gzip", "TFLite file, gzipped"),
    ):
        if key in before["size"] and key in after["size"]:
            lines.append(
                (label, _bytes(before["size"][key]), _bytes(after["size"][key]))
            )
    lines.append(
        (f"{metric} (Keras)", f"{before[metric]:.4f}", f"{after[metric]:.4f}")
    )
    if f"tflite_{metric}" in after:
        lines.append(
            (f"{metric} (TFLite)", "", f"{after[f'tflite_{metric}']:.4f}")
        )
    lines.append(
        (
            "latency, 1 example (Keras)",
            f"{before['latency_ms']:.3f} ms",
            f"{after['latency_ms']:.3f} ms",
        )
    )
    if "tflite_latency_ms" in before and "tflite_latency_ms" in after:
        lines.append(
            (
                "latency, 1 example (TFLite)",
                f"{before['tflite_latency_ms']:.3f} ms",
                f"{after['tflite_latency_ms']:.3f} ms",
            )
        )
    width = max(len(row[0]) for row in lines)
    print(f"{'':{width}}  {'before':>16}  {'after':>16}")
    for label, b, a in lines:
        print(f"{label:{width}}  {b:>16}  {a:>16}")
    if _int8_did_not_shrink(report):
        print(
            "note: int8 stores only weight matrices of at least 1024 "
            "entries as int8 (TFLite's threshold); this model's smaller "
            "ones stay float32, so its TFLite file did not shrink"
        )


def _int8_did_not_shrink(report):
    """Whether an int8 TFLite file is no smaller than the float one."""
    sizes = report["before"]["size"], report["after"]["size"]
    return (
        report["settings"].get("quantize") == "int8"
        and all("tflite" in size for size in sizes)
        and sizes[1]["tflite"] >= sizes[0]["tflite"]
    )


def check(args):
    """The flags and the --data file, before TensorFlow is imported."""
    from kerasweights.errors import InvalidArgumentError

    if args.prune is None and args.quantize is None and args.cluster is None:
        raise InvalidArgumentError(
            "Nothing to do: pass --prune SPARSITY, --quantize int8 or "
            "--cluster N (or several)."
        )
    from kerasweights.cli.export_cmd import check_output_path

    check_output_path(args.model, args.outdir)
    inside = os.path.realpath(args.model)
    out = os.path.realpath(args.outdir)
    if os.path.commonpath([inside, out]) == out:
        raise InvalidArgumentError(
            f"The model file {args.model!r} lies inside the output folder "
            f"{args.outdir!r}; choose an output folder outside it."
        )
    args.data_file = _read_data(args.data) if args.data else None


def run(args):
    from kerasweights.cli._data import with_file
    from kerasweights.compression import compress
    from kerasweights.compression import write_compressed
    from kerasweights.errors import InputDataError
    from kerasweights.errors import KerasWeightsWarning
    from kerasweights.export import check_output_folder
    from kerasweights.saving import load_model

    if not hasattr(args, "data_file"):
        check(args)
    given = args.data_file
    model = load_model(args.model, compile=False)
    if given is not None:
        _check_data(given[0], model)
    check_output_folder(
        args.outdir,
        "compress",
        overwrite=args.overwrite,
        overwrite_option="--overwrite",
    )
    if given is not None:
        source, (x_train, y_train, x_test, y_test) = "given", given[1]
    else:
        source = "digits"
        x_train, y_train, x_test, y_test = _digits_for(model)

    import warnings

    try:
        with (
            _without_tflite_chatter(),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always", KerasWeightsWarning)
            warnings.filterwarnings(
                "ignore", _INTERPRETER_DEPRECATION, UserWarning
            )
            result = compress(
                model,
                x_train,
                y_train,
                x_test,
                y_test,
                prune=args.prune,
                quantize=args.quantize,
                cluster=args.cluster,
                epochs=args.epochs,
                batch_size=args.batch_size,
                learning_rate=args.learning_rate,
                seed=args.seed,
            )
    except InputDataError as exc:
        if source != "given":
            raise
        raise with_file(args.data, exc) from exc
    for warning in caught:
        if issubclass(warning.category, KerasWeightsWarning):
            print(f"warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(
                warning.message,
                warning.category,
                warning.filename,
                warning.lineno,
            )
    result.report["data"] = source
    result.report["model_file"] = os.path.abspath(args.model)
    result.report["before"]["size"]["model_file"] = os.path.getsize(args.model)
    report = write_compressed(
        result,
        args.outdir,
        x_test,
        overwrite=args.overwrite,
        overwrite_option="--overwrite",
    )
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    if args.quiet:
        return 0
    print(f"Wrote {report['directory']} (fine-tuned on {source} data)")
    _print_report(report)
    if "sparsity" in report:
        values = report["sparsity"].values()
        print(
            f"sparsity reached per kernel: {min(values):.1%} to "
            f"{max(values):.1%} (target {report['settings']['prune']:.0%})"
        )
    if "tflite" in report:
        print(
            "verified: SavedModel and TFLite file served in fresh processes "
            "without kerasweights"
            + (
                f", TFLite class agreement {report['tflite']['same_class']:.1%}"
                if "same_class" in report["tflite"]
                else ""
            )
        )
    else:
        print(
            "verified: SavedModel served in a fresh process without "
            "kerasweights"
        )
        print(
            "no model.tflite written: "
            + (report.get("tflite_error") or "TFLite conversion failed")
        )
    return 0
