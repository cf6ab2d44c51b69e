"""The mean positive similarity (Wang & Liu 2021, Figure 8)."""

from keras_contrastive.api_export import register
from keras_contrastive.metrics.metric_utils import masked_row_sums
from keras_contrastive.metrics.metric_utils import positive_mask
from keras_contrastive.metrics.pair_metric import PairMetric
from keras_contrastive.metrics.pair_metric import fill_docstring


@register
@fill_docstring
class PositiveSimilarity(PairMetric):
    """The mean cosine similarity between views of the same sample.

    Read beside `NearestNegativeSimilarity`: the paper's Figure 8 shows that
    a small temperature separates the positive from the nearest negatives,
    and a large one lets them approach it.

{input_contract}

    Needs at least two views per sample.

    Args:
        name: Name of the metric instance. Defaults to
            `"positive_similarity"`.

    Example:

    >>> import numpy as np
    >>> metric = PositiveSimilarity()
    >>> metric.update_state(None, np.array([[[1.0, 0.0], [0.6, 0.8]]]))
    >>> round(float(metric.result()), 4)
    0.6

    Reference:
        - [Wang & Liu, 2021](https://arxiv.org/abs/2012.09740)
    """

    def __init__(self, name="positive_similarity"):
        super().__init__(name=name, min_views=2)

    def anchor_sums(self, pairs):
        return masked_row_sums(pairs.similarities, positive_mask(pairs))
