"""Positive against nearest-negative similarities (the paper's Figure 8)."""

import numpy as np
import tensorflow as tf

from keras_contrastive.evaluation.evaluation_utils import check_features
from keras_contrastive.utils import validation
from keras_contrastive.utils.embeddings import l2_normalize


@tf.function(reduce_retracing=True)
def _block_table(anchors, first_row, positives, k):
    similarities = tf.matmul(anchors, positives, transpose_b=True)
    rows = tf.range(tf.shape(anchors)[0]) + first_row
    own = tf.equal(rows[:, None], tf.range(tf.shape(positives)[0])[None, :])
    positive = tf.reduce_sum(tf.where(own, similarities, 0.0), axis=1)
    negatives = tf.where(own, -np.inf, similarities)
    return positive, tf.math.top_k(negatives, k=k)[0]


def similarity_table(anchors, positives, k=10, block_size=1024):
    """Each anchor's positive similarity and its `k` nearest negatives.

    Anchor `i`'s positive is `positives[i]` (another view of the same image,
    or its memory-bank entry); its negatives are every other row of
    `positives`. The paper's Figure 8 plots these as box plots per
    temperature: `n1..n10` approach the positive as `tau` grows.

    Args:
        anchors: `(N, dim)` embeddings.
        positives: `(N, dim)` embeddings, row `i` the positive of anchor `i`.
        k: How many nearest negatives, at most `N - 1`. Defaults to `10`.
        block_size: Anchors per block. Defaults to `1024`.

    Returns:
        A dict with `"positive"`, `(N,)`, and `"negatives"`, `(N, k)` sorted
        from the nearest; float32 NumPy arrays.

    Reference:
        - [Wang & Liu, 2021](https://arxiv.org/abs/2012.09740)
    """
    anchors = check_features(anchors, "anchors")
    positives = check_features(positives, "positives")
    if positives.shape != anchors.shape:
        raise ValueError(
            "`positives` must have the shape of `anchors`. Received: "
            f"anchors.shape={anchors.shape}, positives.shape={positives.shape}"
        )
    k = validation.check_optional_positive_int("k", k)
    if k is None or k > len(anchors) - 1:
        raise ValueError(
            f"`k` must be a positive integer at most the {len(anchors) - 1} "
            f"negatives of each anchor. Received: k={k}"
        )
    normalized_anchors = l2_normalize(tf.constant(anchors))
    normalized_positives = l2_normalize(tf.constant(positives))
    positive, negatives = [], []
    for start in range(0, len(anchors), block_size):
        block_positive, block_negatives = _block_table(
            normalized_anchors[start : start + block_size],
            tf.constant(start),
            normalized_positives,
            tf.constant(k),
        )
        positive.append(block_positive.numpy())
        negatives.append(block_negatives.numpy())
    return {"positive": np.concatenate(positive), "negatives": np.concatenate(negatives)}
