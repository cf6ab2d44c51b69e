"""The paper's hard contrastive loss (Wang & Liu 2021, Eq. 9)."""

from keras_contrastive.api_export import register
from keras_contrastive.losses.contrastive_loss import ContrastiveLoss
from keras_contrastive.losses.contrastive_loss import fill_docstring
from keras_contrastive.losses.contrastive_utils import PAPER_ALPHA
from keras_contrastive.losses.contrastive_utils import check_negative_selection
from keras_contrastive.losses.contrastive_utils import check_num_negatives_available
from keras_contrastive.losses.contrastive_utils import contrastive_anchor_losses
from keras_contrastive.losses.contrastive_utils import per_sample_losses
from keras_contrastive.utils import validation


@register
@fill_docstring
def hard_contrastive_loss(
    y_true,
    y_pred,
    tau=0.2,
    num_negatives=None,
    alpha=None,
    label_mode=None,
    extra_negatives=None,
    extra_labels=None,
    in_batch_negatives=True,
    block_size=None,
):
    """Per-sample hard contrastive loss; the functional form of `HardContrastiveLoss`.

{input_contract}

    Args:
        y_true: Integer labels `(batch,)`, or None when `label_mode` is None.
        y_pred: Embeddings of shape `(batch, views, dim)`.
        tau: The temperature, a positive float. Defaults to `0.2`.
        num_negatives: Keep each anchor's `num_negatives` most similar
            negatives. Defaults to `None`.
        alpha: Keep each anchor's upper `alpha` quantile of negatives. When
            neither is given, `alpha = 4095 / 50000`, the paper's setting.
            Defaults to `None`.
        label_mode: None, `"supervised"` or `"mask"`; see `InfoNCE`.
            Defaults to `None`.
{extra_negatives_args}

    Returns:
        The loss of each sample, shape `(batch,)`, in float32.

{paper_reference}
    """
    tau = validation.check_positive_scalar("tau", tau)
    num_negatives, alpha = check_negative_selection(
        num_negatives, alpha, required=PAPER_ALPHA
    )
    check_num_negatives_available(
        num_negatives, y_pred, extra_negatives, extra_labels, in_batch_negatives
    )
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
        num_negatives=num_negatives,
        alpha=alpha,
    )


@register
@fill_docstring
class HardContrastiveLoss(ContrastiveLoss):
    """The hard contrastive loss: InfoNCE over the informative negatives only.

    Wang & Liu (2021) show that InfoNCE's hardness-awareness, set by `tau`,
    trades uniformity against tolerance. Keeping only the negatives in each
    anchor's "informative interval" (its most similar ones) enforces the
    hardness explicitly, so a large `tau` can be used for tolerance without
    losing uniformity: in the paper it keeps U near 3.9 at every `tau`.

    A negative is kept when its similarity is at or above the anchor's
    threshold: the `num_negatives`-th largest, or the `ceil(alpha * n)`-th
    largest of the anchor's `n` negatives. Ties with the threshold are kept,
    as in the paper's definition. With `num_negatives` equal to all
    negatives the loss equals `InfoNCE`.

    Collapse: with every embedding at one point the loss is `log(1 + K)`
    (`K` kept negatives) at any `tau`, which is below its value whenever an
    anchor's kept negatives are, on average, more similar to it than its
    positive. Strong augmentation makes that common early in training with
    in-batch negatives, which get gradients too, so everything can move to
    one point and stay there (the gradient vanishes). On CIFAR-10 (small
    CNN, the paper's augmentation, batch 256, `alpha` 0.0819) the positives'
    mean similarity is 0.81 at initialisation against 0.91 for the K-th
    nearest negative; the loss collapses in its first epoch at every `tau`
    from 0.07 to 1.0, and heads there (training U 0.15 and 0.05 after 120
    steps) also after 80 InfoNCE steps or at a tenth of the learning rate;
    with `alpha` 0.5 (K-th nearest 0.75) it spreads out (README, Table 1;
    `examples/table1/hard_loss_collapse.py`). InfoNCE has
    no such pull: its collapse value `log(1 + n)` counts all `n` negatives.
    Watch the `Uniformity` metric: near 0 means collapsed.

{input_contract}

    Formula:

    ```python
    # s_alpha_i: anchor i's threshold; positives always stay in
    loss_i = -log(exp(s_ii / tau) /
                  (exp(s_ii / tau) + sum_(s_ik >= s_alpha_i) exp(s_ik / tau)))
    ```

    Args:
        tau: The temperature, a positive float. Defaults to `0.2`.
        num_negatives: Keep each anchor's `num_negatives` most similar
            negatives. Give this or `alpha`. Defaults to `None`.
        alpha: Keep the upper `alpha` quantile (in (0, 1]) of each anchor's
            negatives. When neither is given, `alpha = 4095 / 50000`: the
            paper's 4095 of a 50,000-entry memory bank. Defaults to `None`.
{common_args}

    Examples:

    >>> import numpy as np
    >>> y_pred = np.random.default_rng(0).normal(size=(8, 2, 16))
    >>> all_negatives = HardContrastiveLoss(tau=0.2, num_negatives=14)
    >>> from keras_contrastive.losses import InfoNCE
    >>> info_nce = InfoNCE(tau=0.2)
    >>> bool(abs(all_negatives(None, y_pred) - info_nce(None, y_pred)) < 1e-6)
    True

    Usage with `compile()`:

    ```python
    model.compile(
        optimizer="sgd", loss=keras_contrastive.HardContrastiveLoss(tau=0.2)
    )
    ```

{paper_reference}
    """

    loss_fn = staticmethod(hard_contrastive_loss)

    def __init__(
        self,
        tau=0.2,
        num_negatives=None,
        alpha=None,
        label_mode=None,
        block_size=None,
        reduction="sum_over_batch_size",
        name="hard_contrastive_loss",
    ):
        super().__init__(
            tau=tau,
            label_mode=label_mode,
            block_size=block_size,
            reduction=reduction,
            name=name,
        )
        self.num_negatives, self.alpha = check_negative_selection(
            num_negatives, alpha, required=PAPER_ALPHA
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_negatives": self.num_negatives, "alpha": self.alpha}
        )
        return config
