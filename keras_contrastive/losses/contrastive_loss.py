"""The base class of every contrastive loss, and their shared docstrings."""

import keras

# Keras' own reduction (private in Keras 3), so `reduction` and
# `sample_weight` behave exactly as in every Keras loss.
from keras.src.losses.loss import reduce_weighted_values

from keras_contrastive.api_export import register
from keras_contrastive.utils import backend
from keras_contrastive.utils import validation

INPUT_CONTRACT = """\
    `y_pred` has shape `(batch, views, dim)` with `views >= 2`: unnormalised
    embeddings, which the loss casts to float32 and L2-normalises. Each view
    of sample `i` is a positive of its other views; every view of every other
    sample is a negative (`2 * batch - 2` per anchor for two views, as in
    SimCLR). Every view is an anchor, and a sample's loss is the mean over
    its views. `y_true` is ignored (it may be None) unless `label_mode` is
    set; it then holds integer labels of shape `(batch,)`, exact up to 2**24
    since Keras passes them as float32. The computation is float32 whatever
    the inputs' dtype or the mixed-precision policy."""

COMMON_ARGS = """\
        label_mode: How labels in `y_true` are used. None ignores them.
            `"supervised"` makes every view of a same-label sample a positive
            (SupCon, Khosla et al. 2020). `"mask"` keeps the other views of
            the same sample as the only positives and removes other samples
            with the anchor's label from the negatives. Defaults to `None`.
        block_size: How the loss is computed. None chooses: one similarity
            matrix, or blocks of up to 1,024 anchors (fewer when the
            candidates are many) above 16,384 x 16,384 pairs (when the batch
            size is static). An integer forces blocks of that many anchors:
            memory grows as `block_size x candidates`, the backward pass
            recomputes each block, and values and gradients equal the
            one-matrix path's (plain InfoNCE computes each in-batch pair
            once, in bands of half the candidates, at about the one-matrix
            path's cost). Without labels, InfoNCE and the hard
            loss run both paths as one fused kernel compiled with XLA (each
            new batch shape compiles once, about 0.3 s here).
            Defaults to `None`.
        reduction: Type of reduction applied to the per-sample losses, as in
            every Keras loss: `"sum_over_batch_size"`, `"sum"`, `"mean"`,
            `"mean_with_sample_weight"` or `None`. Defaults to
            `"sum_over_batch_size"`.
        name: Optional name for the loss instance."""

EXTRA_NEGATIVES_ARGS = """\
        extra_negatives: Optional `(num_extra, dim)` embeddings added to every
            anchor's candidates: a memory bank, a MoCo queue, or the other
            replicas' embeddings. Defaults to `None`.
        extra_labels: Optional integer labels `(num_extra,)` of
            `extra_negatives`. With `label_mode="supervised"` an extra
            candidate with the anchor's label is a positive, which expresses
            the paper's memory-bank setting (labels = sample indices, one
            view, `in_batch_negatives=False`); with `"mask"` it is removed;
            unlabelled extra candidates are negatives. Defaults to `None`.
        in_batch_negatives: Whether the batch's other samples are negatives.
            Defaults to `True`.
        block_size: None (automatic), or anchors per block of the
            memory-bounded path; see the loss classes. Defaults to `None`."""

PAPER_REFERENCE = """\
    Reference:
        - [Wang & Liu, 2021](https://arxiv.org/abs/2012.09740)"""


def fill_docstring(obj):
    """Fills the shared paragraphs into `obj.__doc__` (keras-rs style)."""
    obj.__doc__ = obj.__doc__.format(
        input_contract=INPUT_CONTRACT,
        common_args=COMMON_ARGS,
        extra_negatives_args=EXTRA_NEGATIVES_ARGS,
        paper_reference=PAPER_REFERENCE,
    )
    return obj


@register
class ContrastiveLoss(keras.losses.Loss):
    """Base class of the contrastive losses.

    A subclass names its functional form in `loss_fn`, validates and stores
    that function's arguments in `__init__` and lists them in `get_config`.
    `per_sample_loss` calls `loss_fn` with them and with optional extra
    negatives (a memory bank, a queue or the other replicas' embeddings);
    `call(y_true, y_pred)` is that hook without extras, so `reduction` and
    `sample_weight` work as in any Keras loss, and `ContrastiveModel` feeds
    extras through the same hook.

    Args:
        tau: The temperature, a positive float.
        label_mode: See the subclasses. Defaults to `None`.
        block_size: See the subclasses. Defaults to `None`.
        reduction: Keras reduction. Defaults to `"sum_over_batch_size"`.
        name: Optional name for the loss instance.
    """

    loss_fn = None

    def __init__(
        self,
        tau,
        label_mode=None,
        block_size=None,
        reduction="sum_over_batch_size",
        name=None,
    ):
        backend.check_loss_backend()
        # The loss always computes in float32 (see INPUT_CONTRACT).
        super().__init__(name=name, reduction=reduction, dtype="float32")
        self.tau = validation.check_positive_float("tau", tau)
        self.label_mode = validation.check_label_mode(label_mode)
        self.block_size = validation.check_optional_positive_int(
            "block_size", block_size
        )

    def __call__(
        self,
        y_true,
        y_pred,
        sample_weight=None,
        extra_negatives=None,
        extra_labels=None,
        in_batch_negatives=True,
        **overrides,
    ):
        """Computes the reduced loss, as any Keras loss, with optional extras.

        Args:
            y_true: Labels `(batch,)`, or None when `label_mode` is None.
            y_pred: Embeddings of shape `(batch, views, dim)`.
            sample_weight: Optional per-sample weights `(batch,)`.
            extra_negatives: Optional `(num_extra, dim)` extra candidates.
            extra_labels: Optional `(num_extra,)` labels of the extras.
            in_batch_negatives: Whether other samples are negatives.
            **overrides: Stored arguments replaced for this call: a learnt
                or scheduled `tau` (a tensor), or `label_mode`.
        """
        validation.check_sample_weight(sample_weight, y_pred.shape[0] if hasattr(y_pred, "shape") else None)
        with keras.name_scope(self.name):
            per_sample = self.per_sample_loss(
                y_true,
                y_pred,
                extra_negatives=extra_negatives,
                extra_labels=extra_labels,
                in_batch_negatives=in_batch_negatives,
                **overrides,
            )
            return self.reduce(per_sample, sample_weight)

    def reduce(self, per_sample, sample_weight=None):
        """Applies `reduction` and `sample_weight` exactly as Keras losses do.

        Mean reductions also divide by the number of replicas under
        `tf.distribute`, so per-replica gradients sum to the global mean's.
        """
        return reduce_weighted_values(
            per_sample,
            sample_weight=sample_weight,
            reduction=self.reduction,
            dtype="float32",
        )

    def call(self, y_true, y_pred):
        return self.per_sample_loss(y_true, y_pred)

    def per_sample_loss(
        self,
        y_true,
        y_pred,
        extra_negatives=None,
        extra_labels=None,
        in_batch_negatives=True,
        **overrides,
    ):
        """Returns the loss of each sample, shape `(batch,)`, unreduced.

        Calls the subclass's functional form (`loss_fn`) with the stored
        arguments, so a class and its functional twin cannot disagree.

        Args:
            y_true: Labels, or None; see the class docstring.
            y_pred: Embeddings of shape `(batch, views, dim)`.
            extra_negatives: Optional `(num_extra, dim)` extra candidates.
            extra_labels: Optional `(num_extra,)` labels of the extras.
            in_batch_negatives: Whether other samples are negatives.
            **overrides: Stored arguments replaced for this call.
        """
        arguments = self.get_config()
        del arguments["name"], arguments["reduction"]
        arguments.update(overrides)
        if arguments["label_mode"] is None:
            y_true = None
        elif y_true is None:
            raise ValueError(
                f"`label_mode={arguments['label_mode']!r}` needs integer "
                "labels in `y_true`. Received: y_true=None"
            )
        return type(self).loss_fn(
            y_true,
            y_pred,
            extra_negatives=extra_negatives,
            extra_labels=extra_labels,
            in_batch_negatives=in_batch_negatives,
            **arguments,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tau": self.tau,
                "label_mode": self.label_mode,
                "block_size": self.block_size,
            }
        )
        return config
