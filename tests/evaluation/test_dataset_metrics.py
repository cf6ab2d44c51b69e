"""Uniformity and tolerance over a whole set, exactly, in blocks."""

import numpy as np
import pytest

from keras_contrastive.evaluation import uniformity_and_tolerance
from tests.evaluation import reference


@pytest.mark.parametrize("block_size", [7, 64, 1024])
def test_matches_reference_whatever_the_block_size(rng, block_size):
    features = rng.normal(size=(150, 8))
    labels = rng.integers(0, 4, size=150)
    result = uniformity_and_tolerance(features, labels, block_size=block_size)
    expected_u, expected_t = reference.uniformity_and_tolerance(features, labels)
    assert result["uniformity"] == pytest.approx(expected_u, rel=1e-5)
    assert result["tolerance"] == pytest.approx(expected_t, rel=1e-5, abs=1e-6)


def test_without_labels_tolerance_is_none(rng):
    result = uniformity_and_tolerance(rng.normal(size=(20, 4)))
    assert result["tolerance"] is None
    assert 0 < result["uniformity"] <= 4.0


@pytest.mark.slow
def test_pulling_real_features_toward_class_means_raises_tolerance(fashion_mnist):
    """Interpolating real features toward their class means: T up, U down."""
    images, labels = fashion_mnist["test"]
    features = reference.random_projection_features(images[:3000])
    labels = labels[:3000]
    unit = reference.normalize(features)
    means = np.stack([unit[labels == c].mean(axis=0) for c in range(10)])
    results = [
        uniformity_and_tolerance((1 - w) * unit + w * means[labels], labels)
        for w in (0.0, 0.3, 0.6, 0.9)
    ]
    tolerances = [r["tolerance"] for r in results]
    uniformities = [r["uniformity"] for r in results]
    assert all(a < b for a, b in zip(tolerances, tolerances[1:])), tolerances
    assert all(a > b for a, b in zip(uniformities, uniformities[1:])), uniformities


@pytest.mark.slow
def test_all_60000_training_embeddings_run_exactly(fashion_mnist):
    images, labels = fashion_mnist["train"]
    features = reference.random_projection_features(images, dim=32)
    result = uniformity_and_tolerance(features, labels, block_size=2048)
    subset = uniformity_and_tolerance(features[:2000], labels[:2000])
    assert 0 < result["uniformity"] <= 4.0
    assert -1 < result["tolerance"] < 1
    # The whole set and a random-order subset estimate the same quantities.
    assert result["uniformity"] == pytest.approx(subset["uniformity"], rel=0.05)
    assert result["tolerance"] == pytest.approx(subset["tolerance"], rel=0.05)


def test_bad_input_raises(rng):
    with pytest.raises(ValueError, match=r"features.shape=\(5,\)"):
        uniformity_and_tolerance(np.zeros(5))
    with pytest.raises(ValueError, match=r"labels.shape=\(3,\)"):
        uniformity_and_tolerance(rng.normal(size=(5, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="Received: t=0"):
        uniformity_and_tolerance(rng.normal(size=(5, 2)), t=0.0)
    with pytest.raises(ValueError, match="at least 2 embeddings"):
        uniformity_and_tolerance(rng.normal(size=(1, 2)))
