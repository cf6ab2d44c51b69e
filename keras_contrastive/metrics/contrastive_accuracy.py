"""How often the positive outranks every negative."""

from keras import ops

from keras_contrastive.api_export import register
from keras_contrastive.metrics.metric_utils import negative_mask
from keras_contrastive.metrics.metric_utils import positive_mask
from keras_contrastive.metrics.pair_metric import PairMetric
from keras_contrastive.metrics.pair_metric import fill_docstring


@register
@fill_docstring
class ContrastiveAccuracy(PairMetric):
    """The fraction of (anchor, positive) pairs whose positive beats every negative.

    The instance-discrimination accuracy: the positive's similarity is
    strictly larger than the anchor's nearest negative's.

{input_contract}

    Needs at least two views per sample.

    Args:
        name: Name of the metric instance. Defaults to
            `"contrastive_accuracy"`.

    Example:

    >>> import numpy as np
    >>> metric = ContrastiveAccuracy()
    >>> y_pred = np.array([[[1.0, 0.0], [0.9, 0.1]], [[0.0, 1.0], [-1.0, 0.0]]])
    >>> metric.update_state(None, y_pred)
    >>> float(metric.result())  # (0, 1)'s positive is no nearer than (0.9, 0.1)
    0.75
    """

    def __init__(self, name="contrastive_accuracy"):
        super().__init__(name=name, min_views=2)

    def anchor_sums(self, pairs):
        nearest_negative = ops.max(
            ops.where(negative_mask(pairs), pairs.similarities, -2.0), axis=1
        )
        positives = positive_mask(pairs)
        beats = ops.logical_and(
            positives, pairs.similarities > nearest_negative[:, None]
        )
        total = ops.sum(ops.cast(beats, "float32"), axis=1)
        return total, ops.sum(ops.cast(positives, "float32"), axis=1)
