"""Pairs over the global batch, shared by the streaming metrics.

A metric sees its replica's samples as anchors and the global batch (every
replica's samples, gathered) as candidates. Each replica then sums its own
anchors' terms, Keras sums the metric variables across replicas on read, and
the result equals the single-device value on the same global batch. Pairs
never cross batches: a streamed metric is the ratio of sums over the pairs
inside each batch.
"""

import collections

from keras import ops

from keras_contrastive import distribute
from keras_contrastive.utils import validation
from keras_contrastive.utils.embeddings import flatten_views
from keras_contrastive.utils.embeddings import l2_normalize

MetricPairs = collections.namedtuple(
    "MetricPairs",
    [
        "similarities",  # (anchors, candidates) cosine similarities
        "squared_distances",  # (anchors, candidates) ||u - v||^2
        "same_sample",  # (anchors, candidates) bool, the anchor included
        "is_self",  # (anchors, candidates) bool
        "same_label",  # (anchors, candidates) bool, or None without labels
        "anchor_weights",  # (anchors,) float32 sample weights
    ],
)


def metric_pairs(y_pred, labels=None, sample_weight=None, min_views=1):
    """Builds anchor-candidate pairs of the local anchors against the global batch.

    Args:
        y_pred: Embeddings `(batch, views, dim)`; normalised here in float32.
        labels: Optional integer labels `(batch,)`.
        sample_weight: Optional per-sample weights `(batch,)`; each anchor's
            terms and counts are multiplied by its sample's weight.
        min_views: The fewest views the metric needs.

    Returns:
        A `MetricPairs` tuple.
    """
    batch, views, _ = validation.check_embeddings(y_pred, min_views=min_views)
    embeddings = l2_normalize(y_pred)
    sample_index = ops.arange(ops.shape(embeddings)[0])
    local = [embeddings, sample_index]
    if labels is not None:
        validation.check_labels(labels, batch)
        local.append(ops.reshape(ops.cast(labels, "int32"), (-1,)))
    gathered, offset = distribute.gather_global_batch(*local)

    anchors = flatten_views(embeddings)
    candidates = flatten_views(gathered[0])
    anchor_sample = ops.repeat(sample_index + offset, views)
    num_global = ops.shape(gathered[0])[0]
    candidate_sample = ops.repeat(ops.arange(num_global), views)
    anchor_row = ops.arange(ops.shape(anchors)[0]) + offset * views
    candidate_row = ops.arange(ops.shape(candidates)[0])

    similarities = ops.matmul(anchors, ops.transpose(candidates))
    anchor_norms = ops.sum(ops.square(anchors), axis=1)
    candidate_norms = ops.sum(ops.square(candidates), axis=1)
    squared_distances = ops.maximum(
        anchor_norms[:, None] + candidate_norms[None, :] - 2.0 * similarities,
        0.0,
    )
    same_label = None
    if labels is not None:
        anchor_labels = ops.repeat(local[2], views)
        candidate_labels = ops.repeat(gathered[2], views)
        same_label = ops.equal(anchor_labels[:, None], candidate_labels[None, :])
    if sample_weight is None:
        weights = ops.ones(ops.shape(anchors)[:1], dtype="float32")
    else:
        weights = ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
        weights = ops.repeat(weights, views)
    return MetricPairs(
        similarities=similarities,
        squared_distances=squared_distances,
        same_sample=ops.equal(anchor_sample[:, None], candidate_sample[None, :]),
        is_self=ops.equal(anchor_row[:, None], candidate_row[None, :]),
        same_label=same_label,
        anchor_weights=weights,
    )


def masked_row_sums(values, mask):
    """Per-anchor sum of `values` where `mask`, and the number of such pairs."""
    total = ops.sum(ops.where(mask, values, 0.0), axis=1)
    count = ops.sum(ops.cast(mask, "float32"), axis=1)
    return total, count


def positive_mask(pairs):
    """Other views of the anchor's own sample."""
    return ops.logical_and(pairs.same_sample, ops.logical_not(pairs.is_self))


def negative_mask(pairs):
    """Every view of every other sample."""
    return ops.logical_not(pairs.same_sample)
