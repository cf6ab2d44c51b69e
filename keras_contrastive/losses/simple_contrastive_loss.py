"""The simple contrastive loss, InfoNCE's large-temperature limit."""

from keras_contrastive.api_export import register
from keras_contrastive.losses.contrastive_loss import ContrastiveLoss
from keras_contrastive.losses.contrastive_loss import fill_docstring
from keras_contrastive.losses.contrastive_utils import per_sample_losses
from keras_contrastive.losses.contrastive_utils import simple_anchor_losses
from keras_contrastive.utils import validation


@register
@fill_docstring
def simple_contrastive_loss(
    y_true,
    y_pred,
    lam=None,
    tau=1.0,
    label_mode=None,
    extra_negatives=None,
    extra_labels=None,
    in_batch_negatives=True,
    block_size=None,
):
    """Per-sample simple loss; the functional form of `SimpleContrastiveLoss`.

{input_contract}

    Args:
        y_true: Integer labels `(batch,)`, or None when `label_mode` is None.
        y_pred: Embeddings of shape `(batch, views, dim)`.
        lam: Weight of the summed negative similarities. None uses one over
            the anchor's number of negatives. Defaults to `None`.
        tau: A positive scale dividing the loss. Defaults to `1.0`.
        label_mode: None, `"supervised"` or `"mask"`; see `InfoNCE`.
            Defaults to `None`.
{extra_negatives_args}

    Returns:
        The loss of each sample, shape `(batch,)`, in float32.

{paper_reference}
    """
    tau = validation.check_positive_scalar("tau", tau)
    lam = validation.check_optional_nonnegative_float("lam", lam)
    return per_sample_losses(
        simple_anchor_losses,
        y_true,
        y_pred,
        label_mode,
        extra_negatives,
        extra_labels,
        in_batch_negatives,
        block_size=block_size,
        tau=tau,
        lam=lam,
    )


@register
@fill_docstring
class SimpleContrastiveLoss(ContrastiveLoss):
    """The simple contrastive loss: positive similarity against the negatives' sum.

    This is InfoNCE as `tau -> inf`: every negative gets the same penalty,
    whatever its similarity, so the loss is not hardness-aware. Wang & Liu
    (2021) use it to show that hardness-awareness is what makes InfoNCE
    learn uniform embeddings (Table 1: CIFAR-10 U = 1.68, T = 0.61).

{input_contract}

    Formula:

    ```python
    loss_i = (-s_ii + lam * sum_(k != i) s_ik) / tau
    ```

    With several positives per anchor, `s_ii` is their mean.

    Args:
        lam: Weight of the summed negative similarities. None uses one over
            the anchor's number of negatives (their mean), the `tau -> inf`
            limit of InfoNCE. Defaults to `None`.
        tau: A positive scale dividing the loss; it changes only the
            gradient's size. Defaults to `1.0`.
{common_args}

    Examples:

    >>> import numpy as np
    >>> y_pred = np.ones((4, 2, 8))  # collapsed: every similarity is 1
    >>> float(SimpleContrastiveLoss()(None, y_pred))  # -1 + mean of ones
    0.0

    Usage with `compile()`:

    ```python
    model.compile(optimizer="sgd", loss=keras_contrastive.SimpleContrastiveLoss())
    ```

{paper_reference}
    """

    loss_fn = staticmethod(simple_contrastive_loss)

    def __init__(
        self,
        lam=None,
        tau=1.0,
        label_mode=None,
        block_size=None,
        reduction="sum_over_batch_size",
        name="simple_contrastive_loss",
    ):
        super().__init__(
            tau=tau,
            label_mode=label_mode,
            block_size=block_size,
            reduction=reduction,
            name=name,
        )
        self.lam = validation.check_optional_nonnegative_float("lam", lam)

    def get_config(self):
        config = super().get_config()
        config.update({"lam": self.lam})
        return config
