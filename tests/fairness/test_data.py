"""CSV loading for fairness experiments and the embedded Adult data."""

import csv
import gzip

import numpy as np
import pytest

from kerasweights.datasets.adult import ADULT_PATH
from kerasweights.datasets.adult import load_adult
from kerasweights.datasets.compas import COMPAS_PATH
from kerasweights.datasets.compas import load_compas
from kerasweights.errors import InputDataError
from kerasweights.errors import InvalidArgumentError
from kerasweights.fairness.data import load_csv
from kerasweights.fairness.data import train_test_split


def _write(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


GOOD = (
    "age,job,sex,y\n30,a,F,no\n40,b,M,yes\n50,a,M,no\n?,b,F,yes\n20,b,F,yes\n"
)


def test_encoding_of_a_small_csv(tmp_path):
    data = load_csv(_write(tmp_path, GOOD), label="y", sensitive="sex")
    # The row with a missing age is dropped.
    assert len(data) == 4
    assert data.feature_names == ["age", "job=a", "job=b"]
    ages = np.array([30.0, 40, 50, 20])
    np.testing.assert_allclose(
        data.features[:, 0], (ages - ages.mean()) / ages.std(), rtol=1e-6
    )
    np.testing.assert_array_equal(data.features[:, 1], [1, 0, 1, 0])
    assert data.positive_label == "yes"
    np.testing.assert_array_equal(data.labels, [0, 1, 0, 1])
    assert data.group_names == ["F", "M"]
    np.testing.assert_array_equal(data.groups, [0, 1, 1, 0])


@pytest.mark.parametrize(
    "text,kwargs,pattern",
    [
        (GOOD, {"label": "income"}, "`income` must be in the CSV"),
        (GOOD, {"sensitive": "race"}, "`race` must be in the CSV"),
        (
            "a,sex,y\n1,F,x\n2,M,y\n3,F,z\n",
            {},
            "label column `y` must hold exactly two values",
        ),
        (
            "a,sex,y\n1,F,0\n2,F,1\n",
            {},
            "`sex` must hold at least two groups",
        ),
        (
            GOOD,
            {"min_group_rows": 3},
            "group 'F' with 2 rows",
        ),
        ("a,sex,y\n1,F\n", {}, "line 2 with 2 fields"),
        (GOOD, {"positive_label": "maybe"}, "positive_label='maybe'"),
    ],
)
def test_bad_csv_names_the_column(tmp_path, text, kwargs, pattern):
    args = dict(label="y", sensitive="sex")
    args.update(kwargs)
    with pytest.raises(InputDataError, match=pattern):
        load_csv(_write(tmp_path, text), **args)


@pytest.mark.parametrize(
    "text,kwargs,pattern",
    [
        # NaN and infinity parse as numbers; they must not reach training.
        ("a,sex,y\n1,F,0\nnan,M,1\n3,F,1\n", {}, r"`a`.*'nan' on line 3"),
        # Blank lines and rows dropped for a missing value keep the file's
        # own line numbers in the message.
        (
            "a,sex,y\n1,F,0\n\n?,M,1\n2,M,1\n-inf,F,1\n",
            {},
            r"`a`.*'-inf' on line 6",
        ),
        ("a,b,sex,y\n1,2,F,0\n3,Infinity,M,1\n", {}, r"`b`.*line 3"),
        ("a,sex,y\n1e400,F,0\n2,M,1\n", {}, r"`a`.*'1e400' on line 2"),
    ],
)
def test_non_finite_feature_names_column_and_line(
    tmp_path, text, kwargs, pattern
):
    with pytest.raises(InputDataError, match=pattern):
        load_csv(_write(tmp_path, text), label="y", sensitive="sex", **kwargs)


def test_huge_finite_values_are_standardised_not_refused(tmp_path):
    text = "a,sex,y\n1e300,F,0\n-1e300,M,1\n1e308,F,1\n"
    data = load_csv(_write(tmp_path, text), label="y", sensitive="sex")
    column = np.array([1e300, -1e300, 1e308]) / 1e308
    expected = (column - column.mean()) / column.std()
    np.testing.assert_allclose(data.features[:, 0], expected, rtol=1e-6)


def test_non_finite_value_in_a_dropped_column_is_ignored(tmp_path):
    text = "a,b,sex,y\n1,nan,F,0\n2,3,M,1\n"
    data = load_csv(
        _write(tmp_path, text), label="y", sensitive="sex", drop_columns=["b"]
    )
    assert data.feature_names == ["a"]
    assert np.isfinite(data.features).all()


@pytest.mark.parametrize(
    "text,kwargs",
    [
        ("sex,y\nF,0\nM,1\n", {}),
        ("a,sex,y\n1,F,0\n2,M,1\n", {"drop_columns": ["a"]}),
    ],
)
def test_no_feature_column_is_an_input_error(tmp_path, text, kwargs):
    with pytest.raises(InputDataError, match="must have a feature column"):
        load_csv(_write(tmp_path, text), label="y", sensitive="sex", **kwargs)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputDataError, match="must exist"):
        load_csv(tmp_path / "nope.csv", label="y", sensitive="sex")


def test_split_is_seeded_and_disjoint(tmp_path):
    data = load_csv(_write(tmp_path, GOOD), label="y", sensitive="sex")
    a_train, a_test = train_test_split(data, 0.5, seed=3)
    b_train, _ = train_test_split(data, 0.5, seed=3)
    np.testing.assert_array_equal(a_train.features, b_train.features)
    assert len(a_train) + len(a_test) == len(data)
    with pytest.raises(InvalidArgumentError, match="test_fraction"):
        train_test_split(data, 1.0)


def test_adult_is_embedded_unchanged_and_loads():
    with gzip.open(ADULT_PATH, "rt") as handle:
        assert sum(1 for _ in handle) == 32561 + 1
    data = load_adult()
    assert data.features.shape[0] == 30162
    assert data.group_names == ["Female", "Male"]
    assert not any(n.startswith("sex") for n in data.feature_names)
    assert "fnlwgt" not in data.feature_names
    assert 0.2 < data.labels.mean() < 0.3
    race = load_adult("race")
    assert len(race.group_names) == 5
    with pytest.raises(InvalidArgumentError, match="sensitive"):
        load_adult("age")


def test_compas_is_embedded_unchanged_and_loads():
    import hashlib
    import os

    shared = os.path.join(
        os.path.dirname(__file__), "..", "..", "..", "shared", "data"
    )
    original = os.path.join(shared, "compas-two-year.csv.gz")
    if os.path.exists(original):
        with open(original, "rb") as a, open(COMPAS_PATH, "rb") as b:
            digest = hashlib.sha256
            assert digest(a.read()).digest() == digest(b.read()).digest()
    with gzip.open(COMPAS_PATH, "rt") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 6167 + 1
    race = rows[0].index("race")
    kept = [r for r in rows[1:] if r[race] in ("African-American", "Caucasian")]
    data = load_compas()
    assert len(data) == len(kept) == 5273
    assert data.group_names == ["African-American", "Caucasian"]
    np.testing.assert_array_equal(
        data.groups, [int(r[race] == "Caucasian") for r in kept]
    )
    label = rows[0].index("two_year_recid")
    np.testing.assert_array_equal(data.labels, [int(r[label]) for r in kept])
    assert not any(
        n.startswith(("race", "sex-race")) for n in data.feature_names
    )
    swapped = load_compas(groups=("Caucasian", "African-American"))
    np.testing.assert_array_equal(swapped.groups, 1 - data.groups)
    everyone = load_compas(groups=None)
    assert len(everyone) == 6167
    assert len(load_compas("sex").group_names) == 2
    with pytest.raises(InvalidArgumentError, match="`sensitive`"):
        load_compas("age")
    with pytest.raises(InvalidArgumentError, match="`groups`.*Martian"):
        load_compas(groups=("Caucasian", "Martian"))


def test_excel_csv_with_byte_order_mark_and_label_first(tmp_path):
    path = tmp_path / "excel.csv"
    text = "label,age,sex\r\nno,0,M\r\nyes,1,F\r\nno,2,F\r\nyes,3,M\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    data = load_csv(path, label="label", sensitive="sex")
    assert data.label_name == "label"
    np.testing.assert_array_equal(data.labels, [0, 1, 0, 1])
    gz = tmp_path / "excel.csv.gz"
    with gzip.open(gz, "wb") as handle:
        handle.write(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert load_csv(gz, label="label", sensitive="sex").feature_names == ["age"]


def test_numeric_labels_and_groups_are_compared_as_numbers(tmp_path):
    text = "x,g,y\n1,1,1\n2,1.0,0\n3,2,1.0\n4,10,0.0\n5,2.0,1\n6,10,0\n"
    path = _write(tmp_path, text)
    data = load_csv(path, label="y", sensitive="g")
    np.testing.assert_array_equal(data.labels, [1, 0, 1, 0, 1, 0])
    assert data.positive_label == "1"
    # "1" and "1.0" are one group; codes follow numeric order (2 < 10).
    assert data.group_names == ["1", "2", "10"]
    np.testing.assert_array_equal(data.groups, [0, 0, 1, 2, 1, 2])
    chosen = load_csv(path, label="y", sensitive="g", positive_label="0.0")
    np.testing.assert_array_equal(chosen.labels, [0, 1, 0, 1, 0, 1])
    assert load_csv(path, "y", "g", positive_label=1).positive_label == "1"


def test_duplicate_column_names_are_refused_in_one_line(tmp_path):
    path = _write(tmp_path, "x,sex,x,y\n1,F,2,0\n2,M,3,1\n")
    with pytest.raises(InputDataError, match="'x' twice") as info:
        load_csv(path, label="y", sensitive="sex")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("sep", [";", "\t"])
def test_other_delimiter_gets_a_hint(tmp_path, sep):
    text = sep.join(["x", "sex", "y"]) + "\n" + sep.join(["1", "F", "0"])
    path = _write(tmp_path, text + "\n")
    with pytest.raises(InputDataError, match="comma-separated") as info:
        load_csv(path, label="y", sensitive="sex")
    assert repr(sep) in str(info.value) and "\n" not in str(info.value)
