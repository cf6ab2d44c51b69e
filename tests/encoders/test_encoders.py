"""Encoder and projection-head builders."""

import numpy as np
import pytest

from keras_contrastive import encoders


def test_resnet18_is_the_cifar_variant():
    model = encoders.resnet18()
    assert model.output_shape == (None, 512)
    assert model.get_layer("stem_conv").kernel_size == (3, 3)
    assert not any("pool" in layer.name and "max" in layer.name for layer in model.layers)
    assert 11.0e6 < model.count_params() < 11.5e6  # ResNet-18: 11.2M


def test_resnet50_features():
    model = encoders.resnet50((64, 64, 3))
    assert model.output_shape == (None, 2048)
    assert 23.4e6 < model.count_params() < 23.7e6


def test_small_cnn_runs(rng):
    model = encoders.small_cnn((28, 28, 1), width=8, feature_dim=16)
    assert model(rng.uniform(size=(2, 28, 28, 1))).shape == (2, 16)


@pytest.mark.parametrize("kind, layers", [("linear", 1), ("mlp", 4)])
def test_projection_heads(rng, kind, layers):
    head = encoders.projection_head(kind, output_dim=32)
    assert head(np.zeros((2, 10), "float32")).shape == (2, 32)
    assert len(head.layers) == layers


def test_bad_head_raises():
    with pytest.raises(ValueError, match="Received: kind='deep'"):
        encoders.projection_head("deep")
