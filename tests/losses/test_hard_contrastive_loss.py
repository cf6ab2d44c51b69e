"""HardContrastiveLoss: the informative interval and its InfoNCE limit."""

import numpy as np

from keras_contrastive import losses


def test_hard_loss_with_all_negatives_equals_info_nce(rng):
    y_pred = rng.normal(size=(8, 2, 16)).astype("float32")
    info_nce = losses.info_nce(None, y_pred, tau=0.2)
    for selection in [{"num_negatives": 14}, {"alpha": 1.0}]:
        hard = losses.hard_contrastive_loss(None, y_pred, tau=0.2, **selection)
        np.testing.assert_allclose(hard, info_nce, rtol=1e-6)
    fewer = losses.hard_contrastive_loss(None, y_pred, tau=0.2, num_negatives=3)
    assert np.all(np.asarray(fewer) < np.asarray(info_nce))


def test_default_alpha_keeps_the_paper_fraction_of_negatives(rng):
    """4095/50000 of 62 in-batch negatives: the ceil(5.08) = 6 nearest are kept."""
    y_pred = rng.normal(size=(32, 2, 8)).astype("float32")
    default = losses.hard_contrastive_loss(None, y_pred, tau=0.5)
    six = losses.hard_contrastive_loss(None, y_pred, tau=0.5, num_negatives=6)
    np.testing.assert_allclose(default, six, rtol=1e-6)


def test_fewer_negatives_give_a_smaller_loss_at_the_same_tau(rng):
    y_pred = rng.normal(size=(8, 2, 16)).astype("float32")
    values = [
        np.asarray(losses.hard_contrastive_loss(None, y_pred, tau=0.5, num_negatives=k))
        for k in (14, 7, 1)
    ]
    assert np.all(values[0] > values[1]) and np.all(values[1] > values[2])
