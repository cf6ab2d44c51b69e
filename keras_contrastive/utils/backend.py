"""Which Keras backend runs, and the parts of the package that need one.

The losses and metrics run on the TensorFlow and JAX backends; everything
built on `tf.distribute`, `tf.data` or SavedModel (`ContrastiveModel`,
export, tuning, the CLI) needs TensorFlow and says so.
"""

import keras

SUPPORTED_BACKENDS = ("tensorflow", "jax")


def is_tensorflow():
    """Whether Keras runs on TensorFlow."""
    return keras.backend.backend() == "tensorflow"


def check_loss_backend():
    """Raises for a backend the losses and metrics do not support."""
    if keras.backend.backend() not in SUPPORTED_BACKENDS:
        raise RuntimeError(
            f"keras_contrastive's losses and metrics run on the backends "
            f"{SUPPORTED_BACKENDS}. Received: KERAS_BACKEND="
            f"{keras.backend.backend()!r}"
        )


def require_tensorflow(what):
    """Raises a clear error when `what` is used under another backend."""
    if not is_tensorflow():
        raise RuntimeError(
            f"{what} needs the TensorFlow backend (it is built on "
            "tf.distribute, tf.data and SavedModel); the losses and metrics "
            "also run on JAX. Set KERAS_BACKEND=tensorflow. Received: "
            f"KERAS_BACKEND={keras.backend.backend()!r}"
        )
