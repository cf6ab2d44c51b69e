"""Argument checks of the whole-dataset evaluation functions."""

import numpy as np


def check_features(features, name="features"):
    """Returns `features` as a float32 `(N, dim)` array, or raises."""
    features = np.asarray(features, dtype="float32")
    if features.ndim != 2 or len(features) == 0:
        raise ValueError(
            f"`{name}` must have shape (N, dim) with N >= 1. "
            f"Received: {name}.shape={features.shape}"
        )
    return features


def check_labels(labels, count, name="labels"):
    """Returns `labels` as int64 `(count,)`, or raises."""
    labels = np.asarray(labels)
    if labels.shape != (count,):
        raise ValueError(
            f"`{name}` must hold one integer label per embedding, shape "
            f"({count},). Received: {name}.shape={labels.shape}"
        )
    return labels.astype("int64")
