"""The temperature-scaled contrastive loss (InfoNCE, NT-Xent)."""

from keras_contrastive.api_export import register
from keras_contrastive.losses.contrastive_loss import ContrastiveLoss
from keras_contrastive.losses.contrastive_loss import fill_docstring
from keras_contrastive.losses.contrastive_utils import contrastive_anchor_losses
from keras_contrastive.losses.contrastive_utils import per_sample_losses
from keras_contrastive.utils import validation


@register
@fill_docstring
def info_nce(
    y_true,
    y_pred,
    tau=0.1,
    label_mode=None,
    extra_negatives=None,
    extra_labels=None,
    in_batch_negatives=True,
    block_size=None,
):
    """Per-sample InfoNCE loss; the functional form of `InfoNCE`.

{input_contract}

    Args:
        y_true: Integer labels `(batch,)`, or None when `label_mode` is None.
        y_pred: Embeddings of shape `(batch, views, dim)`.
        tau: The temperature, a positive float. Defaults to `0.1`.
        label_mode: None, `"supervised"` or `"mask"`; see `InfoNCE`.
            Defaults to `None`.
{extra_negatives_args}

    Returns:
        The loss of each sample, shape `(batch,)`, in float32.

    Example:

    >>> import numpy as np
    >>> y_pred = np.random.default_rng(0).normal(size=(4, 2, 8))
    >>> tuple(info_nce(None, y_pred, tau=0.2).shape)
    (4,)

{paper_reference}
    """
    tau = validation.check_positive_scalar("tau", tau)
    return per_sample_losses(
        contrastive_anchor_losses,
        y_true,
        y_pred,
        label_mode,
        extra_negatives,
        extra_labels,
        in_batch_negatives,
        block_size=block_size,
        tau=tau,
    )


@register
@fill_docstring
class InfoNCE(ContrastiveLoss):
    """The temperature-scaled contrastive loss (InfoNCE, SimCLR's NT-Xent).

    Each anchor is pulled toward its positive and pushed from every negative,
    each negative weighted by `exp(s_ik / tau)`: a small `tau` concentrates
    the penalty on the hardest negatives (uniform embeddings that tolerate
    little), a large `tau` spreads it (tolerant, less uniform embeddings).
    That is the uniformity-tolerance dilemma of Wang & Liu (2021).

{input_contract}

    Formula:

    ```python
    # s_ij: cosine similarities; positive i, negatives k != i
    loss_i = -log(exp(s_ii / tau) / (exp(s_ii / tau) + sum_k exp(s_ik / tau)))
    ```

    With several positives per anchor (more views, or `label_mode=
    "supervised"`) it is SupCon's `L_out`: the mean over positives `p` of
    `-log(exp(s_ip / tau) / sum_(k != i) exp(s_ik / tau))`.

    Args:
        tau: The temperature, a positive float. Defaults to `0.1`.
{common_args}

    Examples:

    >>> import numpy as np
    >>> y_pred = np.ones((4, 2, 8))  # collapsed: every similarity is 1
    >>> loss = InfoNCE(tau=0.1)(None, y_pred)
    >>> round(float(loss), 4)  # log(7): one positive and 6 tied negatives
    1.9459

    Usage with `compile()`:

    ```python
    model.compile(optimizer="adam", loss=keras_contrastive.InfoNCE(tau=0.2))
    ```

{paper_reference}
    """

    loss_fn = staticmethod(info_nce)

    def __init__(
        self,
        tau=0.1,
        label_mode=None,
        block_size=None,
        reduction="sum_over_batch_size",
        name="info_nce",
    ):
        super().__init__(
            tau=tau,
            label_mode=label_mode,
            block_size=block_size,
            reduction=reduction,
            name=name,
        )
