"""A small CNN encoder that trains in minutes on a CPU."""

import keras
from keras import layers

from keras_contrastive.layers import FusedBatchNormalization


def small_cnn(input_shape=(28, 28, 1), width=32, feature_dim=128, name="small_cnn"):
    """Three conv-BN-ReLU stages and global pooling: a fast CPU encoder.

    Batch normalisation matters: without it the PAPER.md small-scale runs
    did not show the uniformity-tolerance dilemma.

    Args:
        input_shape: Image shape, values in [0, 1]. Defaults to
            `(28, 28, 1)`.
        width: Filters of the first stage (doubled at each of the next
            two). Defaults to `32`.
        feature_dim: Size of the output features. Defaults to `128`.
        name: Model name. Defaults to `"small_cnn"`.

    Returns:
        A functional `keras.Model` from images to `(batch, feature_dim)`.
    """
    images = keras.Input(input_shape)
    x = images
    for stage, filters in enumerate([width, 2 * width, 4 * width]):
        x = layers.Conv2D(filters, 3, strides=1 if stage == 0 else 2, padding="same", use_bias=False)(x)
        x = FusedBatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    features = layers.Dense(feature_dim)(x)
    return keras.Model(images, features, name=name)
