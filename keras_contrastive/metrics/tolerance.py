"""Tolerance (Wang & Liu 2021): how close same-class samples stay."""

from keras import ops

from keras_contrastive.api_export import register
from keras_contrastive.metrics.metric_utils import masked_row_sums
from keras_contrastive.metrics.pair_metric import PairMetric
from keras_contrastive.metrics.pair_metric import fill_docstring


@register
@fill_docstring
class Tolerance(PairMetric):
    """The mean cosine similarity of pairs of distinct samples sharing a label.

    A small temperature pushes semantically similar samples apart (low
    tolerance); a large one keeps them together. Labels are used for
    measurement only, never for training.

{input_contract}

    `y_true` must hold integer labels of shape `(batch,)`; without them the
    metric raises. Pairs are every two views of distinct samples with the
    same label, pooled: the conditional mean `E[s | same label]`.

    Formula:

    ```python
    T = mean over pairs (x, y) of distinct samples with l(x) = l(y) of x . y
    ```

    Args:
        name: Name of the metric instance. Defaults to `"tolerance"`.

    Example:

    >>> import numpy as np
    >>> metric = Tolerance()
    >>> y_pred = np.array([[[1.0, 0.0]], [[0.6, 0.8]], [[0.0, 1.0]]])
    >>> metric.update_state(np.array([0, 0, 1]), y_pred)
    >>> round(float(metric.result()), 4)
    0.6

    Reference:
        - [Wang & Liu, 2021](https://arxiv.org/abs/2012.09740)
    """

    def __init__(self, name="tolerance"):
        super().__init__(name=name, needs_labels=True)

    def anchor_sums(self, pairs):
        mask = ops.logical_and(pairs.same_label, ops.logical_not(pairs.same_sample))
        return masked_row_sums(pairs.similarities, mask)
