"""What the memory bank and the queue share."""

import keras

from keras_contrastive.utils import validation
from keras_contrastive.utils.embeddings import l2_normalize


def check_size(size):
    """Returns `size` as an int after checking it is a positive integer."""
    checked = validation.check_optional_positive_int("size", size)
    if checked is None:
        raise ValueError(f"`size` must be a positive integer. Received: size={size}")
    return checked


def add_unit_embeddings(layer, size, dim, seed):
    """Adds a `(size, dim)` non-trainable weight of random unit vectors.

    Every replica computes the same update from the gathered global batch,
    so the first replica's update is the one applied everywhere.
    """
    embeddings = layer.add_weight(
        shape=(size, dim),
        initializer=keras.initializers.RandomNormal(seed=seed),
        trainable=False,
        dtype="float32",
        aggregation="only_first_replica",
        name="embeddings",
    )
    embeddings.assign(l2_normalize(embeddings))
    return embeddings
