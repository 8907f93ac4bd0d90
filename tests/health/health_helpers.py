"""Small models and data shared by the gradient-health tests."""

import keras
import numpy as np


def data(n=64, features=8, classes=3, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32") * scale
    y = (np.argmax(x[:, :classes], axis=1)).astype("int32")
    return x, y


def sequential(features=8, classes=3, seed=1):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(16, activation="relu", name="hidden1"),
            keras.layers.Dense(8, activation="tanh", name="hidden2"),
            keras.layers.Dense(classes, activation="softmax", name="out"),
        ]
    )


def functional(features=8, classes=3, seed=1):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((features,))
    a = keras.layers.Dense(16, activation="relu", name="branch_a")(inputs)
    b = keras.layers.Dense(16, activation="sigmoid", name="branch_b")(inputs)
    h = keras.layers.Concatenate()([a, b])
    out = keras.layers.Dense(classes, activation="softmax", name="out")(h)
    return keras.Model(inputs, out)


class Subclassed(keras.Model):
    def __init__(self, classes=3, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(16, activation="relu", name="hidden")
        self.out = keras.layers.Dense(classes, activation="softmax", name="out")

    def call(self, x):
        return self.out(self.hidden(x))


def subclassed(features=8, classes=3, seed=1):
    keras.utils.set_random_seed(seed)
    model = Subclassed(classes)
    model(np.zeros((1, features), "float32"))
    return model


BUILDERS = {
    "sequential": sequential,
    "functional": functional,
    "subclassed": subclassed,
}


def layer_key(variable):
    return variable.path.rsplit("/", 1)[0]


def reference_layer_norms(model, x, y, loss_fn):
    """Per-layer gradient L2 norms by tf.GradientTape, in NumPy float64."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        loss = tf.reduce_mean(loss_fn(y, pred))
    grads = tape.gradient(loss, model.trainable_variables)
    sums = {}
    for v, g in zip(model.trainable_variables, grads, strict=True):
        g = np.asarray(g, dtype=np.float64)
        sums[layer_key(v)] = sums.get(layer_key(v), 0.0) + float(np.sum(g * g))
    return {k: np.sqrt(s) for k, s in sums.items()}, float(loss)
