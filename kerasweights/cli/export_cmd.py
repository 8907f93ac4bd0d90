"""``kerasweights export``: a .keras file to a verified SavedModel."""

import json
import warnings

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="write a .keras model as a verified SavedModel",
        description=(
            "Write MODEL as a SavedModel in OUTDIR with a named, typed "
            "serving signature, then load it in a fresh process that never "
            "imports kerasweights and compare its outputs with the model's. "
            "A fairness training wrapper (a model with a prediction_model) "
            "is exported as its prediction model, with a note."
        ),
        epilog=(
            "Recheck an export's weights later with `kerasweights verify "
            "OUTDIR`."
        ),
    )
    parser.add_argument("model", metavar="MODEL.keras", help="a .keras file")
    parser.add_argument("outdir", metavar="OUTDIR", help="SavedModel folder")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous kerasweights export in OUTDIR, only once "
        "the new one is verified (folders holding other files, even inside "
        "the export's folders, or a tune run are always refused)",
    )
    parser.add_argument(
        "--data",
        metavar="FILE",
        help="check inputs: a .npy array, or a .npz with one array per "
        "input name (see docs/getting-started.md, --data files); the model "
        "itself must run on them, and integer inputs take whole numbers "
        "only (default: digits test data when the model takes digits, "
        "otherwise seeded synthetic inputs)",
    )
    parser.add_argument(
        "--tflite",
        action="store_true",
        help="also write OUTDIR/model.tflite, converted with TFLite's "
        "built-in operators only (runs on the stock interpreter) and "
        "checked against the model",
    )
    parser.add_argument(
        "--tflite-batch-size",
        metavar="N",
        type=_positive_int,
        default=None,
        help="batch size of the TFLite model (default 1); needs --tflite",
    )
    parser.add_argument(
        "--tflite-time-steps",
        metavar="T",
        type=_positive_int,
        default=None,
        help="pin unknown non-batch axes (time) of the TFLite model to T "
        "and unroll recurrent loops if needed (default: keep them "
        "dynamic); needs --tflite",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON report on stdout"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing on success"
    )
    return parser


def _positive_int(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, received {text!r}"
        )
    return value


def check_output_path(model, outdir):
    """Refuse an OUTDIR that is a file (the model file itself, say).

    Shared with ``compress``; the library's own check only knows folders
    and would say the model "lies inside" it.
    """
    import os

    from kerasweights.errors import InvalidArgumentError

    if not os.path.exists(outdir) or os.path.isdir(outdir):
        return
    same = os.path.exists(model) and os.path.samefile(model, outdir)
    what = "the model file itself" if same else "a file"
    raise InvalidArgumentError(
        f"OUTDIR {outdir!r} is {what}; expected a folder to write the "
        "output into (a new one is created), e.g. "
        f"{os.path.splitext(os.path.basename(outdir))[0] + '_out'!r}"
    )


def check(args):
    """The flags and the --data file, before TensorFlow is imported."""
    from kerasweights.cli import UsageError
    from kerasweights.cli._data import read_data_file

    check_output_path(args.model, args.outdir)

    if not args.tflite:
        for flag, value in (
            ("--tflite-batch-size", args.tflite_batch_size),
            ("--tflite-time-steps", args.tflite_time_steps),
        ):
            if value is not None:
                raise UsageError(
                    f"kerasweights export: {flag} {value} needs --tflite; "
                    "add --tflite or leave it out"
                )
    args.data_file = read_data_file(args.data) if args.data else None


def run(args):
    from kerasweights.cli._data import with_file
    from kerasweights.errors import InputDataError
    from kerasweights.export import export_model_file
    from kerasweights.export.saved_model import ServingModelNote
    from kerasweights.export.verification import format_signature

    if not hasattr(args, "data_file"):
        check(args)
    loaded = args.data_file
    data = None
    if loaded is not None:
        data = loaded.arrays[None] if loaded.single else loaded.arrays
    with warnings.catch_warnings():
        # The note is printed below from the result, once.
        warnings.simplefilter("ignore", ServingModelNote)
        try:
            result = export_model_file(
                args.model,
                args.outdir,
                overwrite=args.overwrite,
                data=data,
                tflite=args.tflite,
                tflite_batch_size=args.tflite_batch_size or 1,
                tflite_time_steps=args.tflite_time_steps,
                overwrite_option="--overwrite",
            )
        except InputDataError as exc:
            if not args.data:
                raise
            raise with_file(args.data, exc) from None
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    if args.quiet:
        return 0
    verification = result["verification"]

    print(f"Wrote {result['directory']}")
    if "served_model" in result:
        print(f"  note: {result['served_model']['note']}")
    signature = format_signature(
        verification["inputs"], verification["outputs"]
    )
    print(f"  serving signature: {signature}")
    print(
        "  verified in a fresh process without kerasweights on "
        f"{result['check_data']} inputs "
        f"{[list(c.values())[0] for c in verification['cases']]}, max "
        f"difference {verification['max_abs_diff']:.2g}"
    )
    if "tflite" in result:
        tflite = result["tflite"]
        print(
            f"  model.tflite: {tflite['strategy']}; checked on "
            f"{len(tflite['checked'])} batches against the model, max "
            f"difference {tflite['max_abs_diff']:.2g}"
        )
    integrity = result["integrity"]
    print(
        f"  weights: SHA-256 of {len(integrity['variables'])} stored "
        f"variables recorded (overall {integrity['overall'][:16]}); "
        "recheck with `kerasweights verify OUTDIR`"
    )
    return 0
