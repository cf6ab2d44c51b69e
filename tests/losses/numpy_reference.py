"""Independent float64 NumPy references of the losses, written loop by loop.

Nothing here imports keras_contrastive: each anchor's positives and
negatives are enumerated explicitly from the definitions in PAPER.md, so a
shared mistake in the vectorised masks cannot hide.
"""

import math

import numpy as np


def normalize(x):
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def anchor_pairs(
    labels,
    y_pred,
    label_mode=None,
    extra=None,
    extra_labels=None,
    in_batch_negatives=True,
):
    """Yields (sample, positive similarities, negative similarities) per anchor."""
    batch, views, _ = y_pred.shape
    z = normalize(y_pred)
    extra = None if extra is None else normalize(extra)
    for b in range(batch):
        for v in range(views):
            anchor = z[b, v]
            positives, negatives = [], []
            for c in range(batch):
                for w in range(views):
                    if c == b and w == v:
                        continue
                    s = float(anchor @ z[c, w])
                    if label_mode == "supervised":
                        is_positive = labels[c] == labels[b]
                    else:
                        is_positive = c == b
                    if is_positive:
                        positives.append(s)
                    elif label_mode == "mask" and labels[c] == labels[b]:
                        continue
                    elif in_batch_negatives:
                        negatives.append(s)
            if extra is not None:
                for m in range(len(extra)):
                    s = float(anchor @ extra[m])
                    same = (
                        extra_labels is not None
                        and label_mode is not None
                        and extra_labels[m] == labels[b]
                    )
                    if same and label_mode == "supervised":
                        positives.append(s)
                    elif same and label_mode == "mask":
                        continue
                    else:
                        negatives.append(s)
            yield b, np.array(positives), np.array(negatives)


def kept_negatives(negatives, num_negatives=None, alpha=None):
    """The negatives at or above the anchor's K-th largest."""
    if num_negatives is None and alpha is None:
        return negatives
    if len(negatives) == 0:
        return negatives
    k = num_negatives if num_negatives is not None else math.ceil(alpha * len(negatives))
    k = min(k, len(negatives))
    threshold = np.sort(negatives)[::-1][k - 1]
    return negatives[negatives >= threshold]


def kth_largest_by_bits(values, ranks):
    """Each float32 row's `ranks`-th largest entry, entries ordered as their
    bits (`-0.0` just below `0.0`, NaN above `inf` or, negative, below
    `-inf`), by sorting unsigned keys."""
    bits = values.view(np.uint32)
    keys = np.where(bits >= 2**31, ~bits, bits | np.uint32(2**31))
    selected = np.sort(keys, axis=1)[np.arange(len(values)), values.shape[1] - ranks]
    selected_bits = np.where(selected < 2**31, ~selected, selected ^ np.uint32(2**31))
    return selected_bits.astype(np.uint32).view(np.float32)


def awkward_selection_case(rng, columns):
    """`(values, ranks)` for 11 float32 rows: one constant row (every rank a
    tie), one with NaN, one with infinities, signed zeros and denormals, one
    of integers (many ties), one of denormals only, one of magnitudes near
    float32's largest (their differences overflow), random rows; one rank
    per row, the extremes among them."""
    values = rng.normal(size=(11, columns)).astype(np.float32)
    values[0] = 0.5
    values[1, : columns // 2] = np.nan
    values[2, :6] = [-np.inf, np.inf, -0.0, 0.0, 1e-40, -1e-40]
    values[3] = np.round(values[3])
    values[4] = rng.integers(-1000, 1000, size=columns) * np.float32(1e-45)
    values[5] = rng.uniform(-3e38, 3e38, size=columns)
    ranks = rng.integers(1, columns + 1, size=11).astype(np.int32)
    ranks[:3] = [columns, columns // 2 + 1, 1]
    return values, ranks


def logsumexp(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


def contrastive(positives, negatives, tau):
    if len(positives) == 0:
        return 0.0
    denominator = logsumexp(np.concatenate([positives, negatives]) / tau)
    return float(np.mean([denominator - p / tau for p in positives]))


def simple(positives, negatives, tau, lam=None):
    if len(positives) == 0:
        return 0.0
    weight = (1.0 / max(len(negatives), 1)) if lam is None else lam
    return float((-np.mean(positives) + weight * np.sum(negatives)) / tau)


def per_sample(kind, labels, y_pred, tau, num_negatives=None, alpha=None, lam=None, **candidates):
    """Per-sample reference loss of `kind` in float64, shape (batch,)."""
    batch, views, _ = y_pred.shape
    totals = np.zeros(batch)
    for b, positives, negatives in anchor_pairs(labels, y_pred, **candidates):
        kept = kept_negatives(negatives, num_negatives, alpha)
        if kind in ("info_nce", "hard"):
            totals[b] += contrastive(positives, kept, tau)
        else:
            totals[b] += simple(positives, kept, tau, lam)
    return totals / views


def numerical_gradient(fn, x, step=1e-6):
    """Central finite differences of a scalar function of `x`, in float64."""
    x = np.asarray(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += step
        minus[index] -= step
        grad[index] = (fn(plus) - fn(minus)) / (2 * step)
    return grad
