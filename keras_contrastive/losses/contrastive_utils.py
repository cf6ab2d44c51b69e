"""The math shared by every contrastive loss of the package.

A loss is computed in two steps:

1. `contrastive_pair_set` normalises the anchors (every view of every
   sample) and the candidates (every view again, then the extra negatives)
   and records each one's sample, row and label; `pair_masks` turns that
   into boolean masks saying which candidates are any anchors' positives
   and negatives. Candidates that are neither (the anchor itself, or
   same-label samples under `label_mode="mask"`) take no part.
2. A kernel (`contrastive_anchor_losses` or `simple_anchor_losses`) turns a
   similarity matrix and its masks into one loss per anchor.
   `per_sample_losses` runs both steps, densely (one matrix) or in blocks of
   anchors (`blocked_anchor_losses`), and averages the anchors of each
   sample into the values Keras reduces.

The common case, InfoNCE or the hard loss without labels, skips the masks
on TensorFlow: `plain_contrastive_anchor_losses` computes the same values
with the fused, XLA-compiled `contrastive_denominator.log_denominators`,
densely or in blocks. On JAX every loss runs the masked kernels, with the
threshold and the blocked loop of `jax_kernels`.

The kernels work on similarities rather than embeddings, so the paper's
identities about `dL/ds_ij` can be checked on them directly.
"""

import collections
import math

import tensorflow as tf
from keras import ops

from keras_contrastive.losses.contrastive_denominator import block_array
from keras_contrastive.losses.contrastive_denominator import blocked_loop
from keras_contrastive.losses import contrastive_denominator
from keras_contrastive.losses.contrastive_denominator import log_denominators
from keras_contrastive.utils import backend
from keras_contrastive.utils import validation
from keras_contrastive.utils.embeddings import flatten_views
from keras_contrastive.utils.embeddings import l2_normalize

# The paper keeps the 4095 most similar of its 50,000-entry memory bank.
PAPER_ALPHA = 4095 / 50000

# Above this many anchor-candidate pairs (a 16,384-view batch against
# itself) the automatic choice is the blocked path, with blocks of
# `auto_block_size` anchors.
AUTO_BLOCK_ENTRIES = 16384 * 16384
# A block of similarities holds at most this many entries (128 MB in
# float32; InfoNCE's bands, about half as wide as the candidates, half that).
BLOCK_ENTRIES = 2**25


def auto_block_size(num_candidates):
    """Anchors per block: up to 1,024, fewer when the candidates are many,
    and at most a sixteenth of them (InfoNCE's bands, each `block + A / 2`
    wide, spend `block / (A / 2)` of their entries on nothing: an eighth)."""
    return max(64, min(1024, BLOCK_ENTRIES // max(num_candidates, 1), num_candidates // 16))


PairSet = collections.namedtuple(
    "PairSet",
    [
        "anchors",  # (A, dim) normalised: every view of every sample
        "candidates",  # (C, dim) normalised: the anchors, then the extras
        "anchor_labels",  # (A,) int32, or None without label_mode
        "candidate_sample",  # (C,) sample of each candidate, -1 for extras
        "candidate_row",  # (C,) anchor row of each candidate, -1 for extras
        "candidate_labels",  # (C,) int32, or None without label_mode
        "candidate_labelled",  # (C,) bool: whether the label is known
        "views",
        "label_mode",
        "in_batch_negatives",
    ],
)


def per_sample_losses(
    anchor_losses_fn,
    y_true,
    y_pred,
    label_mode,
    extra_negatives,
    extra_labels,
    in_batch_negatives,
    block_size=None,
    **kernel_arguments,
):
    """Runs a kernel over all pairs and averages each sample's views.

    Dense (one similarity matrix) or blocked (`block_size` anchors at a
    time, recomputed in the backward pass), as `block_size` says: None
    chooses blocked above `AUTO_BLOCK_ENTRIES` pairs. Both give the same
    values and gradients.

    Returns:
        The loss of each sample, shape `(batch,)`.
    """
    pair_set = contrastive_pair_set(
        y_true, y_pred, label_mode, extra_negatives, extra_labels, in_batch_negatives
    )
    validation.assert_positive("tau", kernel_arguments.get("tau", 1.0))
    block_size = _resolve_block_size(block_size, pair_set)
    if _is_plain_contrastive(anchor_losses_fn, pair_set):
        anchor_losses = plain_contrastive_anchor_losses(pair_set, block_size, **kernel_arguments)
    elif block_size is None:
        rows = ops.arange(ops.shape(pair_set.anchors)[0])
        positive, negative = pair_masks(pair_set, rows)
        similarities = ops.matmul(pair_set.anchors, ops.transpose(pair_set.candidates))
        anchor_losses = anchor_losses_fn(similarities, positive, negative, **kernel_arguments)
    else:
        anchor_losses = blocked_anchor_losses(
            anchor_losses_fn, pair_set, block_size, **kernel_arguments
        )
    # NaN everywhere when any embedding or extra negative is non-finite
    # (normalised to NaN), 0 otherwise: a selection (the hard losses'
    # threshold) would silently drop a NaN candidate.
    non_finite = ops.sum(pair_set.candidates) * 0.0
    return ops.mean(ops.reshape(anchor_losses, (-1, pair_set.views)), axis=1) + non_finite


def _is_plain_contrastive(anchor_losses_fn, pair_set):
    """The contrastive loss without labels or excluded in-batch samples, on
    TensorFlow (its fused kernel is TensorFlow's; JAX compiles the masked
    kernel with the rest of the step)."""
    return (
        backend.is_tensorflow()
        and anchor_losses_fn is contrastive_anchor_losses
        and pair_set.label_mode is None
        and pair_set.in_batch_negatives
        and pair_set.views >= 2
    )


def plain_contrastive_anchor_losses(
    pair_set, block_size, tau, num_negatives=None, alpha=None
):
    """`contrastive_anchor_losses` for the common case, without any mask.

    The positives are the other views of the anchor's sample, the negatives
    every other candidate, so the denominator needs no `N x N` masks
    (`contrastive_denominator.log_denominators`: fused under XLA, with a
    gradient of one matrix product instead of two), and the positives' mean
    comes from per-sample dot products of the views, `O(batch x views^2 x
    dim)`.
    """
    anchors, views = pair_set.anchors, pair_set.views
    num_anchors = ops.shape(anchors)[0]
    extras = pair_set.candidates[num_anchors:]
    rank = num_negatives
    if alpha is not None:
        num_negatives_each = ops.shape(pair_set.candidates)[0] - views
        rank = ops.cast(ops.ceil(alpha * ops.cast(num_negatives_each, "float32")), "int32")
    log_denominator = log_denominators(anchors, extras, tau, views, rank, block_size)
    per_sample = ops.reshape(anchors, (-1, views, anchors.shape[-1]))
    view_similarities = ops.einsum("bvd,bwd->bvw", per_sample, per_sample)
    own = ops.diagonal(view_similarities, axis1=1, axis2=2)
    positive_sum = ops.sum(view_similarities, axis=2) - own
    positive_mean = ops.reshape(positive_sum, (-1,)) / ((views - 1) * tau)
    return log_denominator - positive_mean


def _resolve_block_size(block_size, pair_set):
    if block_size is not None:
        # More anchors than there are would pad the blocks to `block_size`.
        num_anchors = pair_set.anchors.shape[0]
        return block_size if num_anchors is None else min(block_size, num_anchors)
    num_anchors, num_candidates = pair_set.anchors.shape[0], pair_set.candidates.shape[0]
    if num_anchors is None or num_candidates is None:
        return None
    if num_anchors * num_candidates <= AUTO_BLOCK_ENTRIES:
        return None
    return auto_block_size(num_candidates)


def contrastive_pair_set(
    y_true,
    y_pred,
    label_mode=None,
    extra_negatives=None,
    extra_labels=None,
    in_batch_negatives=True,
):
    """Normalises anchors and candidates and records who is who.

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
        A `PairSet`; `pair_masks` gives any rows' positives and negatives.
    """
    validation.check_label_mode(label_mode)
    batch, views, _ = check_candidates(
        y_pred, extra_negatives, extra_labels, in_batch_negatives
    )
    if views == 1 and label_mode is None:
        raise ValueError(
            "One view has no positive without labels: the loss would be 0. Give "
            "2+ views, or `label_mode='supervised'` with `extra_labels` (a memory "
            f"bank). Received: y_pred.shape={tuple(y_pred.shape)}, label_mode=None"
        )
    anchors = flatten_views(l2_normalize(y_pred))
    num_anchors = ops.shape(anchors)[0]
    rows = ops.arange(num_anchors, dtype="int32")
    candidates, candidate_sample, candidate_row = anchors, rows // views, rows
    anchor_labels = candidate_labels = candidate_labelled = None
    if label_mode is not None:
        if y_true is None:
            raise ValueError(
                f"`label_mode={label_mode!r}` needs integer labels in `y_true`. "
                "Received: y_true=None"
            )
        validation.check_labels(y_true, batch)
        validation.check_integer_labels(y_true)
        if extra_labels is not None:
            validation.check_integer_labels(extra_labels, "extra_labels")
        anchor_labels = ops.repeat(ops.reshape(ops.cast(y_true, "int32"), (-1,)), views)
        candidate_labels = anchor_labels
        candidate_labelled = ops.ones((num_anchors,), "bool")
    if extra_negatives is not None:
        extra = l2_normalize(extra_negatives)
        num_extra = ops.shape(extra)[0]
        candidates = ops.concatenate([anchors, extra], axis=0)
        none = -ops.ones((num_extra,), "int32")
        candidate_sample = ops.concatenate([candidate_sample, none], axis=0)
        candidate_row = ops.concatenate([candidate_row, none], axis=0)
        if label_mode is not None:
            known = extra_labels is not None
            labels = (
                ops.reshape(ops.cast(extra_labels, "int32"), (-1,)) if known else none
            )
            candidate_labels = ops.concatenate([candidate_labels, labels], axis=0)
            candidate_labelled = ops.concatenate(
                [candidate_labelled, ops.full((num_extra,), known, "bool")], axis=0
            )
    return PairSet(
        anchors,
        candidates,
        anchor_labels,
        candidate_sample,
        candidate_row,
        candidate_labels,
        candidate_labelled,
        views,
        label_mode,
        in_batch_negatives,
    )


def pair_masks(pair_set, rows):
    """The (positive, negative) masks of anchor `rows` against every candidate.

    Rows at or past the number of anchors (padding of the blocked path) have
    neither positives nor negatives.
    """
    num_anchors = ops.shape(pair_set.anchors)[0]
    valid = rows < num_anchors
    safe_rows = ops.minimum(rows, num_anchors - 1)
    sample = ops.where(valid, rows // pair_set.views, -2)
    is_self = ops.equal(rows[:, None], pair_set.candidate_row[None, :])
    same_sample = ops.equal(sample[:, None], pair_set.candidate_sample[None, :])
    excluded = is_self
    if pair_set.label_mode is None:
        positive = same_sample
    else:
        labels = ops.take(pair_set.anchor_labels, safe_rows, axis=0)
        same_label = ops.logical_and(
            ops.equal(labels[:, None], pair_set.candidate_labels[None, :]),
            pair_set.candidate_labelled[None, :],
        )
        if pair_set.label_mode == "supervised":
            positive = same_label
        else:
            positive = same_sample
            excluded = ops.logical_or(
                excluded, ops.logical_and(same_label, ops.logical_not(same_sample))
            )
    if not pair_set.in_batch_negatives:
        in_batch = pair_set.candidate_row[None, :] >= 0
        excluded = ops.logical_or(
            excluded, ops.logical_and(in_batch, ops.logical_not(same_sample))
        )
    positive = ops.logical_and(
        ops.logical_and(positive, ops.logical_not(is_self)), valid[:, None]
    )
    negative = ops.logical_not(ops.logical_or(positive, excluded))
    return positive, ops.logical_and(negative, valid[:, None])


def blocked_anchor_losses(anchor_losses_fn, pair_set, block_size, tau, **kernel_arguments):
    """The kernel's per-anchor losses, `block_size` anchors at a time.

    Memory grows as `block_size x candidates` instead of `anchors x
    candidates`: the forward pass keeps only the per-anchor losses, and the
    backward pass recomputes each block's similarities and differentiates
    the same kernel on them (so values and gradients equal the dense path's),
    accumulating the gradients of the anchors, the candidates and `tau`. The
    anchors are padded to whole blocks, so every block has a static shape and
    the loop compiles under XLA. On JAX the same blocks run through
    `jax_kernels.map_blocks`, where `jax.checkpoint` does the recomputation.
    """
    anchors, candidates = pair_set.anchors, pair_set.candidates
    num_anchors = ops.shape(anchors)[0]
    num_blocks = (num_anchors + block_size - 1) // block_size
    padded = ops.pad(anchors, [[0, num_blocks * block_size - num_anchors], [0, 0]])
    tau = ops.convert_to_tensor(tau, "float32")

    def block(index, padded_anchors):
        start = index * block_size
        block_anchors = ops.slice(padded_anchors, [start, 0], [block_size, anchors.shape[-1]])
        positive, negative = pair_masks(pair_set, start + ops.arange(block_size, dtype="int32"))
        return block_anchors, positive, negative

    if not backend.is_tensorflow():

        def block_losses(index):
            block_anchors, positive, negative = block(index, padded)
            similarities = ops.matmul(block_anchors, ops.transpose(candidates))
            return anchor_losses_fn(similarities, positive, negative, tau, **kernel_arguments)

        from keras_contrastive.losses import jax_kernels

        losses = jax_kernels.map_blocks(block_losses, num_blocks)
        return ops.reshape(losses, (-1,))[:num_anchors]

    @tf.custom_gradient
    def run(padded_anchors, candidates, tau):
        def forward(index, losses):
            block_anchors, positive, negative = block(index, padded_anchors)
            similarities = tf.matmul(block_anchors, candidates, transpose_b=True)
            values = anchor_losses_fn(similarities, positive, negative, tau, **kernel_arguments)
            return index + 1, losses.write(index, values)

        (losses,) = blocked_loop(num_blocks, forward, [block_array(num_blocks, [block_size])])

        def backward(upstream):
            upstream = tf.reshape(upstream, (num_blocks, block_size))

            def step(index, anchor_grads, candidate_grad, tau_grad):
                block_anchors, positive, negative = block(index, padded_anchors)
                similarities = tf.matmul(block_anchors, candidates, transpose_b=True)
                with tf.GradientTape() as tape:
                    tape.watch([similarities, tau])
                    values = anchor_losses_fn(
                        similarities, positive, negative, tau, **kernel_arguments
                    )
                    total = tf.reduce_sum(values * upstream[index])
                similarity_grad, block_tau_grad = tape.gradient(
                    total, [similarities, tau],
                    unconnected_gradients=tf.UnconnectedGradients.ZERO,
                )
                return (
                    index + 1,
                    anchor_grads.write(index, tf.matmul(similarity_grad, candidates)),
                    candidate_grad + tf.matmul(similarity_grad, block_anchors, transpose_a=True),
                    tau_grad + block_tau_grad,
                )

            initial = [
                block_array(num_blocks, [block_size, anchors.shape[-1]]),
                tf.zeros_like(candidates),
                tf.zeros_like(tau),
            ]
            anchor_grads, candidate_grad, tau_grad = blocked_loop(num_blocks, step, initial)
            return (
                tf.reshape(anchor_grads.stack(), tf.shape(padded_anchors)),
                candidate_grad,
                tau_grad,
            )

        return tf.reshape(losses.stack(), [-1]), backward

    return run(padded, candidates, tau)[:num_anchors]


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
    if available is None:
        # The batch is known only at run time (tf.function, tf.distribute).
        batch, views = ops.shape(y_pred)[0], ops.shape(y_pred)[1]
        num_extra = 0 if extra_negatives is None else ops.shape(extra_negatives)[0]
        in_batch = views * (batch - 1) if in_batch_negatives else 0
        tf.debugging.assert_less_equal(
            num_negatives, in_batch + num_extra,
            message=f"`num_negatives` must be at most the negatives each anchor has "
            f"(views * (batch - 1) + num_extra, below). Received: num_negatives={num_negatives}",
        )
    elif num_negatives > available:
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
    if num_negatives is not None:
        ranks = ops.minimum(num_negatives, ops.shape(similarities)[1])
    else:
        counts = ops.sum(ops.cast(negative_mask, "int32"), axis=1)
        ranks = ops.cast(ops.ceil(alpha * ops.cast(counts, "float32")), "int32")
    threshold = _kth_largest(negatives, ops.maximum(ranks, 1))
    # An anchor without negatives keeps none.
    threshold = ops.where(ranks > 0, threshold, math.inf)
    return ops.logical_and(negative_mask, similarities >= threshold[:, None])


def _kth_largest(values, k):
    """Each row's `k`-th largest entry, by the running backend's kernel."""
    if backend.is_tensorflow():
        return contrastive_denominator.kth_largest(values, k)
    from keras_contrastive.losses import jax_kernels

    return jax_kernels.kth_largest(values, k)


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
