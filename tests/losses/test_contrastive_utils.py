"""The shared kernels: the paper's identities, negative selection and numerics."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_contrastive import losses
from keras_contrastive.losses import contrastive_utils
from tests.backends import value_and_gradients
from tests.losses import numpy_reference


def square_pairs(rng, n=6):
    """A similarity matrix with the positives on the diagonal (paper notation)."""
    z = numpy_reference.normalize(rng.normal(size=(n, 8)))
    w = numpy_reference.normalize(z + 0.5 * rng.normal(size=(n, 8)))
    positive = np.eye(n, dtype=bool)
    return (z @ w.T).astype("float32"), positive, ~positive


def gradient_on_similarities(rng, tau, **selection):
    similarities, positive, negative = square_pairs(rng)
    _, (gradient,) = value_and_gradients(
        lambda similarities: contrastive_utils.contrastive_anchor_losses(
            similarities, positive, negative, tau, **selection
        ),
        [similarities],
    )
    return similarities, gradient


@pytest.mark.parametrize("tau", [0.05, 0.2, 1.0])
@pytest.mark.parametrize("selection", [{}, {"num_negatives": 2}])
def test_positive_gradient_balances_the_negatives(rng, tau, selection):
    """|dL/ds_ii| = sum_k dL/ds_ik: the paper's gradient identity."""
    _, grad = gradient_on_similarities(rng, tau, **selection)
    positive_grad = np.diag(grad)
    negative_grads = grad - np.diag(positive_grad)
    assert np.all(positive_grad <= 0)
    assert np.all(negative_grads >= 0)
    np.testing.assert_allclose(
        -positive_grad, negative_grads.sum(axis=1), rtol=1e-5, atol=1e-5 / tau
    )


def test_negative_gradient_is_the_softmax_probability_over_tau(rng):
    """dL/ds_ij = P_ij / tau, P_ij = exp(s_ij/tau) / sum_k exp(s_ik/tau)."""
    tau = 0.1
    similarities, grad = gradient_on_similarities(rng, tau)
    probabilities = np.exp(similarities / tau)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    off_diagonal = ~np.eye(len(grad), dtype=bool)
    np.testing.assert_allclose(
        grad[off_diagonal], probabilities[off_diagonal] / tau, rtol=1e-5
    )


def test_hard_selection_zeroes_gradients_outside_the_interval(rng):
    similarities, grad = gradient_on_similarities(rng, 0.2, num_negatives=2)
    off_diagonal = ~np.eye(len(grad), dtype=bool)
    for row, grads, negatives in zip(similarities, grad, off_diagonal):
        threshold = np.sort(row[negatives])[-2]
        in_interval = negatives & (row >= threshold)
        assert np.all(grads[in_interval] > 0)
        np.testing.assert_array_equal(grads[negatives & ~in_interval], 0.0)


@pytest.mark.parametrize("num_negatives", [1, 3, 10])
def test_kept_mask_keeps_exactly_the_k_largest(rng, num_negatives):
    similarities = rng.uniform(-1, 1, size=(5, 12)).astype("float32")
    negative = rng.uniform(size=(5, 12)) < 0.9
    kept = np.asarray(
        contrastive_utils.kept_negative_mask(similarities, negative, num_negatives=num_negatives)
    )
    for row, negatives, keep in zip(similarities, negative, kept):
        assert not np.any(keep & ~negatives)
        assert keep.sum() == min(num_negatives, negatives.sum())
        if keep.sum() < negatives.sum():
            assert row[keep].min() > row[negatives & ~keep].max()


@pytest.mark.parametrize("alpha", [0.1, 0.5, 1.0])
def test_kept_mask_keeps_the_upper_alpha_quantile(rng, alpha):
    similarities = rng.uniform(-1, 1, size=(5, 20)).astype("float32")
    negative = rng.uniform(size=(5, 20)) < 0.7
    kept = np.asarray(contrastive_utils.kept_negative_mask(similarities, negative, alpha=alpha))
    counts = negative.sum(axis=1)
    np.testing.assert_array_equal(kept.sum(axis=1), np.ceil(alpha * counts).astype(int))


def test_kept_mask_keeps_ties_at_the_threshold():
    similarities = np.array([[0.9, 0.5, 0.5, 0.5, 0.1]], "float32")
    negative = np.array([[False, True, True, True, True]])
    kept = contrastive_utils.kept_negative_mask(similarities, negative, num_negatives=2)
    np.testing.assert_array_equal(kept, [[False, True, True, True, False]])


# --- numerics -------------------------------------------------------------

NAMES = ["info_nce", "hard", "simple", "hard_simple"]
FUNCTIONS = {
    "info_nce": (losses.info_nce, {}),
    "hard": (losses.hard_contrastive_loss, {"num_negatives": 3}),
    "simple": (losses.simple_contrastive_loss, {}),
    "hard_simple": (losses.hard_simple_contrastive_loss, {"num_negatives": 3}),
}


def loss_and_gradient(name, y_pred, tau, dtype):
    functional, selection = FUNCTIONS[name]
    x = ops.cast(ops.convert_to_tensor(y_pred), dtype)
    value, (gradient,) = value_and_gradients(
        lambda x: functional(None, x, tau=tau, **selection), [x]
    )
    return value.sum(), gradient.astype("float64")


def reference_loss_and_gradient(name, y_pred, tau):
    kind = "info_nce" if name in ("info_nce", "hard") else "simple"
    selection = FUNCTIONS[name][1]

    def total(x):
        return numpy_reference.per_sample(kind, None, x, tau, **selection).sum()

    return total(y_pred), numpy_reference.numerical_gradient(total, y_pred)


# The gradient w.r.t. an input comes back in the input's dtype, so it carries
# that dtype's rounding (unit roundoff 2**-24, 2**-11, 2**-8) on top of the
# float32 computation; the loss value itself is float32.
GRADIENT_RTOL = {"float32": 1e-4, "float16": 2e-3, "bfloat16": 1e-2}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("tau", [0.01, 0.1, 10.0])
def test_low_precision_and_small_tau_match_the_reference(rng, name, dtype, tau):
    """Finite, and within the stated tolerance of float64 on the same inputs.

    The inputs are rounded to `dtype` first, then both sides see the same
    values. The loss casts to float32 before normalising, so its value is
    within 1e-4 relative of float64 in every dtype, and its gradient within
    `GRADIENT_RTOL[dtype]` (plus 1e-4 of the largest entry, absolute).
    """
    y_pred = rng.normal(size=(4, 2, 6))
    y_pred = ops.convert_to_numpy(ops.cast(y_pred, dtype)).astype("float64")
    value, grad = loss_and_gradient(name, y_pred, tau, dtype)
    expected_value, expected_grad = reference_loss_and_gradient(name, y_pred, tau)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert abs(value - expected_value) <= 1e-4 * max(abs(expected_value), 1.0)
    np.testing.assert_allclose(
        grad,
        expected_grad,
        rtol=GRADIENT_RTOL[dtype],
        atol=1e-4 * np.abs(expected_grad).max(),
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize(
    "case",
    ["norm_1e4", "collapsed", "zero_vectors", "one_zero_sample"],
)
def test_degenerate_embeddings_stay_finite(rng, name, dtype, case):
    y_pred = rng.normal(size=(4, 2, 6))
    if case == "norm_1e4":
        y_pred = 1e4 * numpy_reference.normalize(y_pred)
    elif case == "collapsed":
        y_pred = np.broadcast_to(y_pred[:1, :1], y_pred.shape).copy()
    elif case == "zero_vectors":
        y_pred = np.zeros_like(y_pred)
    else:
        y_pred[0] = 0.0
    for tau in [0.01, 10.0]:
        value, grad = loss_and_gradient(name, y_pred, tau, dtype)
        assert np.isfinite(value), (case, tau)
        assert np.all(np.isfinite(grad)), (case, tau)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_policy_computes_in_float32(rng, policy):
    y_pred = rng.normal(size=(4, 2, 6)).astype("float32")
    expected = ops.convert_to_numpy(losses.InfoNCE(tau=0.01)(None, y_pred))
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        loss = losses.InfoNCE(tau=0.01)
        low = keras.ops.cast(y_pred, policy.split("_")[1])
        value = loss(None, low)
    finally:
        keras.config.set_dtype_policy(previous)
    assert value.dtype == "float32"
    np.testing.assert_allclose(value, expected, rtol=5e-3)
