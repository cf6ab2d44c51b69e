"""Alignment (Wang & Isola 2020): how close the views of a sample stay."""

from keras import ops

from keras_contrastive.api_export import register
from keras_contrastive.metrics.metric_utils import masked_row_sums
from keras_contrastive.metrics.metric_utils import positive_mask
from keras_contrastive.metrics.pair_metric import PairMetric
from keras_contrastive.metrics.pair_metric import fill_docstring
from keras_contrastive.utils import validation


@register
@fill_docstring
class Alignment(PairMetric):
    """The mean distance, to the power `alpha`, between views of a sample.

    Smaller is better aligned: 0 when every view of a sample maps to the
    same point.

{input_contract}

    Needs at least two views per sample.

    Formula:

    ```python
    A = mean over positive pairs (x, x+) of ||x - x+||^alpha
    ```

    Args:
        alpha: The positive power of the distance. Defaults to `2.0`.
        name: Name of the metric instance. Defaults to `"alignment"`.

    Example:

    >>> import numpy as np
    >>> metric = Alignment()
    >>> metric.update_state(None, np.array([[[1.0, 0.0], [0.0, 1.0]]]))
    >>> round(float(metric.result()), 4)  # |x - x+|^2 = 2
    2.0

    Reference:
        - [Wang & Isola, 2020](https://arxiv.org/abs/2005.10242)
    """

    def __init__(self, alpha=2.0, name="alignment"):
        super().__init__(name=name, min_views=2)
        self.alpha = validation.check_positive_float("alpha", alpha)

    def anchor_sums(self, pairs):
        distances = ops.power(pairs.squared_distances, self.alpha / 2.0)
        return masked_row_sums(distances, positive_mask(pairs))

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}
