"""Uniformity and tolerance over a whole set of embeddings, exactly, in blocks."""

import numpy as np
import tensorflow as tf

from keras_contrastive.evaluation.evaluation_utils import check_features
from keras_contrastive.evaluation.evaluation_utils import check_labels
from keras_contrastive.utils import validation
from keras_contrastive.utils.embeddings import l2_normalize


@tf.function(reduce_retracing=True)
def _block_sums(block, block_labels, first_row, features, labels, t):
    """Sums over one block of rows against every embedding, self-pairs excluded."""
    similarities = tf.matmul(block, features, transpose_b=True)
    rows = tf.range(tf.shape(block)[0]) + first_row
    columns = tf.range(tf.shape(features)[0])
    distinct = tf.not_equal(rows[:, None], columns[None, :])
    # Unit vectors: ||x - y||^2 = 2 - 2 x.y.
    kernel = tf.exp(-t * tf.maximum(2.0 - 2.0 * similarities, 0.0))
    same_label = tf.logical_and(
        distinct, tf.equal(block_labels[:, None], labels[None, :])
    )
    return (
        tf.reduce_sum(tf.where(distinct, kernel, 0.0)),
        tf.reduce_sum(tf.where(same_label, similarities, 0.0)),
        tf.reduce_sum(tf.cast(same_label, "float32")),
    )


def uniformity_and_tolerance(features, labels=None, t=2.0, block_size=1024):
    """Uniformity and tolerance of a whole set, over all distinct pairs.

    Exact: every pair `i != j` enters, computed `block_size` rows at a time,
    so memory grows as `block_size x N` rather than `N x N`. Block sums are
    accumulated in float64.

    Formula:

    ```python
    U = -log(mean_(i != j) exp(-t * ||f_i - f_j||^2))
    T = mean_(i != j, l_i = l_j) f_i . f_j
    ```

    Args:
        features: `(N, dim)` embeddings; L2-normalised here.
        labels: Optional `(N,)` integer labels; without them tolerance is
            None.
        t: The positive scale of uniformity. Defaults to `2.0`.
        block_size: Rows per block. Defaults to `1024`.

    Returns:
        A dict `{"uniformity": float, "tolerance": float or None}`.

    Reference:
        - [Wang & Liu, 2021](https://arxiv.org/abs/2012.09740)
    """
    t = validation.check_positive_float("t", t)
    block_size = validation.check_optional_positive_int("block_size", block_size)
    features = check_features(features)
    count = len(features)
    if count < 2:
        raise ValueError(
            f"`features` needs at least 2 embeddings. Received: features.shape={features.shape}"
        )
    if labels is not None:
        labels = check_labels(labels, count)
    normalized = l2_normalize(tf.constant(features))
    label_tensor = tf.constant(
        np.zeros(count, "int64") if labels is None else labels, tf.int64
    )
    kernel_sum = similarity_sum = same_label_count = 0.0
    for start in range(0, count, block_size):
        stop = min(start + block_size, count)
        sums = _block_sums(
            normalized[start:stop],
            label_tensor[start:stop],
            tf.constant(start),
            normalized,
            label_tensor,
            tf.constant(t, tf.float32),
        )
        kernel_sum += float(sums[0])
        similarity_sum += float(sums[1])
        same_label_count += float(sums[2])
    tolerance = None
    if labels is not None and same_label_count > 0:
        tolerance = similarity_sum / same_label_count
    return {
        "uniformity": -float(np.log(kernel_sum / (count * (count - 1)))),
        "tolerance": tolerance,
    }
