"""The weighted kNN monitor of InstDisc, used by the paper's author code."""

import numpy as np
import tensorflow as tf

from keras_contrastive.evaluation.evaluation_utils import check_features
from keras_contrastive.evaluation.evaluation_utils import check_labels
from keras_contrastive.utils import validation
from keras_contrastive.utils.embeddings import l2_normalize


@tf.function(reduce_retracing=True)
def _block_votes(queries, bank, bank_labels, k, sigma, num_classes):
    similarities = tf.matmul(queries, bank, transpose_b=True)
    top_similarities, top_index = tf.math.top_k(similarities, k=k)
    weights = tf.exp(top_similarities / sigma)
    neighbour_labels = tf.gather(bank_labels, top_index)
    votes = tf.reduce_sum(
        tf.one_hot(neighbour_labels, num_classes) * weights[:, :, None], axis=1
    )
    return tf.argmax(votes, axis=1)


def knn_predict(
    bank_features,
    bank_labels,
    query_features,
    k=200,
    sigma=0.07,
    num_classes=None,
    block_size=1024,
):
    """Predicts each query's class from its `k` most similar bank entries.

    Each neighbour votes for its label with weight `exp(s / sigma)`, `s` the
    cosine similarity (Wu et al. 2018, the monitor of the paper's author
    code). Queries run `block_size` at a time.

    Args:
        bank_features: `(M, dim)` labelled embeddings (e.g. the train split).
        bank_labels: `(M,)` integer labels.
        query_features: `(N, dim)` embeddings to classify.
        k: Neighbours per query, at most `M`. Defaults to `200`.
        sigma: Positive temperature of the vote weights. Defaults to `0.07`.
        num_classes: Number of classes; None takes `max(bank_labels) + 1`.
            Defaults to `None`.
        block_size: Queries per block. Defaults to `1024`.

    Returns:
        `(N,)` int64 predicted labels.

    Reference:
        - [Wu et al., 2018](https://arxiv.org/abs/1805.01978)
    """
    bank_features = check_features(bank_features, "bank_features")
    bank_labels = check_labels(bank_labels, len(bank_features), "bank_labels")
    query_features = check_features(query_features, "query_features")
    if query_features.shape[1] != bank_features.shape[1]:
        raise ValueError(
            "`query_features` and `bank_features` must have the same dim. "
            f"Received: query_features.shape={query_features.shape}, "
            f"bank_features.shape={bank_features.shape}"
        )
    k = validation.check_optional_positive_int("k", k)
    if k is None or k > len(bank_features):
        raise ValueError(
            f"`k` must be a positive integer at most the {len(bank_features)} "
            f"bank entries. Received: k={k}"
        )
    sigma = validation.check_positive_float("sigma", sigma)
    block_size = validation.check_optional_positive_int("block_size", block_size)
    num_classes = num_classes or int(bank_labels.max()) + 1
    bank = l2_normalize(tf.constant(bank_features))
    queries = l2_normalize(tf.constant(query_features))
    labels = tf.constant(bank_labels)
    predictions = [
        _block_votes(
            queries[start : start + block_size],
            bank,
            labels,
            tf.constant(k),
            tf.constant(sigma, tf.float32),
            tf.constant(num_classes),
        ).numpy()
        for start in range(0, len(query_features), block_size)
    ]
    return np.concatenate(predictions)


def knn_accuracy(
    bank_features,
    bank_labels,
    query_features,
    query_labels,
    k=200,
    sigma=0.07,
    num_classes=None,
    block_size=1024,
):
    """Top-1 accuracy of `knn_predict` on labelled queries.

    Args:
        bank_features: `(M, dim)` labelled embeddings (e.g. the train split).
        bank_labels: `(M,)` integer labels.
        query_features: `(N, dim)` embeddings to classify.
        query_labels: `(N,)` their integer labels.
        k: Neighbours per query. Defaults to `200`.
        sigma: Temperature of the vote weights. Defaults to `0.07`.
        num_classes: Number of classes; None infers it. Defaults to `None`.
        block_size: Queries per block. Defaults to `1024`.

    Returns:
        The accuracy, a float in [0, 1].
    """
    query_labels = check_labels(query_labels, len(query_features), "query_labels")
    predictions = knn_predict(
        bank_features, bank_labels, query_features, k, sigma, num_classes, block_size
    )
    return float(np.mean(predictions == query_labels))
