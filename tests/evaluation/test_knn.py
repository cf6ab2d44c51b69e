"""The weighted kNN monitor against a loop-by-loop NumPy kNN."""

import numpy as np
import pytest

from keras_contrastive.evaluation import knn_accuracy
from keras_contrastive.evaluation import knn_predict
from tests.evaluation import reference


@pytest.mark.parametrize("k, sigma", [(1, 0.07), (5, 0.07), (20, 1.0)])
def test_matches_numpy_knn(rng, k, sigma):
    bank = rng.normal(size=(120, 6))
    bank_labels = rng.integers(0, 4, size=120)
    queries = rng.normal(size=(37, 6))
    actual = knn_predict(bank, bank_labels, queries, k=k, sigma=sigma, block_size=16)
    expected = reference.weighted_knn(bank, bank_labels, queries, k, sigma, 4)
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.slow
def test_real_data_with_random_projection_is_well_above_chance(fashion_mnist):
    train_images, train_labels = fashion_mnist["train"]
    test_images, test_labels = fashion_mnist["test"]
    bank = reference.random_projection_features(train_images[:5000])
    queries = reference.random_projection_features(test_images[:500])
    accuracy = knn_accuracy(bank, train_labels[:5000], queries, test_labels[:500])
    expected = reference.weighted_knn(bank, train_labels[:5000], queries, 200, 0.07, 10)
    assert accuracy == pytest.approx(np.mean(expected == test_labels[:500]))
    assert accuracy > 0.6  # chance is 0.1


def test_bad_input_raises(rng):
    bank, labels = rng.normal(size=(10, 3)), np.zeros(10, int)
    with pytest.raises(ValueError, match="at most the 10 bank entries. Received: k=11"):
        knn_predict(bank, labels, bank, k=11)
    with pytest.raises(ValueError, match="Received: sigma=-1"):
        knn_predict(bank, labels, bank, k=3, sigma=-1.0)
    with pytest.raises(ValueError, match=r"same dim.*query_features.shape=\(4, 2\)"):
        knn_predict(bank, labels, rng.normal(size=(4, 2)), k=3)
    with pytest.raises(ValueError, match=r"bank_labels.shape=\(9,\)"):
        knn_predict(bank, labels[:9], bank, k=3)
    with pytest.raises(ValueError, match=r"query_labels.shape=\(2,\)"):
        knn_accuracy(bank, labels, bank, labels[:2], k=3)
