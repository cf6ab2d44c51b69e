"""Uniformity (Wang & Isola 2020), as Wang & Liu (2021) report it."""

from keras import ops

from keras_contrastive.api_export import register
from keras_contrastive.metrics.metric_utils import masked_row_sums
from keras_contrastive.metrics.metric_utils import negative_mask
from keras_contrastive.metrics.pair_metric import PairMetric
from keras_contrastive.metrics.pair_metric import fill_docstring
from keras_contrastive.utils import validation


@register
@fill_docstring
class Uniformity(PairMetric):
    """How uniformly the embeddings cover the unit hypersphere.

    Reported as in Wang & Liu (2021), the negated uniformity loss of Wang &
    Isola (2020): larger is more uniform. By Jensen's inequality it is at
    most `2 * t` for unit vectors (4 at `t = 2`); collapsed embeddings give 0.

{input_contract}

    Pairs are every two views of distinct samples; with one view per sample
    this is exactly Wang & Isola's `pdist` formula.

    Formula:

    ```python
    U = -log(mean over pairs (x, y) of distinct samples of exp(-t * ||x - y||^2))
    ```

    Args:
        t: The positive scale of the squared distances. Defaults to `2.0`.
        name: Name of the metric instance. Defaults to `"uniformity"`.

    Example:

    >>> import numpy as np
    >>> metric = Uniformity()
    >>> metric.update_state(None, np.eye(4)[:, None, :])  # orthogonal: |x-y|^2 = 2
    >>> round(float(metric.result()), 4)
    4.0

    Reference:
        - [Wang & Isola, 2020](https://arxiv.org/abs/2005.10242)
        - [Wang & Liu, 2021](https://arxiv.org/abs/2012.09740)
    """

    def __init__(self, t=2.0, name="uniformity"):
        super().__init__(name=name)
        self.t = validation.check_positive_float("t", t)

    def anchor_sums(self, pairs):
        return masked_row_sums(
            ops.exp(-self.t * pairs.squared_distances), negative_mask(pairs)
        )

    def finalize(self, mean):
        # mean == 0 only when no pair has been seen; NaN stays NaN.
        value = ops.where(mean > 0.0, -ops.log(ops.maximum(mean, 1e-30)), 0.0)
        return ops.where(ops.isnan(mean), mean, value)

    def get_config(self):
        return {**super().get_config(), "t": self.t}
