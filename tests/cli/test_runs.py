"""The command line's data choices: balanced subsets and a held-out validation split."""

import numpy as np
import pytest

from keras_contrastive.cli import runs


@pytest.fixture
def class_ordered():
    labels = np.repeat(np.arange(4), 25)
    return np.arange(100)[:, None] * np.ones((1, 3)), labels


def test_train_size_is_a_balanced_seeded_sample_not_the_first_rows(class_ordered):
    images, labels = class_ordered
    subset_images, subset_labels = runs.training_subset(images, labels, {"train_size": 20, "seed": 0})
    np.testing.assert_array_equal(np.bincount(subset_labels), [5, 5, 5, 5])
    np.testing.assert_array_equal(labels[subset_images[:, 0].astype(int)], subset_labels)  # rows stay paired
    assert len(np.unique(subset_images[:, 0])) == 20
    assert runs.training_subset(images, labels, {"train_size": 0, "seed": 0})[0] is images
    with pytest.raises(ValueError, match="Received: train_size=101"):
        runs.training_subset(images, labels, {"train_size": 101, "seed": 0})


def test_the_validation_split_is_disjoint_balanced_and_a_tenth_by_default(class_ordered):
    images, labels = class_ordered
    (train_images, train_labels), (held_images, held_labels) = runs.validation_split(images, labels, 0, seed=1)
    assert len(held_images) == 10 and len(train_images) == 90
    assert not set(train_images[:, 0]) & set(held_images[:, 0])
    assert np.bincount(held_labels).max() - np.bincount(held_labels).min() <= 1
    np.testing.assert_array_equal(labels[train_images[:, 0].astype(int)], train_labels)
    with pytest.raises(ValueError, match="Received: validation_size=100"):
        runs.validation_split(images, labels, 100, seed=1)
