"""Bad constructor arguments raise one clear error, for every plugin."""

import pytest
from conftest import IDS
from conftest import LAYERS

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.recurrent import JANET
from kerasweights.recurrent import MinGRU


def _ours(cls):
    return cls.__module__.startswith("kerasweights.")


@pytest.mark.parametrize("cls", LAYERS, ids=IDS)
@pytest.mark.parametrize("units", [-3, 0, 2.5, True])
def test_units_must_be_positive_integer(cls, units):
    # Ours raise our error type; a third-party layer may say TypeError.
    expected = InvalidArgumentError if _ours(cls) else (ValueError, TypeError)
    with pytest.raises(expected) as info:
        cls(units)
    assert f"units={units!r}" in str(info.value)


@pytest.mark.parametrize("cls", LAYERS, ids=IDS)
def test_dropout_must_be_a_rate(cls):
    if "dropout" not in cls.cell_arguments():
        pytest.skip(f"{cls.__name__} takes no `dropout` argument")
    with pytest.raises(InvalidArgumentError, match="dropout=1.5"):
        cls(3, dropout=1.5)
    with pytest.raises(InvalidTypeError, match="dropout='x'"):
        cls(3, dropout="x")
    with pytest.raises(InvalidTypeError, match="seed=1.5"):
        cls(3, seed=1.5)


@pytest.mark.parametrize("cls", LAYERS, ids=IDS)
def test_unknown_argument_is_rejected(cls):
    # Keras' own base classes reject them with ValueError.
    expected = TypeError if _ours(cls) else (TypeError, ValueError)
    with pytest.raises(expected, match="no_such_argument"):
        cls(3, no_such_argument=1)


def test_cell_specific_arguments():
    with pytest.raises(InvalidArgumentError, match="chrono_max_length=2"):
        JANET(3, chrono_max_length=2)
    with pytest.raises(InvalidArgumentError, match="scan='fast'"):
        MinGRU(3, scan="fast")
