"""Reading a tabular fairness data set from a CSV file, without pandas.

`load_csv` turns a CSV with a binary label column and a sensitive column
into arrays a Keras model can train on:

* numeric columns (every non-missing value parses as a number) are
  standardised to zero mean and unit variance over the rows kept;
* other columns are one-hot encoded, one column per distinct value in
  sorted order;
* the label becomes 0/1 (``positive_label`` is 1; by default the larger
  of the two values in sorted order);
* the sensitive column becomes integer codes, one per group in sorted
  order of the group values, and is left out of the features unless
  ``include_sensitive=True``.

In the label and sensitive columns, values that are all numbers are
compared as numbers: ``1`` and ``1.0`` are one class (one group), and they
sort numerically (``2`` before ``10``). The file is read as UTF-8; a
byte-order mark (as Excel writes) is ignored. Columns must be separated
by commas and have distinct names.

A numeric feature holding NaN or infinity is refused (the message names
the column and the first such line) rather than standardised into NaN.

Every problem with the file is an `InputDataError` whose message names the
column and says what was expected.
"""

import csv
import dataclasses
import gzip
import os

import numpy as np

from kerasweights.errors import InputDataError
from kerasweights.errors import InvalidArgumentError

__all__ = ["TabularData", "load_csv", "train_test_split"]


@dataclasses.dataclass
class TabularData:
    """A tabular data set ready for a fairness experiment.

    Attributes:
        features: float32 array ``(n, d)``.
        labels: int array ``(n,)`` of 0/1.
        groups: int array ``(n,)`` of group codes.
        feature_names: ``d`` names, ``column=value`` for one-hot columns.
        group_names: The group value of each code.
        label_name: The label column.
        positive_label: The label value coded as 1.
        sensitive_name: The sensitive column.
    """

    features: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    feature_names: list
    group_names: list
    label_name: str
    positive_label: str
    sensitive_name: str

    def __len__(self):
        return int(self.labels.shape[0])

    def subset(self, index):
        """The rows at ``index`` (an index array or a boolean mask)."""
        return dataclasses.replace(
            self,
            features=self.features[index],
            labels=self.labels[index],
            groups=self.groups[index],
        )


def _open(path):
    if not os.path.isfile(path):
        raise InputDataError(
            f"The CSV file must exist. Received: path={os.fspath(path)!r}"
        )
    if os.fspath(path).endswith(".gz"):
        return gzip.open(path, "rt", newline="", encoding="utf-8-sig")
    # utf-8-sig drops the byte-order mark Excel writes before the header.
    return open(path, newline="", encoding="utf-8-sig")


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read(path):
    try:
        with _open(path) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            rows, lines = [], []
            for row in reader:
                if row:
                    rows.append(row)
                    lines.append(reader.line_num)
    except (UnicodeDecodeError, OSError, csv.Error) as exc:
        raise InputDataError(
            f"The file must be a readable CSV. Received: {path} "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    if not header:
        raise InputDataError(
            f"The CSV must start with a header row. Received: {path} (empty)"
        )
    header = [h.strip() for h in header]
    seen = set()
    for name in header:
        if name in seen:
            raise InputDataError(
                "Every CSV column must have its own name. Received: the "
                f"column name {name!r} twice in the header {header}"
            )
        seen.add(name)
    for number, row in zip(lines, rows, strict=True):
        if len(row) != len(header):
            raise InputDataError(
                f"Every CSV row must have {len(header)} fields like the "
                f"header. Received: line {number} with {len(row)} fields"
            )
    if not rows:
        raise InputDataError(f"The CSV must have data rows. Received: {path}")
    return header, rows, lines


def _numeric_column(name, values, lines):
    """A numeric feature column standardised to zero mean, unit variance."""
    column = np.array(values, dtype=np.float64)
    finite = np.isfinite(column)
    if not finite.all():
        at = int(np.argmin(finite))
        raise InputDataError(
            f"The feature column `{name}` must hold finite numbers. Received: "
            f"{values[at]!r} on line {lines[at]}"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = column.mean(), column.std()
    if not (np.isfinite(mean) and np.isfinite(std)):
        # Values near the float64 limit overflow the sums; standardising
        # is scale-free, so divide by the largest magnitude first.
        column = column / np.abs(column).max()
        mean, std = column.mean(), column.std()
    scaled = (column - mean) / (std if std > 0 else 1.0)
    return scaled


def _column_index(header, name, role):
    if name not in header:
        hint = ""
        if len(header) == 1:
            other = [d for d in ";\t|" if d in header[0]]
            if other:
                hint = (
                    f" (the header has no comma but has {other[0]!r}: the "
                    "file must be comma-separated; save it as CSV with "
                    "commas)"
                )
        raise InputDataError(
            f"The {role} column `{name}` must be in the CSV. Received: "
            f"columns {header}{hint}"
        )
    return header.index(name)


def _canonical(values):
    """Spellings of one number (``1``, ``1.0``, `` 1e0``) as one value.

    If every value of a column parses as a finite number, returns a dict
    from each spelling to the shortest spelling of its number; else None.
    """
    numbers = {}
    for value in values:
        try:
            number = float(value)
        except ValueError:
            return None
        if not np.isfinite(number):
            return None
        numbers.setdefault(number, []).append(value)
    mapping = {}
    for spellings in numbers.values():
        best = min(spellings, key=lambda v: (len(v), v))
        for value in spellings:
            mapping[value] = best
    return mapping


def _sorted_values(values):
    """Distinct values, numerically sorted when all are numbers."""
    distinct = set(values)
    if all(_is_number(v) for v in distinct):
        return sorted(distinct, key=float)
    return sorted(distinct)


def load_csv(
    path,
    label,
    sensitive,
    positive_label=None,
    missing_values=("?", ""),
    drop_columns=(),
    include_sensitive=False,
    min_group_rows=1,
):
    """Read a CSV into features, binary labels and group codes.

    Args:
        path: A ``.csv`` or ``.csv.gz`` file with a header row.
        label: The label column; it must hold exactly two values.
        sensitive: The sensitive-attribute column; at least two groups.
        positive_label: The label value coded 1; default the larger value.
        missing_values: Field values that mean "missing"; rows with a
            missing value in any used column are dropped.
        drop_columns: Columns not to use as features.
        include_sensitive: Keep the sensitive column among the features.
        min_group_rows: The fewest rows a group may have.

    Returns:
        A `TabularData`.

    Raises:
        InputDataError: A column is missing, there is no feature column,
            the label does not have two values, the positive label is
            absent, a numeric feature holds NaN or infinity (the message
            gives the first such line), or a group has fewer rows than
            ``min_group_rows``; the message names the column.
    """
    header, rows, lines = _read(path)
    label_at = _column_index(header, label, "label")
    sensitive_at = _column_index(header, sensitive, "sensitive")
    for name in drop_columns:
        _column_index(header, name, "dropped")
    if label == sensitive:
        raise InvalidArgumentError(
            "The label and sensitive columns must differ. Received: "
            f"label={label!r}, sensitive={sensitive!r}"
        )
    missing = {m.strip() for m in missing_values}
    rows = [[field.strip() for field in row] for row in rows]
    for at, role, name in (
        (label_at, "label", label),
        (sensitive_at, "sensitive", sensitive),
    ):
        if all(row[at] in missing for row in rows):
            raise InputDataError(
                f"The {role} column `{name}` must have values. Received: "
                "only missing values"
            )
    used = [
        i
        for i, name in enumerate(header)
        if name not in drop_columns and (i != sensitive_at or include_sensitive)
    ]
    needed = sorted(set(used) | {label_at, sensitive_at})
    if all(i == label_at for i in used):
        raise InputDataError(
            f"The CSV must have a feature column besides the label `{label}` "
            f"and the sensitive column `{sensitive}`. Received: columns "
            f"{header}"
            + (
                f" with drop_columns={list(drop_columns)}"
                if drop_columns
                else ""
            )
        )
    kept = [
        (row, line)
        for row, line in zip(rows, lines, strict=True)
        if all(row[i] not in missing for i in needed)
    ]
    rows = [row for row, _ in kept]
    lines = [line for _, line in kept]

    # Numbers that differ only in spelling ("1" and "1.0") are one class
    # or one group.
    for at in (label_at, sensitive_at):
        mapping = _canonical({row[at] for row in rows})
        if mapping:
            for row in rows:
                row[at] = mapping[row[at]]
    label_values = _sorted_values(row[label_at] for row in rows)
    if len(label_values) != 2:
        shown = label_values[:6]
        raise InputDataError(
            f"The label column `{label}` must hold exactly two values. "
            f"Received: {len(label_values)} values {shown}"
        )
    if positive_label is None:
        positive_label = label_values[1]
    positive_label = str(positive_label).strip()
    if positive_label not in label_values and _is_number(positive_label):
        for value in label_values:
            if _is_number(value) and float(value) == float(positive_label):
                positive_label = value
    if positive_label not in label_values:
        raise InputDataError(
            f"The positive label must be a value of the label column "
            f"`{label}` ({label_values}). Received: "
            f"positive_label={positive_label!r}"
        )
    labels = np.array([row[label_at] == positive_label for row in rows], int)

    group_names = _sorted_values(row[sensitive_at] for row in rows)
    codes = {g: i for i, g in enumerate(group_names)}
    groups = np.array([codes[row[sensitive_at]] for row in rows], int)
    counts = np.bincount(groups, minlength=len(group_names))
    if len(group_names) < 2:
        raise InputDataError(
            f"The sensitive column `{sensitive}` must hold at least two "
            f"groups with rows. Received: groups {group_names}"
        )
    if counts.min() < min_group_rows:
        small = group_names[int(counts.argmin())]
        raise InputDataError(
            f"Every group of the sensitive column `{sensitive}` must have at "
            f"least {min_group_rows} rows. Received: group {small!r} with "
            f"{int(counts.min())} rows"
        )

    blocks, names = [], []
    for i in used:
        if i == label_at:
            continue
        values = [row[i] for row in rows]
        if all(_is_number(v) for v in values):
            scaled = _numeric_column(header[i], values, lines)
            blocks.append(scaled[:, None])
            names.append(header[i])
        else:
            levels = sorted(set(values))
            index = {v: j for j, v in enumerate(levels)}
            one_hot = np.zeros((len(values), len(levels)))
            one_hot[np.arange(len(values)), [index[v] for v in values]] = 1.0
            blocks.append(one_hot)
            names.extend(f"{header[i]}={v}" for v in levels)
    features = np.concatenate(blocks, axis=1).astype(np.float32)
    return TabularData(
        features=features,
        labels=labels,
        groups=groups,
        feature_names=names,
        group_names=group_names,
        label_name=label,
        positive_label=positive_label,
        sensitive_name=sensitive,
    )


def train_test_split(data, test_fraction=0.3, seed=0):
    """A seeded random split of a `TabularData` into (train, test).

    Raises:
        InvalidArgumentError: ``test_fraction`` is not in (0, 1).
    """
    if not 0.0 < test_fraction < 1.0:
        raise InvalidArgumentError(
            "`test_fraction` must be in (0, 1). Received: "
            f"test_fraction={test_fraction!r}"
        )
    order = np.random.default_rng(seed).permutation(len(data))
    cut = int(round(len(data) * (1.0 - test_fraction)))
    return data.subset(order[:cut]), data.subset(order[cut:])
