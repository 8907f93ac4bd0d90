"""Diagnoses do not depend on how records are batched into reads, and
records overwritten before a read are reported, not silently lost."""

import math
import warnings

import keras
import pytest
from health_helpers import data
from health_helpers import sequential

from kerasweights.health import GradientHealth
from kerasweights.health import GradientHealthWarning
from kerasweights.health import LayerStats
from kerasweights.health import StepRecord
from kerasweights.health import Thresholds
from kerasweights.health.diagnoses import DIAGNOSES
from kerasweights.health.diagnoses import diagnose
from kerasweights.health.tap import GradientTap


def _record(step, loss, norm=1.0, ratio=1e-3, skipped=False, nan=0):
    layers = [
        LayerStats(
            name,
            norm,
            norm,
            nan,
            0,
            0.0,
            ratio,
            0,
            update_sumsq=ratio**2,
            weight_sumsq=1.0,
        )
        for name in ("first", "last")
    ]
    return StepRecord(step, float(loss), 1.0, skipped, norm, layers)


def _stream():
    """200 records with several problems, each confined to a short span.

    - 100-124: the loss bounces. The 40-record windows a read every 50
      records would look at (ending at records 49, 99, 149) see at most 15
      bouncing records, too few to call it oscillating; the windows
      ending at 119-124 see it.
    - 160-165: gradient norm 1e5 (1e3 elsewhere, so it does not grow
      1000-fold), with 162 skipped by a loss-scale optimizer: five usable
      records in a row, across the skipped one.
    - 175-181: update ratio 0.5 (too high), then 182-188: 1e-8 (too
      low), found in the same read when reads are large.
    - 195: the first NaN gradient; every later one is NaN too.
    """
    recs = []
    for step in range(200):
        loss, norm, ratio, nan = 1.0 - 0.004 * step, 1e3, 1e-3, 0
        if 100 <= step < 125:
            loss = 0.1 if step % 2 else 1.5
        if 160 <= step < 166:
            norm = 1e5
        skipped = step == 162
        if 175 <= step < 182:
            ratio = 0.5
        if 182 <= step < 189:
            ratio = 1e-8
        if step >= 195:
            nan, loss = 3, math.nan
        recs.append(_record(step, loss, norm, ratio, skipped, nan))
    return recs


def _read_in(records, size, state):
    """Diagnoses as the callback finds them with reads of ``size``."""
    seen, found = [], []
    for start in range(0, len(records), size):
        chunk = records[start : start + size]
        seen.extend(chunk)
        skip = {p.name for p in found}
        # As the callback calls it (with a state) or without one.
        extra = {} if state is None else {"state": state}
        new = diagnose(seen, Thresholds(), skip=skip, new=len(chunk), **extra)
        found += sorted(new, key=lambda p: (p.step, DIAGNOSES.index(p.name)))
    return [p.to_dict() for p in found]


@pytest.mark.parametrize("keep_state", [False, True])
def test_diagnoses_do_not_depend_on_read_sizes(keep_state):
    records = _stream()
    results = {
        size: _read_in(records, size, {} if keep_state else None)
        for size in (1, 7, 50, len(records))
    }
    # The oscillation is in no window a read every 50 records with a look
    # at the last 40 would examine.
    for end in (50, 100, 150, 200):
        names = [p.name for p in diagnose(records[:end], new=1)]
        assert "oscillating" not in names, end
    steps = {p["name"]: p["step"] for p in results[len(records)]}
    assert steps == {
        "oscillating": 119,
        "exploding": 165,
        "update_ratio_high": 177,
        "update_ratio_low": 186,
        "nan": 195,
    }
    for size, found in results.items():
        assert found == results[len(records)], size


def test_loss_trend_is_checked_on_the_first_two_windows_whatever_the_reads():
    # Flat for the first 40 usable records (one skipped in between), then
    # falling: not decreasing at record 40, whatever was read at once.
    records = [_record(s, 1.0, skipped=s == 10) for s in range(41)]
    records += [_record(s, 1.0 - 0.01 * (s - 40)) for s in range(41, 120)]
    results = [
        _read_in(records, size, state)
        for size in (1, 13, 50, len(records))
        for state in (None, {})
    ]
    assert [(p["name"], p["step"]) for p in results[0]] == [
        ("loss_not_decreasing", 40)
    ]
    assert all(found == results[0] for found in results)


# ----------------------------------------------------------- lost records
def _compiled():
    model = sequential()
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("every_n_steps", [1, 3])
def test_tap_counts_rows_overwritten_before_a_read(every_n_steps):
    model = _compiled()
    x, y = data(n=64)
    tap = GradientTap(model, every_n_steps=every_n_steps, read_batch=1)
    tap.install()
    try:
        # 16 steps with a reader that reads only at the end: the ring
        # (2 * 1 + 1 rows) keeps the newest 3 recorded steps.
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        records = tap.read()
        recorded = len(range(0, 16, every_n_steps))
        assert len(records) == 3
        assert tap.lost == recorded - 3
        assert [r.step for r in records] == [
            s for s in range(0, 16, every_n_steps)
        ][-3:]
        # A reader that keeps up loses nothing more (steps 16-18).
        model.fit(x[:12], y[:12], batch_size=4, epochs=1, verbose=0)
        assert len(tap.read()) == len(range(18, 15, -every_n_steps))
        assert tap.lost == recorded - 3
    finally:
        tap.remove()


class _LaggingHealth(GradientHealth):
    """Reads only at epoch ends, from a ring of 3 rows: a batch-end hook
    that fell far behind training."""

    def _read_batch(self):
        return 1

    def on_train_batch_end(self, batch, logs=None):
        pass


def test_callback_reports_lost_records_once_per_fit():
    model = _compiled()
    x, y = data(n=64)
    health = _LaggingHealth()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(
            x, y, batch_size=4, epochs=2, verbose=0, callbacks=[health]
        )
    lost = [
        w
        for w in caught
        if issubclass(w.category, GradientHealthWarning)
        and "overwritten" in str(w.message)
    ]
    # 16 steps per epoch, 3 kept at each epoch end.
    assert health.records_lost == 26
    assert len(lost) == 1
    assert "13 recorded step(s)" in str(lost[0].message)
    assert "every_n_steps" in str(lost[0].message)
    assert history.history["grad_records_lost"] == [13.0, 26.0]
    report = health.report()
    assert report["records_lost"] == 26
    assert report["steps_recorded"] == 6
    assert "26 recorded step(s) lost" in health.summary()


def test_a_keeping_up_callback_loses_nothing():
    model = _compiled()
    x, y = data(n=64)
    health = GradientHealth(on_problem="stop")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[health])
    assert health.records_lost == 0
    assert health.report()["records_lost"] == 0
    assert len(health.records) == 32
