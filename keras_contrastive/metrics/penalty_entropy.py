"""The entropy of InfoNCE's relative penalty over the negatives."""

from keras import ops

from keras_contrastive.analysis.relative_penalty import penalty_entropy
from keras_contrastive.api_export import register
from keras_contrastive.metrics.metric_utils import negative_mask
from keras_contrastive.metrics.pair_metric import PairMetric
from keras_contrastive.metrics.pair_metric import fill_docstring
from keras_contrastive.utils import validation


@register
@fill_docstring
class PenaltyEntropy(PairMetric):
    """Mean entropy (nats) of each anchor's relative-penalty distribution at `tau`.

    InfoNCE's gradient on negative `j` is proportional to `exp(s_ij / tau)`;
    normalised over the negatives it is the relative penalty `r_i(s_ij)` of
    the paper's Section 3. Low entropy means the temperature focuses the
    penalty on a few hard negatives; `log(n)` means it is spread evenly over
    all `n`. `EffectiveNegatives` reports `exp` of the same entropy.

{input_contract}

    Negatives are every view of every other sample in the global batch.

    Args:
        tau: The temperature at which to measure, a positive float (usually
            the loss's). Defaults to `0.1`.
        name: Name of the metric instance. Defaults to `"penalty_entropy"`.

    Example:

    >>> import numpy as np
    >>> metric = PenaltyEntropy(tau=0.5)
    >>> metric.update_state(None, np.eye(4)[:, None, :])  # negatives all at 0
    >>> round(float(metric.result()), 4)  # log(3)
    1.0986

    Reference:
        - [Wang & Liu, 2021](https://arxiv.org/abs/2012.09740)
    """

    def __init__(self, tau=0.1, name="penalty_entropy"):
        super().__init__(name=name)
        self.tau = validation.check_positive_float("tau", tau)

    def anchor_entropy(self, pairs):
        return penalty_entropy(
            pairs.similarities, self.tau, negative_mask=negative_mask(pairs)
        )

    def anchor_sums(self, pairs):
        entropy = self.anchor_entropy(pairs)
        return entropy, ops.ones_like(entropy)

    def get_config(self):
        return {**super().get_config(), "tau": self.tau}
