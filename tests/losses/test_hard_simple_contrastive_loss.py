"""HardSimpleContrastiveLoss: the simple loss over the nearest negatives."""

import numpy as np

from keras_contrastive import losses


def test_all_negatives_equals_the_simple_loss(rng):
    y_pred = rng.normal(size=(8, 2, 16)).astype("float32")
    simple = losses.simple_contrastive_loss(None, y_pred, tau=0.5)
    hard_simple = losses.hard_simple_contrastive_loss(
        None, y_pred, num_negatives=14, tau=0.5
    )
    np.testing.assert_allclose(hard_simple, simple, rtol=1e-6)


def test_nearest_negatives_weigh_more_than_the_mean(rng):
    """The mean of the K nearest negatives exceeds the mean of all of them."""
    y_pred = rng.normal(size=(8, 2, 16)).astype("float32")
    simple = np.asarray(losses.simple_contrastive_loss(None, y_pred))
    hard_simple = np.asarray(losses.hard_simple_contrastive_loss(None, y_pred, num_negatives=3))
    assert np.all(hard_simple > simple)


def test_lam_weights_the_sum_of_kept_negatives(rng):
    y_pred = rng.normal(size=(8, 2, 16)).astype("float32")
    mean_weight = losses.hard_simple_contrastive_loss(None, y_pred, num_negatives=4)
    explicit = losses.hard_simple_contrastive_loss(None, y_pred, num_negatives=4, lam=0.25)
    np.testing.assert_allclose(mean_weight, explicit, rtol=1e-6)
