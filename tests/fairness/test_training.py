"""FairnessModel in plain fit: named sensitive input, jit_compile, the
loss it minimises, .keras reload in a fresh process, export without the
sensitive input (case C06)."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from fairness_fixtures import small_predictor
from fairness_fixtures import toy_data

from kerasweights.errors import InvalidArgumentError
from kerasweights.fairness import DemographicParityDifference
from kerasweights.fairness import EqualizedOddsDifference
from kerasweights.fairness import FairnessModel
from kerasweights.fairness import MMDPenalty
from kerasweights.fairness import metrics as fm
from kerasweights.fairness import prediction_model


def _feed(x, groups):
    return {"features": x, "group": groups}


def test_compute_loss_adds_weighted_penalty():
    x, groups, y = toy_data(16)
    w = np.linspace(0.0, 1.0, 16).astype("float32")
    penalty = MMDPenalty(kernel_length=0.5)
    model = FairnessModel(small_predictor(), penalty, penalty_weight=2.5)
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    feed = _feed(x, groups)
    y_pred = model(feed)
    total = model.compute_loss(feed, y, y_pred, sample_weight=w)
    plain = keras.losses.BinaryCrossentropy()(y, y_pred, sample_weight=w)
    expected = float(plain) + 2.5 * float(penalty(groups, y_pred, y, w))
    assert float(total) == pytest.approx(expected, rel=1e-5)


def test_fit_jit_metrics_and_fresh_process_reload(tmp_path):
    x, groups, y = toy_data(96)
    model = FairnessModel(
        small_predictor(), MMDPenalty(), sensitive="group", penalty_weight=0.7
    )
    model.compile(
        optimizer="adam",
        loss="binary_crossentropy",
        metrics=[
            "accuracy",
            DemographicParityDifference(),
            EqualizedOddsDifference(agg="mean"),
        ],
        jit_compile=True,
    )
    feed = _feed(x, groups)
    history = model.fit(feed, y, epochs=2, batch_size=32, verbose=0)
    assert "fairness_penalty" in history.history
    assert np.isfinite(history.history["loss"]).all()

    result = model.evaluate(feed, y, batch_size=20, verbose=0, return_dict=True)
    hard = (model.predict(feed, verbose=0)[:, 0] > 0.5).astype(int)
    dp = fm.demographic_parity_difference(y, hard, sensitive_features=groups)
    eo = fm.equalized_odds_difference(
        y, hard, sensitive_features=groups, agg="mean"
    )
    assert result["demographic_parity_difference"] == pytest.approx(
        dp, abs=1e-9
    )
    assert result["equalized_odds_difference"] == pytest.approx(eo, abs=1e-9)

    path = tmp_path / "fair.keras"
    model.save(path)
    expected = model.predict(feed, verbose=0)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "g.npy", groups)
    script = textwrap.dedent(
        f"""
        import json, numpy as np, keras, kerasweights
        x = np.load({str(tmp_path / "x.npy")!r})
        g = np.load({str(tmp_path / "g.npy")!r})
        m = keras.saving.load_model({str(path)!r})
        out = m.predict({{"features": x, "group": g}}, verbose=0)
        print(json.dumps({{"out": out[:, 0].tolist(),
                          "cls": type(m).__name__,
                          "weight": m.penalty_weight,
                          "penalty": type(m.penalty).__name__}}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["cls"] == "FairnessModel"
    assert got["weight"] == 0.7
    assert got["penalty"] == "MMDPenalty"
    np.testing.assert_allclose(got["out"], expected[:, 0], atol=1e-6)


def test_missing_sensitive_input_is_named():
    x, groups, y = toy_data(8)
    model = FairnessModel(small_predictor(), MMDPenalty(), sensitive="sex")
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    with pytest.raises(InvalidArgumentError, match="'sex'"):
        model.fit({"features": x, "group": groups}, y, verbose=0)


def test_prediction_model_leaves_sensitive_input_out(tmp_path):
    x, groups, _ = toy_data(8)
    predictor = small_predictor()
    wrapped = FairnessModel(predictor, MMDPenalty())
    served = prediction_model(wrapped)
    assert [t.name for t in served.inputs] == ["features"]

    # A functional model that takes the sensitive input but does not use
    # it to predict: the prediction-only model drops it, same outputs.
    features = keras.Input((4,), name="features")
    group = keras.Input((1,), name="group")
    out = predictor(features)
    side = keras.layers.Concatenate()([out, group])
    both = keras.Model({"features": features, "group": group}, out)
    pred_only = prediction_model(both)
    assert [t.name for t in pred_only.inputs] == ["features"]
    np.testing.assert_allclose(
        pred_only.predict(x, verbose=0),
        both.predict({"features": x, "group": groups[:, None]}, verbose=0),
    )

    uses_group = keras.Model([features, group], side)
    with pytest.raises(InvalidArgumentError, match="depend on the sensitive"):
        prediction_model(uses_group)

    export_dir = tmp_path / "served"
    served.export(str(export_dir), verbose=False)
    import tensorflow as tf

    loaded = tf.saved_model.load(str(export_dir))
    signature = loaded.signatures["serving_default"]
    names = list(signature.structured_input_signature[1])
    assert names == ["features"]
    result = list(signature(features=tf.constant(x)).values())[0]
    np.testing.assert_allclose(
        result.numpy(), predictor.predict(x, verbose=0), atol=1e-6
    )
