"""InfoNCE: the paper's temperature limits and the memory-bank setting."""

import numpy as np

from keras_contrastive import losses
from tests.losses import numpy_reference


def test_small_tau_limit_is_the_hardest_negative_margin(rng):
    """tau * InfoNCE -> max(s_max - s_ii, 0) as tau -> 0+."""
    y_pred = rng.normal(size=(8, 2, 16))
    expected = np.zeros(8)
    for b, positives, negatives in numpy_reference.anchor_pairs(None, y_pred):
        expected[b] += max(negatives.max() - positives[0], 0.0) / 2
    errors = []
    for tau in [0.1, 0.01, 0.001]:
        scaled = tau * np.asarray(losses.info_nce(None, y_pred.astype("float32"), tau=tau))
        errors.append(np.max(np.abs(scaled - expected)))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-2


def test_memory_bank_setting_matches_instdisc_formula(rng):
    """One view, positive = own bank entry, negatives = the rest of the bank."""
    bank = numpy_reference.normalize(rng.normal(size=(20, 8)))
    indices = np.array([3, 7, 11, 19])
    y_pred = rng.normal(size=(4, 1, 8)).astype("float32")
    actual = losses.info_nce(
        indices,
        y_pred,
        tau=0.07,
        label_mode="supervised",
        extra_negatives=bank,
        extra_labels=np.arange(20),
        in_batch_negatives=False,
    )
    z = numpy_reference.normalize(y_pred[:, 0])
    logits = z @ bank.T / 0.07
    expected = [
        numpy_reference.logsumexp(row) - row[i] for row, i in zip(logits, indices)
    ]
    np.testing.assert_allclose(actual, expected, rtol=1e-5)
