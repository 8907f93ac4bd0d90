"""Where trials train: ``--strategy auto|one-device|mirrored|tpu``.

* ``auto``: a `tf.distribute.MirroredStrategy` over every visible GPU, or
  the CPU (one device) when there is none;
* ``one-device``: the first GPU, else the CPU;
* ``mirrored``: `MirroredStrategy` over every visible GPU or, with no GPU,
  over every logical CPU device (several CPU devices exist only when a
  program configured them with
  ``tf.config.set_logical_device_configuration``; that is how the tests
  run the multi-device path on a CPU-only machine);
* ``tpu``: `TPUStrategy` through `TPUClusterResolver`. The resolver is
  asked only when a TPU is named (``TPU_NAME``) or local TPU devices
  exist; otherwise this fails at once with a clear error and asks no
  server anything. This path is not tested here (no TPU).

Each trial's model is built and trained under the strategy's scope (Keras
Tuner's ``distribution_strategy``); the batch size is the global batch,
split across replicas.
"""

import glob
import os

from kerasweights.errors import InvalidArgumentError

__all__ = ["STRATEGIES", "describe_strategy", "resolve_strategy"]

STRATEGIES = ("auto", "one-device", "mirrored", "tpu")


class StrategyUnavailableError(InvalidArgumentError):
    """The requested strategy has no device to run on."""


def _check(name):
    if name not in STRATEGIES:
        import difflib

        close = difflib.get_close_matches(str(name), STRATEGIES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InvalidArgumentError(
            f"`strategy` must be one of {list(STRATEGIES)}. Received: "
            f"strategy={name!r}.{hint}"
        )


def _local_tpu():
    return bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))


def resolve_strategy(name="auto"):
    """The `tf.distribute.Strategy` for a strategy name.

    Args:
        name: One of `STRATEGIES`.

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        InvalidArgumentError: An unknown name, or ``"tpu"`` with no TPU
            (the message says what was looked for).
    """
    import tensorflow as tf

    _check(name)
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    if name == "auto":
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        return tf.distribute.OneDeviceStrategy(cpus[0].name)
    if name == "one-device":
        return tf.distribute.OneDeviceStrategy((gpus or cpus)[0].name)
    if name == "mirrored":
        devices = [d.name for d in (gpus or cpus)]
        return tf.distribute.MirroredStrategy(devices)
    # tpu
    tpus = tf.config.list_logical_devices("TPU")
    if not (tpus or os.environ.get("TPU_NAME") or _local_tpu()):
        raise StrategyUnavailableError(
            "--strategy tpu found no TPU: no TPU devices, no /dev/accel*, "
            "and TPU_NAME is not set; expected a TPU VM or TPU_NAME naming "
            "a TPU. Received: strategy='tpu'"
        )
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=os.environ.get("TPU_NAME", "local")
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as exc:
        text = " ".join(str(exc).split())[:200]
        raise StrategyUnavailableError(
            f"--strategy tpu could not reach the TPU: {text}"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def describe_strategy(strategy):
    """``"MirroredStrategy over 2 devices (CPU:0, CPU:1)"``."""
    devices = list(getattr(strategy.extended, "worker_devices", ()) or ())
    short = ", ".join(d.split("device:")[-1] for d in devices)
    return (
        f"{type(strategy).__name__} over {len(devices)} "
        f"device{'s' if len(devices) != 1 else ''} ({short})"
    )
