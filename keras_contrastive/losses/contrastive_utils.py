"""The math shared by every contrastive loss of the package.

A loss is computed in two steps:

1. `contrastive_pairs` turns `(y_true, y_pred)` and optional extra negatives
   into a similarity matrix between anchors (every view of every sample) and
   candidates (every view again, then the extra negatives), with boolean masks
   saying which candidates are each anchor's positives and negatives.
   Candidates that are neither (the anchor itself, or same-label samples under
   `label_mode="mask"`) take no part.
2. A kernel (`contrastive_anchor_losses` or `simple_anchor_losses`) turns the
   matrix into one loss per anchor; `per_sample_losses` runs both steps and
   averages the anchors of each sample into the values Keras reduces.

The kernels work on similarities rather than embeddings, so the paper's
identities about `dL/ds_ij` can be checked on them directly.
"""

import collections
import math

import tensorflow as tf
from keras import ops

from keras_contrastive.utils import validation
from keras_contrastive.utils.embeddings import flatten_views
from keras_contrastive.utils.embeddings import l2_normalize

# The paper keeps the 4095 most similar of its 50,000-entry memory bank.
PAPER_ALPHA = 4095 / 50000

Pairs = collections.namedtuple(
    "Pairs", ["similarities", "positive_mask", "negative_mask", "views"]
)


def per_sample_losses(
    anchor_losses_fn,
    y_true,
    y_pred,
    label_mode,
    extra_negatives,
    extra_labels,
    in_batch_negatives,
    **kernel_arguments,
):
    """Runs a kernel on `contrastive_pairs` and averages each sample's views.

    Returns:
        The loss of each sample, shape `(batch,)`.
    """
    pairs = contrastive_pairs(
        y_true, y_pred, label_mode, extra_negatives, extra_labels, in_batch_negatives
    )
    anchor_losses = anchor_losses_fn(
        pairs.similarities,
        pairs.positive_mask,
        pairs.negative_mask,
        **kernel_arguments,
    )
    return ops.mean(ops.reshape(anchor_losses, (-1, pairs.views)), axis=1)


def contrastive_pairs(
    y_true,
    y_pred,
    label_mode=None,
    extra_negatives=None,
    extra_labels=None,
    in_batch_negatives=True,
):
    """Builds the anchor-candidate similarities and their pair masks.

    Args:
        y_true: Integer labels of shape `(batch,)`, read only when
            `label_mode` is set; otherwise ignored (may be None).
        y_pred: Embeddings of shape `(batch, views, dim)`, unnormalised.
        label_mode: None (positives are the other views of the same sample),
            `"supervised"` (positives are all views of samples with the same
            label, as in SupCon) or `"mask"` (positives as for None, and
            other samples with the anchor's label are removed from the
            negatives).
        extra_negatives: Optional `(num_extra, dim)` embeddings appended to
            the candidates: a memory bank, a queue, or other replicas'
            embeddings.
        extra_labels: Optional integer labels `(num_extra,)` of the extra
            candidates. With `label_mode="supervised"` an extra candidate
            whose label equals the anchor's is a positive (the memory-bank
            setting: labels are sample indices); with `"mask"` it is removed.
            Without labels every extra candidate is a negative.
        in_batch_negatives: Whether other samples of the batch are negatives.
            False keeps only the extra negatives, as in the paper's
            memory-bank setting.

    Returns:
        A `Pairs` tuple: `similarities` of shape `(batch * views, candidates)`
        in float32, boolean `positive_mask` and `negative_mask` of the same
        shape, and `views`.
    """
    validation.check_label_mode(label_mode)
    batch, views, _ = check_candidates(
        y_pred, extra_negatives, extra_labels, in_batch_negatives
    )
    labels = None
    if label_mode is not None:
        if y_true is None:
            raise ValueError(
                f"`label_mode={label_mode!r}` needs integer labels in `y_true`. "
                "Received: y_true=None"
            )
        validation.check_labels(y_true, batch)
        labels = ops.repeat(ops.reshape(ops.cast(y_true, "int32"), (-1,)), views)

    anchors = flatten_views(l2_normalize(y_pred))
    num_anchors = ops.shape(anchors)[0]
    row = ops.arange(num_anchors)
    is_self = ops.equal(row[:, None], row[None, :])
    same_sample = ops.equal(row[:, None] // views, row[None, :] // views)
    positive, excluded = _in_batch_masks(
        label_mode, labels, is_self, same_sample
    )
    if not in_batch_negatives:
        excluded = ops.logical_or(excluded, ops.logical_not(same_sample))
    negative = ops.logical_not(ops.logical_or(positive, excluded))
    similarities = ops.matmul(anchors, ops.transpose(anchors))

    if extra_negatives is not None:
        extra = l2_normalize(extra_negatives)
        extra_positive, extra_negative = _extra_masks(
            label_mode, labels, extra_labels, num_anchors, ops.shape(extra)[0]
        )
        similarities = ops.concatenate(
            [similarities, ops.matmul(anchors, ops.transpose(extra))], axis=1
        )
        positive = ops.concatenate([positive, extra_positive], axis=1)
        negative = ops.concatenate([negative, extra_negative], axis=1)
    return Pairs(similarities, positive, negative, views)


def check_candidates(y_pred, extra_negatives, extra_labels, in_batch_negatives):
    """Checks that every anchor has candidates; returns `(batch, views, dim)`."""
    has_extra = extra_negatives is not None
    batch, views, dim = validation.check_embeddings(
        y_pred, min_views=1 if has_extra else 2
    )
    if not has_extra and not in_batch_negatives:
        raise ValueError(
            "`in_batch_negatives=False` leaves no negatives unless "
            "`extra_negatives` is given. Received: extra_negatives=None"
        )
    if not has_extra and batch is not None and batch < 2:
        raise ValueError(
            "A batch needs at least 2 samples for in-batch negatives when no "
            "`extra_negatives` are given. "
            f"Received: y_pred.shape={tuple(y_pred.shape)}"
        )
    if has_extra:
        validation.check_extra_negatives(extra_negatives, extra_labels, dim)
    return batch, views, dim


def _in_batch_masks(label_mode, labels, is_self, same_sample):
    """Returns the (positive, excluded) masks among the batch's own views."""
    not_self = ops.logical_not(is_self)
    if label_mode == "supervised":
        same_label = ops.equal(labels[:, None], labels[None, :])
        return ops.logical_and(same_label, not_self), is_self
    positive = ops.logical_and(same_sample, not_self)
    if label_mode == "mask":
        same_label = ops.equal(labels[:, None], labels[None, :])
        other_sample_same_label = ops.logical_and(
            same_label, ops.logical_not(same_sample)
        )
        return positive, ops.logical_or(is_self, other_sample_same_label)
    return positive, is_self


def _extra_masks(label_mode, labels, extra_labels, num_anchors, num_extra):
    """Returns the (positive, negative) masks of the extra candidates."""
    if label_mode is None or extra_labels is None:
        everything = ops.ones((num_anchors, num_extra), dtype="bool")
        return ops.logical_not(everything), everything
    extra_labels = ops.reshape(ops.cast(extra_labels, "int32"), (-1,))
    same_label = ops.equal(labels[:, None], extra_labels[None, :])
    if label_mode == "supervised":
        return same_label, ops.logical_not(same_label)
    return ops.logical_not(ops.ones_like(same_label)), ops.logical_not(
        same_label
    )


def max_negatives_per_anchor(y_pred, extra_negatives, in_batch_negatives):
    """The static number of negatives an anchor has without labels, or None.

    With labels some anchors have fewer (their same-label candidates are
    positives or removed); this count is the upper bound for all of them.
    """
    batch, views, _ = y_pred.shape
    num_extra = 0 if extra_negatives is None else extra_negatives.shape[0]
    if num_extra is None or (in_batch_negatives and batch is None):
        return None
    in_batch = views * (batch - 1) if in_batch_negatives else 0
    return in_batch + num_extra


def check_num_negatives_available(
    num_negatives, y_pred, extra_negatives, extra_labels, in_batch_negatives
):
    """Raises if `num_negatives` exceeds the negatives an anchor can have."""
    check_candidates(y_pred, extra_negatives, extra_labels, in_batch_negatives)
    if num_negatives is None:
        return
    available = max_negatives_per_anchor(y_pred, extra_negatives, in_batch_negatives)
    if available is not None and num_negatives > available:
        raise ValueError(
            f"`num_negatives` must be at most the {available} negatives each "
            f"anchor has (views * (batch - 1) + num_extra). "
            f"Received: num_negatives={num_negatives}, "
            f"y_pred.shape={tuple(y_pred.shape)}"
        )


def check_negative_selection(num_negatives, alpha, required):
    """Validates the hard-negative selection arguments; returns them.

    Exactly one of `num_negatives` and `alpha` may be given. When `required`
    is a float it is the `alpha` used when neither is given; when it is True,
    neither raises.
    """
    num_negatives = validation.check_optional_positive_int(
        "num_negatives", num_negatives
    )
    alpha = validation.check_optional_fraction("alpha", alpha)
    if num_negatives is not None and alpha is not None:
        raise ValueError(
            "Give only one of `num_negatives` and `alpha`. Received: "
            f"num_negatives={num_negatives}, alpha={alpha}"
        )
    if num_negatives is None and alpha is None:
        if required is True:
            raise ValueError(
                "One of `num_negatives` and `alpha` is required. Received: "
                "num_negatives=None, alpha=None"
            )
        alpha = required
    return num_negatives, alpha


def kept_negative_mask(similarities, negative_mask, num_negatives=None, alpha=None):
    """Restricts the negatives to each anchor's informative interval.

    A negative is kept when its similarity is at or above the anchor's
    threshold: the `num_negatives`-th largest negative similarity, or the
    `ceil(alpha * n_i)`-th largest of the anchor's `n_i` negatives. As in the
    paper's definition (`s_ik >= s_alpha^(i)`), negatives tied with the
    threshold are all kept. With neither argument every negative is kept.

    Returns:
        A boolean mask of the shape of `similarities`.
    """
    if num_negatives is None and alpha is None:
        return negative_mask
    negatives = ops.where(negative_mask, similarities, -math.inf)
    num_candidates = similarities.shape[1] or ops.shape(similarities)[1]
    if num_negatives is not None:
        k = (
            min(num_negatives, num_candidates)
            if isinstance(num_candidates, int)
            else ops.minimum(num_negatives, num_candidates)
        )
        threshold = ops.top_k(negatives, k, sorted=True)[0][:, -1:]
    else:
        counts = ops.sum(ops.cast(negative_mask, "int32"), axis=1)
        ranks = ops.cast(ops.ceil(alpha * ops.cast(counts, "float32")), "int32")
        max_rank = _static_or_dynamic_max_rank(alpha, num_candidates)
        top = ops.top_k(negatives, max_rank, sorted=True)[0]
        index = ops.clip(ranks - 1, 0, max_rank - 1)
        threshold = ops.take_along_axis(top, index[:, None], axis=1)
        # An anchor without negatives keeps none (its threshold is -inf).
        threshold = ops.where(ranks[:, None] > 0, threshold, math.inf)
    return ops.logical_and(negative_mask, similarities >= threshold)


def _static_or_dynamic_max_rank(alpha, num_candidates):
    """`ceil(alpha * num_candidates)`, a Python int when the size is static."""
    if isinstance(num_candidates, int):
        return max(1, math.ceil(alpha * num_candidates))
    rank = tf.cast(tf.math.ceil(alpha * tf.cast(num_candidates, "float32")), "int32")
    return tf.maximum(rank, 1)


def positive_logit_mean(logits, positive_mask):
    """Per-anchor mean of the positive logits, and the positive count."""
    count = ops.sum(ops.cast(positive_mask, "float32"), axis=1)
    total = ops.sum(ops.where(positive_mask, logits, 0.0), axis=1)
    return total / ops.maximum(count, 1.0), count


def contrastive_anchor_losses(
    similarities, positive_mask, negative_mask, tau, num_negatives=None, alpha=None
):
    """Per-anchor contrastive loss: `-mean_p log softmax(s/tau)_p`.

    The softmax runs over the anchor's positives and its kept negatives
    (`kept_negative_mask`). For one positive per anchor this is the paper's
    `-log(exp(s_ii/tau) / (exp(s_ii/tau) + sum_k exp(s_ik/tau)))`; for several
    it is SupCon's `L_out`. Anchors without positives contribute 0.

    Masked candidates become `-inf` through `where` before a logsumexp, so no
    large constant is ever subtracted (which overflows float16) and no
    `0 * inf` can appear.
    """
    logits = similarities / tau
    kept = kept_negative_mask(similarities, negative_mask, num_negatives, alpha)
    in_denominator = ops.logical_or(positive_mask, kept)
    log_denominator = ops.logsumexp(
        ops.where(in_denominator, logits, -math.inf), axis=1
    )
    positive_mean, positive_count = positive_logit_mean(logits, positive_mask)
    losses = log_denominator - positive_mean
    return ops.where(positive_count > 0, losses, 0.0)


def simple_anchor_losses(
    similarities,
    positive_mask,
    negative_mask,
    tau,
    lam=None,
    num_negatives=None,
    alpha=None,
):
    """Per-anchor simple loss: `(-mean_p s_p + lam * sum_k s_k) / tau`.

    The sum runs over the kept negatives (`kept_negative_mask`); `lam`
    defaults to one over their number, per anchor. Anchors without positives
    contribute 0.
    """
    logits = similarities / tau
    kept = kept_negative_mask(similarities, negative_mask, num_negatives, alpha)
    kept_count = ops.sum(ops.cast(kept, "float32"), axis=1)
    negative_sum = ops.sum(ops.where(kept, logits, 0.0), axis=1)
    weight = 1.0 / ops.maximum(kept_count, 1.0) if lam is None else lam
    positive_mean, positive_count = positive_logit_mean(logits, positive_mask)
    losses = weight * negative_sum - positive_mean
    return ops.where(positive_count > 0, losses, 0.0)
