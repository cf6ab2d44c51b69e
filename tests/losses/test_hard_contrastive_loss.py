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


def test_collapse_lowers_the_hard_losses_when_hard_negatives_beat_the_positive(rng):
    """What collapsed the hard losses on CIFAR-10 (README, Table 1): every
    embedding at one point gives log(1 + K) at any tau (HardSimple: 0),
    below the loss whenever an anchor's kept negatives are more similar to
    it than its positive; InfoNCE, whose collapse value log(1 + 14) counts
    every negative, still gains from spreading the same embeddings out."""
    centres = np.eye(16)[[0, 0, 1, 1, 2, 2, 3, 3]]  # four pairs of near-duplicates
    first = centres + 0.02 * rng.normal(size=(8, 16))
    second = centres + 0.2 * rng.normal(size=(8, 16))  # strongly augmented view
    spread = np.stack([first, second], axis=1).astype("float32")
    # Nearly one point: exact ties with the threshold would all be kept.
    collapsed = (1.0 + 1e-2 * rng.normal(size=(8, 2, 16))).astype("float32")
    for tau in (0.07, 0.2, 1.0):
        at_collapse = losses.hard_contrastive_loss(None, collapsed, tau=tau, num_negatives=1)
        np.testing.assert_allclose(at_collapse, np.log(2.0), atol=5e-3)
        hard = losses.hard_contrastive_loss(None, spread, tau=tau, num_negatives=1)
        assert np.mean(hard) > np.log(2.0), tau
        at_collapse = losses.hard_simple_contrastive_loss(None, collapsed, tau=tau, num_negatives=1)
        np.testing.assert_allclose(at_collapse, 0.0, atol=5e-3 / tau)
        assert np.mean(losses.hard_simple_contrastive_loss(None, spread, tau=tau, num_negatives=1)) > 0, tau
        np.testing.assert_allclose(losses.info_nce(None, collapsed, tau=tau), np.log(15.0), atol=5e-3)
        assert np.mean(losses.info_nce(None, spread, tau=tau)) < np.log(15.0), tau
