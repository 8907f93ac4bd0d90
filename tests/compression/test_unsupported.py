"""Models compression cannot take get one clear error each."""

import keras
import numpy as np
import pytest

from kerasweights.compression import compress
from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.recurrent import MGU


def _data(shape):
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, *shape)).astype("float32"), np.zeros(16)


def test_a_subclassed_model_is_refused_with_what_to_do():
    class Scorer(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Scorer()
    x, y = _data((4,))
    model(x)
    with pytest.raises(InvalidArgumentError) as caught:
        compress(model, x, y, prune=0.5, measure=False)
    message = str(caught.value)
    assert "functional or Sequential" in message
    assert "rebuild it as a functional model" in message


def test_a_tf_keras_model_is_refused_with_what_to_do():
    import tf_keras

    model = tf_keras.Sequential([tf_keras.layers.Dense(2, input_shape=(4,))])
    x, y = _data((4,))
    with pytest.raises(InvalidTypeError, match="It is a tf_keras model"):
        compress(model, x, y, prune=0.5, measure=False)


def test_a_model_without_kernels_is_refused():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.LayerNormalization()(inputs))
    x, y = _data((4,))
    with pytest.raises(InvalidArgumentError, match="two or more axes"):
        compress(model, x, y, prune=0.5, measure=False)


def test_int8_of_a_recurrent_model_of_unknown_length_fails_before_training():
    inputs = keras.Input((None, 3))
    outputs = keras.layers.Dense(2)(MGU(4)(inputs))
    model = keras.Model(inputs, outputs)
    x, y = _data((5, 3))
    with pytest.raises(InvalidArgumentError) as caught:
        compress(model, x, y.astype("int32"), quantize="int8")
    message = str(caught.value)
    assert "needs a fixed sequence length" in message
    assert "(None, None, 3)" in message
