"""scikit-learn's handwritten digits, split and shaped for Keras models.

The data set ships inside scikit-learn (1797 greyscale 8x8 images of the
digits 0-9 from the UCI "Optical Recognition of Handwritten Digits" data),
so nothing is downloaded. Pixel values (0-16) are scaled to [0, 1].

Two views of the same split are offered:

* ``"image"``: arrays of shape ``(n, 8, 8, 1)`` for convolutional models;
* ``"sequence"``: arrays of shape ``(n, 8, 8)``, each image read row by row
  as a sequence of 8 time steps of 8 pixels, for recurrent models.

The split into train, validation and test sets is stratified by digit and
fixed by ``seed``: the same seed gives the same split on every machine.
"""

import dataclasses

import numpy as np

from kerasweights.errors import InvalidArgumentError

__all__ = ["DigitsSplit", "load_digits", "NUM_CLASSES", "VIEWS"]

NUM_CLASSES = 10
VIEWS = ("image", "sequence")


@dataclasses.dataclass(frozen=True)
class DigitsSplit:
    """A train / validation / test split of the digits data.

    Attributes:
        view: ``"image"`` or ``"sequence"``.
        x_train, y_train: Training inputs (float32) and labels (int32).
        x_val, y_val: Validation inputs and labels.
        x_test, y_test: Test inputs and labels.
    """

    view: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def input_shape(self):
        """The shape of one example, without the batch axis."""
        return self.x_train.shape[1:]


def _check_fraction(name, value):
    if not isinstance(value, (int, float)) or not 0 < value < 1:
        raise InvalidArgumentError(
            f"`{name}` must be a number strictly between 0 and 1. "
            f"Received: {name}={value!r}"
        )


def load_digits(
    view="image",
    seed=0,
    validation_fraction=0.2,
    test_fraction=0.2,
    limit=None,
):
    """Load the digits data as a fixed, stratified three-way split.

    Args:
        view: ``"image"`` for ``(n, 8, 8, 1)`` inputs or ``"sequence"`` for
            ``(n, 8, 8)`` inputs (8 time steps of 8 pixels).
        seed: Integer seed of the split; the same seed gives the same split.
        validation_fraction: Share of all examples held out for validation.
        test_fraction: Share of all examples held out for the final test.
        limit: Optional positive integer: keep only this many examples
            (stratified, chosen by ``seed``) before splitting, for quick runs.

    Returns:
        A `DigitsSplit`.

    Raises:
        InvalidArgumentError: An argument is outside its accepted range.

    Example:

    >>> split = load_digits("sequence", seed=0)
    >>> split.x_train.shape[1:]
    (8, 8)
    """
    if view not in VIEWS:
        raise InvalidArgumentError(
            f"`view` must be one of {list(VIEWS)}. Received: view={view!r}"
        )
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InvalidArgumentError(
            f"`seed` must be a non-negative integer. Received: seed={seed!r}"
        )
    _check_fraction("validation_fraction", validation_fraction)
    _check_fraction("test_fraction", test_fraction)
    if validation_fraction + test_fraction >= 1:
        raise InvalidArgumentError(
            "`validation_fraction + test_fraction` must be below 1. "
            f"Received: validation_fraction={validation_fraction}, "
            f"test_fraction={test_fraction}"
        )
    if limit is not None and (
        not isinstance(limit, int) or isinstance(limit, bool) or limit < 50
    ):
        raise InvalidArgumentError(
            "`limit` must be None or an integer of at least 50 (five "
            f"examples per digit). Received: limit={limit!r}"
        )

    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    bunch = datasets.load_digits()
    x = (bunch.images / 16.0).astype("float32")
    y = bunch.target.astype("int32")
    if limit is not None and limit < len(y):
        x, _, y, _ = train_test_split(
            x, y, train_size=limit, stratify=y, random_state=seed
        )

    held_out = validation_fraction + test_fraction
    x_train, x_rest, y_train, y_rest = train_test_split(
        x, y, test_size=held_out, stratify=y, random_state=seed
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest,
        y_rest,
        test_size=test_fraction / held_out,
        stratify=y_rest,
        random_state=seed,
    )
    if view == "image":
        x_train, x_val, x_test = (
            a[..., np.newaxis] for a in (x_train, x_val, x_test)
        )
    return DigitsSplit(view, x_train, y_train, x_val, y_val, x_test, y_test)
