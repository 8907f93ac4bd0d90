"""``kerasweights export``: a .keras file to a verified SavedModel."""

import json
import os
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
        "input name; the model itself must run on them, and integer inputs "
        "take whole numbers only (default: digits test data when the model "
        "takes digits, otherwise seeded synthetic inputs)",
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


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


def _load_data(path):
    """The arrays of a .npy or .npz file; never unpickles anything."""
    import zipfile

    import numpy as np

    from kerasweights.errors import InputDataError

    shown = repr(path)
    if not os.path.isfile(path):
        raise InputDataError(
            f"--data file {shown} does not exist; expected a .npy or .npz "
            "file of check inputs."
        )
    with open(path, "rb") as f:
        head = f.read(6)
    if not head.startswith(_NPY_MAGIC) and head[:4] not in _ZIP_MAGICS:
        raise InputDataError(
            f"--data file {shown} is not a NumPy .npy or .npz file (it "
            "starts with neither the .npy header nor a zip header); "
            "expected a file written by numpy.save or numpy.savez."
        )

    def one(name, read):
        try:
            value = read()
        except ValueError as exc:
            if "allow_pickle" in str(exc) or "pickle" in str(exc):
                raise InputDataError(
                    f"--data file {shown} holds an object array{name} "
                    "(Python objects, which are never loaded); expected "
                    "numeric arrays."
                ) from None
            raise
        if not isinstance(value, np.ndarray):
            raise InputDataError(
                f"--data file {shown} is a zip archive whose member"
                f"{name} is not a NumPy array; expected a .npz written by "
                "numpy.savez."
            )
        return value

    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded:
            return {
                k: one(f" {k!r}", lambda k=k: loaded[k]) for k in loaded.files
            }
    except InputDataError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc):
            raise InputDataError(
                f"--data file {shown} holds an object array (Python "
                "objects, which are never loaded); expected numeric arrays."
            ) from None
        reason = " ".join(str(exc).split())[:120]
        raise InputDataError(
            f"--data file {shown} is not a readable NumPy .npy or .npz file "
            f"(truncated or damaged: {reason}); expected a file written by "
            "numpy.save or numpy.savez."
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise InputDataError(
            f"--data file {shown} is not a readable NumPy .npy or .npz file "
            f"(truncated or damaged: {reason}); expected a file written by "
            "numpy.save or numpy.savez."
        ) from None


def run(args):
    from kerasweights.cli import UsageError
    from kerasweights.errors import InputDataError
    from kerasweights.export import export_model_file
    from kerasweights.export.saved_model import ServingModelNote
    from kerasweights.export.verification import format_signature

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
    data = _load_data(args.data) if args.data else None
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
            text = str(exc)
            raise InputDataError(
                f"--data file {args.data!r}: {text[:1].lower()}{text[1:]}"
            ) from None
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
