"""What the tests that run on both Keras backends need from the backend.

The loss and metric tests run under TensorFlow (the README's test command)
and again under JAX (`tests/test_jax_backend.py` runs them with
`KERAS_BACKEND=jax` in a subprocess). A test of TensorFlow-only machinery
(`tf.function` tracing, `tf.distribute`, XLA, the fused TensorFlow kernel)
is marked `tensorflow_only` and skips, saying so, in the JAX pass.
"""

import keras
import numpy as np
import pytest
from keras import ops

BACKEND = keras.backend.backend()

tensorflow_only = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="TensorFlow machinery (tf.function, tf.distribute, XLA or the fused "
    "TensorFlow kernel): the TensorFlow pass runs it",
)


def run_time_error():
    """What a failed run-time check raises inside a compiled function."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.errors.InvalidArgumentError
    import jax

    return jax.errors.JaxRuntimeError


def compiled(function):
    """`function` compiled by the backend: `tf.function` or `jax.jit`."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    import jax

    return jax.jit(function)


def value_and_gradients(function, arguments, weights=None):
    """`function(*arguments)` and the gradients of `sum(value * weights)`
    (weights of ones by default) with respect to every argument, as NumPy.

    Arguments are tensors (or arrays) of the backend; an argument the value
    does not depend on gets a zero gradient.
    """
    arguments = [ops.convert_to_tensor(argument) for argument in arguments]

    def weighted_total(value):
        return ops.sum(value if weights is None else value * weights)

    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(arguments)
            value = function(*arguments)
            total = weighted_total(value)
        gradients = tape.gradient(
            total, arguments, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
    else:
        import jax

        def total_and_value(*arguments):
            value = function(*arguments)
            return weighted_total(value), value

        differentiate = jax.value_and_grad(
            total_and_value, argnums=tuple(range(len(arguments))), has_aux=True
        )
        (_, value), gradients = differentiate(*arguments)
    return np.asarray(value), [np.asarray(gradient) for gradient in gradients]
