"""Independent float64 NumPy references of the metrics, loop by loop.

Each function takes a list of batches (the metric's streaming contract: pairs
stay inside a batch) and returns the value the definition gives for them.
"""

import math

import numpy as np

from tests.losses.numpy_reference import normalize


def views_of_distinct_samples(z, labels=None, same_label=False):
    """Yields unordered pairs (x, y) of views of distinct samples."""
    batch, views, _ = z.shape
    for b in range(batch):
        for c in range(b + 1, batch):
            if same_label and labels[b] != labels[c]:
                continue
            for v in range(views):
                for w in range(views):
                    yield z[b, v], z[c, w]


def uniformity(batches, t=2.0):
    """Wang & Isola's `log mean exp(-t * pdist^2)`, negated, over the batches."""
    total, count = 0.0, 0
    for y_pred in batches:
        z = normalize(y_pred)
        for x, y in views_of_distinct_samples(z):
            total += math.exp(-t * np.sum((x - y) ** 2))
            count += 1
    return -math.log(total / count)


def tolerance(batches, labels):
    total, count = 0.0, 0
    for y_pred, batch_labels in zip(batches, labels):
        z = normalize(y_pred)
        for x, y in views_of_distinct_samples(z, batch_labels, same_label=True):
            total += float(x @ y)
            count += 1
    return total / count


def anchors(z):
    """Yields (anchor, positives, negatives) for every view."""
    batch, views, _ = z.shape
    for b in range(batch):
        for v in range(views):
            positives = [z[b, w] for w in range(views) if w != v]
            negatives = [z[c, w] for c in range(batch) if c != b for w in range(views)]
            yield z[b, v], positives, negatives


def alignment(batches, alpha=2.0):
    distances = [
        np.linalg.norm(anchor - positive) ** alpha
        for y_pred in batches
        for anchor, positives, _ in anchors(normalize(y_pred))
        for positive in positives
    ]
    return float(np.mean(distances))


def positive_similarity(batches):
    return float(
        np.mean(
            [
                anchor @ positive
                for y_pred in batches
                for anchor, positives, _ in anchors(normalize(y_pred))
                for positive in positives
            ]
        )
    )


def nearest_negatives(batches, k):
    rows = [
        np.sort([anchor @ n for n in negatives])[::-1][:k]
        for y_pred in batches
        for anchor, _, negatives in anchors(normalize(y_pred))
    ]
    return np.mean(rows, axis=0)


def contrastive_accuracy(batches):
    outcomes = []
    for y_pred in batches:
        for anchor, positives, negatives in anchors(normalize(y_pred)):
            nearest = max(anchor @ n for n in negatives)
            outcomes += [anchor @ p > nearest for p in positives]
    return float(np.mean(outcomes))


def penalty_entropies(batches, tau):
    entropies = []
    for y_pred in batches:
        for anchor, _, negatives in anchors(normalize(y_pred)):
            weights = np.exp(np.array([anchor @ n for n in negatives]) / tau)
            r = weights / weights.sum()
            entropies.append(-np.sum(r * np.log(r)))
    return np.array(entropies)
