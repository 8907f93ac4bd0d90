"""`import kerasweights` is quiet and leaves TensorFlow configurable."""


def test_import_is_quiet_and_devices_stay_configurable(fresh_python):
    code = """
import kerasweights
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
print(len(tf.config.list_logical_devices("CPU")))
"""
    out = fresh_python(code, env={"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
    assert out.stderr == ""


def test_only_known_start_up_lines_are_dropped():
    from kerasweights._startup import _NOISE

    dropped = [
        "I0000 00:00:1796399126.425276    2221 port.cc:153] oneDNN custom "
        "operations are on.",
        "WARNING: All log messages before absl::InitializeLog() is called "
        "are written to STDERR",
        "To enable the following instructions: AVX2 FMA, in other "
        "operations, rebuild TensorFlow with the appropriate compiler flags.",
        "E0000 00:00:1796403650.905697     926 cuda_platform.cc:52] failed "
        "call to cuInit: INTERNAL: CUDA error",
    ]
    kept = [
        "E0000 00:00:1796403650.905697     926 gpu_device.cc:52] out of memory",
        "Traceback (most recent call last):",
        "ImportError: libcudart.so.12: cannot open shared object file",
        "UserWarning: something the user must see",
    ]
    assert all(_NOISE.match(line) for line in dropped)
    assert not any(_NOISE.match(line) for line in kept)


def test_logs_can_be_kept(fresh_python):
    out = fresh_python(
        "import kerasweights",
        env={"KERASWEIGHTS_TF_STARTUP_LOGS": "1", "TF_CPP_MIN_LOG_LEVEL": "0"},
    )
    assert out.returncode == 0
    assert "cpu_feature_guard" in out.stderr or "port.cc" in out.stderr
