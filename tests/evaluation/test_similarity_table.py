"""The positive against nearest-negative table (Figure 8)."""

import numpy as np
import pytest

from keras_contrastive.evaluation import similarity_table
from tests.evaluation import reference


def test_matches_reference(rng):
    anchors = rng.normal(size=(50, 6))
    positives = anchors + 0.3 * rng.normal(size=(50, 6))
    table = similarity_table(anchors, positives, k=4, block_size=16)
    a, p = reference.normalize(anchors), reference.normalize(positives)
    similarities = a @ p.T
    np.testing.assert_allclose(table["positive"], np.diag(similarities), rtol=1e-5)
    negatives = np.where(np.eye(50, dtype=bool), -np.inf, similarities)
    expected = -np.sort(-negatives, axis=1)[:, :4]
    np.testing.assert_allclose(table["negatives"], expected, rtol=1e-5, atol=1e-6)


def test_bad_input_raises(rng):
    x = rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match="at most the 4 negatives.*k=5"):
        similarity_table(x, x, k=5)
    with pytest.raises(ValueError, match=r"positives.shape=\(4, 3\)"):
        similarity_table(x, x[:4])
