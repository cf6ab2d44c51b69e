"""Seeded, class-balanced subsets: never the first rows of a class-ordered split."""

import numpy as np
import pytest

from keras_contrastive.data.subsets import balanced_subset


def class_ordered_labels(sizes):
    return np.repeat(np.arange(len(sizes)), sizes)


@pytest.mark.parametrize("size", [1, 7, 10, 33, 100])
def test_every_class_gets_an_equal_share(size):
    labels = class_ordered_labels([10] * 10)
    chosen = balanced_subset(labels, size, seed=3)
    counts = np.bincount(labels[chosen], minlength=10)
    assert len(chosen) == size and len(np.unique(chosen)) == size
    assert counts.max() - counts.min() <= 1 and counts.sum() == size


def test_small_classes_give_their_share_to_the_others():
    labels = class_ordered_labels([2, 50, 50])
    counts = np.bincount(labels[balanced_subset(labels, 60, seed=0)])
    np.testing.assert_array_equal(counts, [2, 29, 29])


def test_seeded_and_shuffled():
    labels = class_ordered_labels([100] * 4)
    first = balanced_subset(labels, 40, seed=1)
    np.testing.assert_array_equal(first, balanced_subset(labels, 40, seed=1))
    assert not np.array_equal(np.sort(first), np.sort(balanced_subset(labels, 40, seed=2)))
    # Shuffled: the classes are interleaved, not in blocks.
    assert len(np.unique(labels[first][:8])) > 1


def test_the_whole_split_is_a_permutation():
    labels = class_ordered_labels([3, 5, 4])
    np.testing.assert_array_equal(np.sort(balanced_subset(labels, 12)), np.arange(12))


@pytest.mark.parametrize("size", [0, 13, -1, 2.5, True, None])
def test_bad_sizes_raise_naming_the_value(size):
    with pytest.raises(ValueError, match=f"Received: size={size!r}"):
        balanced_subset(class_ordered_labels([3, 5, 4]), size)
