"""Test-session setup that must run before TensorFlow initialises.

Two logical CPU devices let the distributed tests run MirroredStrategy on one
machine; TensorFlow refuses to change devices once it has run an op, so this
lives in the root conftest, which pytest imports before any test module.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
