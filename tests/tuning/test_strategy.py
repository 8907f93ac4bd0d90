"""``strategy``: trials train under a tf.distribute strategy.

The multi-device path is real here: a subprocess splits the CPU into two
logical devices and runs a search under MirroredStrategy over both.
"""

import json
import os
import subprocess
import sys

import pytest

from kerasweights.errors import InvalidArgumentError
from kerasweights.tuning.devices import resolve_strategy

_CHILD = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
from kerasweights.tuning import SearchSpace, tune
from kerasweights.tuning import search
from kerasweights.tuning.devices import describe_strategy, resolve_strategy

seen = []
fit = search.DigitsHyperModel.fit
def spy(self, hp, model, *args, **kwargs):
    s = model.distribute_strategy
    seen.append([type(s).__name__, s.num_replicas_in_sync])
    return fit(self, hp, model, *args, **kwargs)
search.DigitsHyperModel.fit = spy

strategy = resolve_strategy(sys.argv[2])
space = SearchSpace(models=["conv"], initializers=["glorot_uniform"],
                    conv_blocks=[1], filters=[4], dense_units=[8])
result = tune(space, trials=1, epochs=2, limit=100, output=sys.argv[1],
              strategy=strategy)
trial = result.trials[0]
print(json.dumps({
    "strategy": describe_strategy(strategy),
    "seen": seen,
    "status": trial.status, "score": trial.score, "health": trial.health,
    "test_accuracy": result.test_accuracy,
}))
"""


def test_a_search_runs_mirrored_over_two_logical_cpus(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "out"), "mirrored"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["strategy"].startswith("MirroredStrategy over 2 devices")
    assert "CPU:0" in report["strategy"] and "CPU:1" in report["strategy"]
    # The trial's model was compiled and trained under the strategy.
    assert report["seen"] and all(
        s == ["MirroredStrategy", 2] for s in report["seen"]
    )
    assert report["status"] == "completed" and report["score"] > 0
    assert report["health"] != "unavailable"
    assert report["test_accuracy"] is not None


def test_auto_and_one_device_use_the_cpu_without_a_gpu():
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    for name in ("auto", "one-device"):
        strategy = resolve_strategy(name)
        assert type(strategy).__name__ == "OneDeviceStrategy"
        assert strategy.num_replicas_in_sync == 1


def test_tpu_without_a_tpu_is_a_clear_error_that_asks_no_server(monkeypatch):
    import tensorflow as tf

    monkeypatch.delenv("TPU_NAME", raising=False)
    if tf.config.list_logical_devices("TPU"):
        pytest.skip("this machine has a TPU")

    def no_network(*args, **kwargs):
        raise AssertionError("the TPU resolver must not be asked")

    monkeypatch.setattr(
        tf.distribute.cluster_resolver, "TPUClusterResolver", no_network
    )
    with pytest.raises(InvalidArgumentError, match="found no TPU"):
        resolve_strategy("tpu")


def test_an_unknown_strategy_names_the_closest():
    with pytest.raises(InvalidArgumentError, match="Did you mean 'mirrored'"):
        resolve_strategy("mirored")
