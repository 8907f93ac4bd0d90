"""The UCI Adult census data, embedded for fairness experiments.

32,561 rows of the UCI training split, as prepared by Friedler et al.
(FAT* 2019); provenance and licence in ``data/ADULT-PROVENANCE.md``. The
label is ``income-per-year`` (``>50K`` is 1), the sensitive attribute
``sex`` (``Female`` 0, ``Male`` 1) or ``race`` (five groups, codes in
sorted order of the names).

Encoding (see `kerasweights.fairness.data.load_csv`): rows with a missing
value (``?``) are dropped, leaving 30,162; the six numeric columns are
standardised over those rows (a whole-set statistic, so a test split's
scaling saw the test rows: harmless for these benchmarks, but say so if
you quote results); the categorical columns are one-hot encoded; the
census sampling weight ``fnlwgt`` and the sensitive column are left out of
the features.
"""

import os

__all__ = ["load_adult", "ADULT_PATH", "SENSITIVE_COLUMNS"]

ADULT_PATH = os.path.join(os.path.dirname(__file__), "data", "adult.csv.gz")
SENSITIVE_COLUMNS = ("sex", "race")


def load_adult(sensitive="sex", include_sensitive=False):
    """Load Adult as features, income label and sensitive groups.

    Args:
        sensitive: ``"sex"`` (2 groups) or ``"race"`` (5 groups).
        include_sensitive: Also give the sensitive column to the features.

    Returns:
        A `kerasweights.fairness.data.TabularData` with ``features``
        (float32, 30,162 rows), ``labels`` (1 for ``>50K``), ``groups``
        (codes into ``group_names``) and the column names.

    Raises:
        InvalidArgumentError: ``sensitive`` is not ``"sex"`` or ``"race"``.

    Example:
        >>> data = load_adult()
        >>> data.group_names
        ['Female', 'Male']
    """
    from kerasweights.errors import InvalidArgumentError
    from kerasweights.fairness.data import load_csv

    if sensitive not in SENSITIVE_COLUMNS:
        raise InvalidArgumentError(
            f"`sensitive` must be one of {list(SENSITIVE_COLUMNS)}. "
            f"Received: sensitive={sensitive!r}"
        )
    return load_csv(
        ADULT_PATH,
        label="income-per-year",
        sensitive=sensitive,
        positive_label=">50K",
        drop_columns=("fnlwgt",),
        include_sensitive=include_sensitive,
    )
