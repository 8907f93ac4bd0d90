"""``kerasweights health``: train a saved model briefly and diagnose it."""

import json
import os

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "health",
        help="train a .keras model briefly and diagnose its gradients",
        description=(
            "Load MODEL.keras, train it for a few epochs on FILE with the "
            "GradientHealth callback watching every step's real gradients, "
            "and print the verdict and each problem found (NaN/Inf, "
            "exploding or vanishing gradients, dead ReLU units, saturated "
            "tanh/sigmoid layers, learning rate far off, loss not "
            "decreasing, oscillating loss). The model file is not changed."
        ),
    )
    parser.add_argument("model", metavar="MODEL.keras", help="a .keras file")
    parser.add_argument(
        "--data",
        metavar="FILE",
        required=True,
        help="a NumPy .npz file holding two arrays named 'x' (inputs, first "
        "axis = examples) and 'y' (targets, same first axis); see "
        "docs/getting-started.md, --data files",
    )
    parser.add_argument(
        "--epochs", type=int, default=2, help="epochs to train (default 2)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="batch size (default 32)"
    )
    parser.add_argument(
        "--every-n-steps",
        type=int,
        default=1,
        help="check every n-th step (default 1: every step)",
    )
    parser.add_argument(
        "--optimizer",
        default=None,
        help="optimizer name when the model was saved uncompiled, or to "
        "replace its own (e.g. adam, sgd)",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="learning rate for --optimizer",
    )
    parser.add_argument(
        "--loss",
        default=None,
        help="loss name when the model was saved uncompiled (e.g. "
        "sparse_categorical_crossentropy, mse)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--plot", metavar="PNG", help="also write per-layer norms as a PNG"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the JSON report instead"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when the verdict is not 'healthy'",
    )
    return parser


def _check_args(args):
    from kerasweights.cli import UsageError

    for name in ("epochs", "batch_size", "every_n_steps"):
        value = getattr(args, name)
        if value < 1:
            flag = "--" + name.replace("_", "-")
            raise UsageError(
                f"{flag} must be a positive integer. Received: {value}"
            )
    if args.learning_rate is not None and not (
        0 < args.learning_rate < float("inf")
    ):
        raise UsageError(
            "--learning-rate must be a positive finite number. "
            f"Received: {args.learning_rate}"
        )
    if not 0 <= args.seed <= 2**32 - 1:
        raise UsageError(
            f"--seed must be an integer from 0 to {2**32 - 1}. "
            f"Received: --seed {args.seed}"
        )
    if args.learning_rate is not None and args.optimizer is None:
        raise UsageError("--learning-rate needs --optimizer. Received: none")
    if args.plot is not None:
        if os.path.exists(args.plot):
            raise UsageError(
                f"--plot file {args.plot!r} already exists; expected a new "
                "path."
            )
        if not args.plot.lower().endswith(".png"):
            raise UsageError(
                f"--plot must name a .png file. Received: --plot {args.plot!r}"
            )
        folder = os.path.dirname(os.path.abspath(args.plot))
        if not os.path.isdir(folder):
            raise UsageError(
                f"--plot {args.plot!r} is in a folder that does not exist "
                f"({folder!r}); expected a path in an existing folder."
            )


def _one_line(exc):
    return " ".join(str(exc).split())[:300]


def _loss_name(loss):
    """The snake-case name of a Keras loss given as name, object or fn."""
    import re

    if isinstance(loss, str):
        return loss.lower()
    name = getattr(loss, "__name__", None) or type(loss).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _check_data(model, data):
    """Checks 'x' against the model's input and, for a single-output model
    trained with sparse categorical cross-entropy, 'y' as class labels in
    [0, classes), before fit."""
    from kerasweights.cli._data import check_class_labels
    from kerasweights.cli._data import check_input_shape

    check_input_shape(data, "x", model)
    if _loss_name(model.loss) != "sparse_categorical_crossentropy":
        return
    outputs = getattr(model, "outputs", None) or []
    try:
        classes = int(outputs[0].shape[-1]) if len(outputs) == 1 else None
    except (TypeError, ValueError, AttributeError):
        classes = None
    if classes is not None and classes >= 2:
        check_class_labels(data, "y", classes)


def _compile(model, args):
    import keras

    from kerasweights.errors import InputDataError

    loss = args.loss or getattr(model, "loss", None)
    if loss is None:
        raise InputDataError(
            f"Model file {args.model!r} was saved without a loss; pass "
            "--loss (e.g. --loss sparse_categorical_crossentropy)."
        )
    optimizer = getattr(model, "optimizer", None)
    if args.optimizer is not None or optimizer is None:
        name = args.optimizer or "adam"
        try:
            optimizer = keras.optimizers.get(name)
        except ValueError as exc:
            raise InputDataError(
                f"--optimizer {name!r} is not a Keras optimizer name "
                "(e.g. adam, sgd, rmsprop)."
            ) from exc
        if args.learning_rate is not None:
            optimizer.learning_rate = args.learning_rate
    else:
        # A fresh copy of the saved optimizer: the file is never changed
        # and its slots start empty for this short run.
        optimizer = optimizer.__class__.from_config(optimizer.get_config())
    if isinstance(loss, str):
        # Keras resolves a loss name only at the first step; check it now so
        # a misspelt name is blamed on --loss, not on the data.
        try:
            keras.losses.get(loss)
        except (ValueError, TypeError) as exc:
            raise InputDataError(
                f"--loss {loss!r} is not a Keras loss name; expected e.g. "
                "sparse_categorical_crossentropy or mse."
            ) from exc
    try:
        model.compile(optimizer=optimizer, loss=loss)
    except (ValueError, TypeError) as exc:
        raise InputDataError(
            f"--loss {loss!r} is not usable with this model: {exc}"
        ) from exc


def _read_data(path):
    from kerasweights.cli._data import arrays_named
    from kerasweights.cli._data import check_same_length
    from kerasweights.cli._data import read_data_file

    data = read_data_file(path)
    arrays_named(data, "health", (("x", "y"),))
    check_same_length(data, "x", "y")
    return data


def check(args):
    """The flags and the --data file, before TensorFlow is imported."""
    _check_args(args)
    args.data_file = _read_data(args.data)


def run(args):
    if not hasattr(args, "data_file"):
        check(args)
    data = args.data_file
    x, y = data.arrays["x"], data.arrays["y"]

    import warnings

    import keras
    import tensorflow as tf

    from kerasweights.errors import InputDataError
    from kerasweights.health import GradientHealth
    from kerasweights.health import GradientHealthWarning
    from kerasweights.saving import load_model

    with warnings.catch_warnings():
        # The saved optimizer state is not used: a fresh optimizer of the
        # same configuration trains this short run.
        warnings.filterwarnings("ignore", message=".*optimizer.*variables")
        model = load_model(args.model, compile=True)
    _compile(model, args)
    _check_data(model, data)
    keras.utils.set_random_seed(args.seed)
    health = GradientHealth(every_n_steps=args.every_n_steps)
    try:
        with warnings.catch_warnings():
            # The summary below lists every problem; no second copy.
            warnings.simplefilter("ignore", GradientHealthWarning)
            model.fit(
                x,
                y,
                batch_size=args.batch_size,
                epochs=args.epochs,
                verbose=0,
                callbacks=[health],
            )
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as exc:
        raise InputDataError(
            f"--data file {args.data!r} does not fit the model: "
            f"{_tf_detail(exc)}"
        ) from exc
    if args.plot:
        health.plot(args.plot)
    if args.json:
        print(json.dumps(health.report(), indent=2))
    else:
        print(health.summary())
        if args.plot:
            print(f"Plot: {args.plot}")
    if args.strict and health.verdict != "healthy":
        return 1
    return 0


def _tf_detail(exc):
    """One line from an error, without TensorFlow's frames and node notes."""
    import re

    import tensorflow as tf

    if not isinstance(exc, tf.errors.OpError):
        # Keras's own errors: the whole message, without terminal colours.
        return _one_line(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)))
    # A graph error lists the Python frames that built the failing op,
    # then the op's own message, then the node's name: keep the message.
    noise = ("File ", "Graph execution error", "Detected at node", "[[")
    lines = [
        line.strip()
        for line in exc.message.splitlines()
        if line.strip() and not line.strip().startswith(noise)
    ]
    text = lines[-1] if lines else type(exc).__name__
    # TensorFlow appends every offending value ("Label values: 7 7 7 ...").
    text = text.split("  Label values:")[0]
    return _one_line(text)
