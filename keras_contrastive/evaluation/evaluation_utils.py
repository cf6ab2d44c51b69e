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


# The representations kNN, uniformity and tolerance can be measured on: the
# L2-normalised projection the loss sees (the paper's `f(x)`), or the
# encoder's features. The linear probe always reads the features.
SPACES = ("projection", "features")


def check_space(space):
    if space not in SPACES:
        raise ValueError(f"`space` must be one of {SPACES}. Received: space={space!r}")
    return space


def log_key(name, space, prefix="val_"):
    """The log key of a measure, naming its space: `val_projection_uniformity`."""
    if name == "linear_accuracy":
        space = "features"
    return f"{prefix}{space}_{name}"


def encoder_and_projector(model, projector, space):
    """The encoder, and the head to apply to its features (None: none).

    `model` is a `ContrastiveModel` (anything with `encoder` and
    `projector`) or a bare encoder; `projector` overrides the model's head.
    """
    check_space(space)
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        encoder = model
    elif projector is None:
        projector = model.projector
        # A model without a head trains on its features: they are its
        # projection.
        if projector is None:
            return encoder, None
    if space == "features":
        return encoder, None
    if projector is None:
        raise ValueError(
            "`space='projection'` needs the projection head: pass the "
            "ContrastiveModel, or `projector=`, or measure the encoder's "
            "features with `space='features'`. Received: a bare encoder "
            "and projector=None"
        )
    return encoder, projector
