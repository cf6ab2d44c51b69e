"""The linear probe on frozen features."""

import numpy as np
import pytest

from keras_contrastive.evaluation import linear_probe_accuracy
from tests.evaluation import reference


def test_separable_features_are_classified(rng):
    centres = rng.normal(size=(3, 5)) * 4
    labels = rng.integers(0, 3, size=400)
    features = centres[labels] + rng.normal(size=(400, 5))
    accuracy = linear_probe_accuracy(features[:300], labels[:300], features[300:], labels[300:], epochs=20)
    assert accuracy > 0.95


def test_uninformative_features_stay_near_chance(rng):
    labels = rng.integers(0, 4, size=800)
    features = rng.normal(size=(800, 5))
    accuracy = linear_probe_accuracy(features[:600], labels[:600], features[600:], labels[600:], epochs=5)
    assert accuracy < 0.45


@pytest.mark.slow
def test_real_data_with_random_projection(fashion_mnist):
    train_images, train_labels = fashion_mnist["train"]
    test_images, test_labels = fashion_mnist["test"]
    accuracy = linear_probe_accuracy(
        reference.random_projection_features(train_images[:10000]),
        train_labels[:10000],
        reference.random_projection_features(test_images[:2000]),
        test_labels[:2000],
        epochs=10,
    )
    assert accuracy > 0.7


def test_bad_input_raises(rng):
    x, y = rng.normal(size=(10, 3)), np.zeros(10, int)
    with pytest.raises(ValueError, match=r"test_features.shape=\(4,\)"):
        linear_probe_accuracy(x, y, np.zeros(4), y[:4])
    with pytest.raises(ValueError, match="Received: epochs=0"):
        linear_probe_accuracy(x, y, x, y, epochs=0)
