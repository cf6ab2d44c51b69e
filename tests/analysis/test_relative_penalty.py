"""The relative penalty, its entropy and the effective number of negatives."""

import numpy as np
import pytest

from keras_contrastive import analysis


def reference_penalty(similarities, tau):
    """Loop-by-loop float64 r_i(s_ij) with the positives on the diagonal."""
    n = len(similarities)
    penalty = np.zeros((n, n))
    for i in range(n):
        weights = {j: np.exp(similarities[i, j] / tau) for j in range(n) if j != i}
        total = sum(weights.values())
        for j, w in weights.items():
            penalty[i, j] = w / total
    return penalty


@pytest.fixture
def similarities(rng):
    z = rng.normal(size=(7, 5))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    return z @ z.T


@pytest.mark.parametrize("tau", [0.1, 0.5, 2.0])
def test_relative_penalty_matches_reference(similarities, tau):
    actual = analysis.relative_penalty(similarities, tau)
    np.testing.assert_allclose(actual, reference_penalty(similarities, tau), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("tau", [0.1, 0.5, 2.0])
def test_entropy_and_effective_negatives_match_reference(similarities, tau):
    penalty = reference_penalty(similarities, tau)
    logs = np.log(np.where(penalty > 0, penalty, 1.0))
    entropy = -(penalty * logs).sum(axis=1)
    np.testing.assert_allclose(analysis.penalty_entropy(similarities, tau), entropy, rtol=1e-5)
    np.testing.assert_allclose(
        analysis.effective_negatives(similarities, tau), np.exp(entropy), rtol=1e-5
    )


def test_entropy_falls_as_tau_falls(similarities):
    taus = [10.0, 1.0, 0.3, 0.1, 0.03, 0.01]
    entropies = [analysis.penalty_entropy(similarities, t).numpy() for t in taus]
    for higher, lower in zip(entropies, entropies[1:]):
        assert np.all(lower < higher)


def test_effective_negatives_span_one_to_all(similarities):
    many = analysis.effective_negatives(similarities, 1000.0).numpy()
    one = analysis.effective_negatives(similarities, 1e-3).numpy()
    np.testing.assert_allclose(many, 6.0, rtol=1e-3)
    np.testing.assert_allclose(one, 1.0, rtol=1e-3)


def test_explicit_negative_mask_for_rectangular_similarities(rng):
    similarities = rng.uniform(-1, 1, size=(3, 5))
    mask = np.array([[1, 1, 0, 1, 1], [0, 1, 1, 1, 1], [1, 1, 1, 1, 0]], bool)
    penalty = analysis.relative_penalty(similarities, 0.2, negative_mask=mask).numpy()
    np.testing.assert_allclose(penalty.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(penalty[~mask], 0.0)


def test_small_tau_stays_finite(similarities):
    assert np.all(np.isfinite(analysis.penalty_entropy(similarities, 0.001)))


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan")])
def test_bad_tau_raises(similarities, tau):
    with pytest.raises(ValueError, match="Received: tau="):
        analysis.relative_penalty(similarities, tau)


def test_non_square_without_mask_raises():
    with pytest.raises(ValueError, match=r"square.*similarities.shape=\(2, 3\)"):
        analysis.penalty_entropy(np.zeros((2, 3)), 0.1)


def test_wrong_rank_raises():
    with pytest.raises(ValueError, match=r"similarities.shape=\(4,\)"):
        analysis.penalty_entropy(np.zeros(4), 0.1)


def test_mask_of_wrong_shape_raises():
    with pytest.raises(ValueError, match=r"negative_mask.shape=\(2, 2\)"):
        analysis.relative_penalty(np.zeros((3, 3)), 0.1, negative_mask=np.ones((2, 2)))
