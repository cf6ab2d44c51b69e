"""Independent NumPy float64 references of the whole-dataset measures."""

import numpy as np


def normalize(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def uniformity_and_tolerance(features, labels, t=2.0):
    """Wang & Isola's published formula, over all distinct pairs (i < j)."""
    z = normalize(features)
    i, j = np.triu_indices(len(z), k=1)
    squared = np.sum((z[i] - z[j]) ** 2, axis=1)
    same = labels[i] == labels[j]
    similarities = np.sum(z[i] * z[j], axis=1)
    return -np.log(np.mean(np.exp(-t * squared))), similarities[same].mean()


def weighted_knn(bank, bank_labels, queries, k, sigma, num_classes):
    """Loop-by-loop weighted vote of the k most similar bank entries."""
    bank, queries = normalize(bank), normalize(queries)
    predictions = []
    for query in queries:
        similarities = bank @ query
        nearest = np.argsort(-similarities, kind="stable")[:k]
        votes = np.zeros(num_classes)
        for index in nearest:
            votes[bank_labels[index]] += np.exp(similarities[index] / sigma)
        predictions.append(np.argmax(votes))
    return np.array(predictions)


def random_projection_features(images, dim=64, seed=0):
    """A fixed random-projection encoder of flattened pixels in [0, 1]."""
    projection = np.random.default_rng(seed).normal(size=(images[0].size, dim))
    return (images.reshape(len(images), -1) / 255.0) @ projection
