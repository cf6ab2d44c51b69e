"""Batch normalisation by TensorFlow's fused kernel."""

import keras
import tensorflow as tf
from keras import ops

from keras_contrastive.api_export import register

# `tf.compat.v1.nn.fused_batch_norm` raises a smaller epsilon to this (cuDNN's
# floor), which would no longer be the layer's.
_FUSED_MIN_EPSILON = 1.001e-5


@register
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by one fused kernel.

    The same layer as Keras's (arguments, weights, checkpoints, moving
    statistics and outputs up to rounding), but on the TensorFlow backend
    its forward pass is one `FusedBatchNormV3` kernel and its gradient one
    `FusedBatchNormGradV3`, as in tf.keras 2. Keras 3 computes batch
    normalisation from a dozen element-wise ops, each a pass over the
    activations: on a CPU they took 46 % of the small CNN's supervised
    training step at batch 256, and 2.4 times as long at batch 512 (the
    views a contrastive step encodes for 256 images); with the fused
    kernels the step ran 1.5 times as fast (`benchmarks/README.md`). XLA
    lowers the fused kernels as well.

    Formula (per channel `c`, statistics over every other axis):

    ```
    y = gamma_c * (x - mean_c) / sqrt(var_c + epsilon) + beta_c
    ```

    with the batch's mean and (biased) variance in training, which also
    move `moving_mean` and `moving_variance` by `momentum`, and the moving
    statistics otherwise.

    The fused kernel normalises the last axis only, in float32 (float16 and
    bfloat16 inputs are computed in float32 and cast back, as Keras does),
    with `epsilon >= 1.001e-5`. Anything else: another `axis`, float64,
    a `mask`, `synchronized=True` (statistics across replicas), `renorm`,
    or another backend, runs Keras's own computation.

    Args:
        **kwargs: The arguments of `keras.layers.BatchNormalization`.

    Example:

    >>> import numpy as np
    >>> layer = FusedBatchNormalization()
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, size=(8, 4, 4, 3))
    >>> y = np.asarray(layer(x.astype("float32"), training=True))
    >>> bool(np.allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-5))
    True
    >>> bool(np.allclose(y.std(axis=(0, 1, 2)), 1.0, atol=1e-3))
    True

    In an encoder, in place of `keras.layers.BatchNormalization`:

    ```python
    x = keras.layers.Conv2D(32, 3, use_bias=False)(images)
    x = FusedBatchNormalization()(x)
    ```

    Reference:
    - [Ioffe & Szegedy, 2015](https://arxiv.org/abs/1502.03167)
    """

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, "float32")
        channels = x.shape[-1]
        # The fused kernel takes 4-D inputs: (every other position, 1, 1, C)
        # normalises over the same positions as `inputs` does.
        flat = tf.reshape(x, (-1, 1, 1, channels))
        gamma = self.gamma if self.scale else tf.ones((channels,))
        beta = self.beta if self.center else tf.zeros((channels,))
        if training and self.trainable:
            outputs, mean, sample_variance = tf.compat.v1.nn.fused_batch_norm(
                flat, gamma, beta, epsilon=self.epsilon, is_training=True
            )
            self._move_statistics(mean, _biased(sample_variance, tf.shape(flat)[0]))
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                flat,
                gamma,
                beta,
                mean=self.moving_mean,
                variance=self.moving_variance,
                epsilon=self.epsilon,
                is_training=False,
            )
        return ops.cast(tf.reshape(outputs, tf.shape(x)), self.compute_dtype)

    def _fusable(self, inputs, mask):
        rank = len(inputs.shape)
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.synchronized
            and not self.renorm
            and self.axis in (-1, rank - 1)
            and keras.backend.result_type(inputs.dtype, "float32") == "float32"
            and self.epsilon >= _FUSED_MIN_EPSILON
        )

    def _move_statistics(self, mean, variance):
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
        )


def _biased(sample_variance, count):
    """The kernel returns the batch variance with Bessel's correction (over
    `count - 1`); Keras's moving variance follows the biased one (over
    `count`). One position: both are 0."""
    count = tf.cast(count, sample_variance.dtype)
    return sample_variance * tf.maximum(count - 1.0, 0.0) / count
