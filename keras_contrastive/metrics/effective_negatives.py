"""The effective number of negatives that InfoNCE penalises at `tau`."""

from keras import ops

from keras_contrastive.api_export import register
from keras_contrastive.metrics.pair_metric import fill_docstring
from keras_contrastive.metrics.penalty_entropy import PenaltyEntropy


@register
@fill_docstring
class EffectiveNegatives(PenaltyEntropy):
    """Mean `exp(entropy)` of each anchor's relative-penalty distribution.

    Between 1 (all the penalty on the single hardest negative) and the number
    of negatives (an even penalty, `tau -> inf`): how many negatives the loss
    effectively pushes at this temperature.

{input_contract}

    Args:
        tau: The temperature at which to measure, a positive float. Defaults
            to `0.1`.
        name: Name of the metric instance. Defaults to
            `"effective_negatives"`.

    Example:

    >>> import numpy as np
    >>> metric = EffectiveNegatives(tau=0.5)
    >>> metric.update_state(None, np.eye(4)[:, None, :])
    >>> round(float(metric.result()), 4)
    3.0

    Reference:
        - [Wang & Liu, 2021](https://arxiv.org/abs/2012.09740)
    """

    def __init__(self, tau=0.1, name="effective_negatives"):
        super().__init__(tau=tau, name=name)

    def anchor_sums(self, pairs):
        effective = ops.exp(self.anchor_entropy(pairs))
        return effective, ops.ones_like(effective)
