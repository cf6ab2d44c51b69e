"""ResNet encoders: the paper's ResNet-18 for 32x32 images, and ResNet-50."""

import keras
from keras import layers

from keras_contrastive.layers import FusedBatchNormalization


def _basic_block(x, filters, stride, name):
    shortcut = x
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    x = FusedBatchNormalization(name=f"{name}_bn1")(x)
    x = layers.ReLU(name=f"{name}_relu1")(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(x)
    x = FusedBatchNormalization(name=f"{name}_bn2")(x)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(shortcut)
        shortcut = FusedBatchNormalization(name=f"{name}_proj_bn")(shortcut)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, shortcut]))


def resnet18(input_shape=(32, 32, 3), name="resnet18"):
    """ResNet-18 for small images, as in the paper's CIFAR experiments.

    A 3x3 stride-1 first convolution and no max-pool (the CIFAR variant of
    the author code), four stages of two basic blocks (64, 128, 256, 512
    filters), global average pooling: 512-d features.

    Args:
        input_shape: Image shape, values in [0, 1]. Defaults to
            `(32, 32, 3)`.
        name: Model name. Defaults to `"resnet18"`.

    Returns:
        A functional `keras.Model` from images to `(batch, 512)`.
    """
    images = keras.Input(input_shape)
    x = layers.Conv2D(64, 3, padding="same", use_bias=False, name="stem_conv")(images)
    x = FusedBatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, filters in enumerate([64, 128, 256, 512]):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, filters, stride, name=f"stage{stage + 1}_block{block + 1}")
    features = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(images, features, name=name)


def resnet50(input_shape=(224, 224, 3), name="resnet50"):
    """ResNet-50 from `keras.applications`, untrained, with average pooling.

    The paper's ImageNet-100 encoder: 2048-d features.

    Args:
        input_shape: Image shape, values in [0, 1]. Defaults to
            `(224, 224, 3)`.
        name: Model name. Defaults to `"resnet50"`.

    Returns:
        A `keras.Model` from images to `(batch, 2048)`.
    """
    backbone = keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=input_shape, pooling="avg"
    )
    images = keras.Input(input_shape)
    return keras.Model(images, backbone(images), name=name)
