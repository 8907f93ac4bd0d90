"""Bad constructor arguments raise one clear error, for every plugin."""

import pytest
from conftest import IDS
from conftest import LAYERS

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.recurrent import JANET
from kerasweights.recurrent import MinGRU


@pytest.mark.parametrize("cls", LAYERS, ids=IDS)
@pytest.mark.parametrize("units", [-3, 0, 2.5, True])
def test_units_must_be_positive_integer(cls, units):
    with pytest.raises(InvalidArgumentError) as info:
        cls(units)
    assert isinstance(info.value, ValueError)
    assert f"Received: units={units!r}" in str(info.value)


@pytest.mark.parametrize("cls", LAYERS, ids=IDS)
def test_dropout_must_be_a_rate(cls):
    with pytest.raises(InvalidArgumentError, match="dropout=1.5"):
        cls(3, dropout=1.5)
    with pytest.raises(InvalidTypeError, match="dropout='x'"):
        cls(3, dropout="x")
    with pytest.raises(InvalidTypeError, match="seed=1.5"):
        cls(3, seed=1.5)


@pytest.mark.parametrize("cls", LAYERS, ids=IDS)
def test_unknown_argument_is_rejected(cls):
    with pytest.raises(TypeError, match="no_such_argument"):
        cls(3, no_such_argument=1)


def test_cell_specific_arguments():
    with pytest.raises(InvalidArgumentError, match="chrono_max_length=2"):
        JANET(3, chrono_max_length=2)
    with pytest.raises(InvalidArgumentError, match="scan='fast'"):
        MinGRU(3, scan="fast")
