"""ProPublica's COMPAS two-year recidivism data, embedded for fairness work.

6,167 rows as prepared by Friedler et al. (FAT* 2019); provenance in
``data/COMPAS-PROVENANCE.md``. The label is ``two_year_recid`` (1: the
defendant reoffended within two years), the sensitive attribute ``race``
or ``sex``.

Encoding (see `kerasweights.fairness.data.load_csv`): the numeric columns
are standardised over the kept rows (a whole-set statistic, as for
`load_adult`), the categorical ones one-hot encoded; the sensitive column
and ``sex-race`` (which encodes both attributes) are left out of the
features.
"""

import os

__all__ = ["load_compas", "COMPAS_PATH"]

COMPAS_PATH = os.path.join(
    os.path.dirname(__file__), "data", "compas-two-year.csv.gz"
)
_SENSITIVE = ("race", "sex")
_DEFAULT_GROUPS = ("African-American", "Caucasian")


def load_compas(sensitive="race", groups="default"):
    """Load COMPAS as features, recidivism label and sensitive groups.

    Args:
        sensitive: ``"race"`` or ``"sex"``.
        groups: Keep only the rows of these values of ``sensitive``, coded
            0, 1, ... in this order; ``None`` keeps every row (codes in
            sorted order of the names). ``"default"``: for ``race``, the
            two groups ProPublica compared, ``("African-American",
            "Caucasian")``, 5,273 rows; for ``sex``, every row.

    Returns:
        A `kerasweights.fairness.data.TabularData` with ``features``
        (float32), ``labels`` (1 for reoffending), ``groups`` (codes into
        ``group_names``) and the column names.

    Raises:
        InvalidArgumentError: ``sensitive`` is not ``"race"`` or ``"sex"``,
            or a name in ``groups`` does not occur in that column.

    Example:
        >>> data = load_compas()
        >>> data.group_names, len(data)
        (['African-American', 'Caucasian'], 5273)
    """
    import numpy as np

    from kerasweights.errors import InvalidArgumentError
    from kerasweights.fairness.data import load_csv

    if sensitive not in _SENSITIVE:
        raise InvalidArgumentError(
            f"`sensitive` must be one of {list(_SENSITIVE)}. "
            f"Received: sensitive={sensitive!r}"
        )
    data = load_csv(
        COMPAS_PATH,
        label="two_year_recid",
        sensitive=sensitive,
        positive_label="1",
        drop_columns=("sex-race",),
    )
    if isinstance(groups, str) and groups == "default":
        groups = _DEFAULT_GROUPS if sensitive == "race" else None
    if groups is None:
        return data
    groups = list(groups)
    missing = [g for g in groups if g not in data.group_names]
    if missing or len(set(groups)) != len(groups) or not groups:
        raise InvalidArgumentError(
            f"`groups` must be distinct values of the {sensitive!r} column, "
            f"among {data.group_names}. Received: groups={groups!r}"
        )
    codes = [data.group_names.index(g) for g in groups]
    data = data.subset(np.isin(data.groups, codes))
    remap = np.full(len(data.group_names), -1)
    remap[codes] = np.arange(len(codes))
    data.groups = remap[data.groups]
    data.group_names = groups
    return data
