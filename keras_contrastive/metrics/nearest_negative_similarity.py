"""The k nearest negatives' similarities (Wang & Liu 2021, Figure 8)."""

import math

from keras import ops

from keras_contrastive import distribute
from keras_contrastive.api_export import register
from keras_contrastive.metrics.metric_utils import negative_mask
from keras_contrastive.metrics.pair_metric import PairMetric
from keras_contrastive.metrics.pair_metric import fill_docstring
from keras_contrastive.utils import validation


@register
@fill_docstring
class NearestNegativeSimilarity(PairMetric):
    """The mean similarity of each anchor's 1st, 2nd, ..., k-th nearest negative.

    The paper's Figure 8 compares the positive similarity with the ten
    nearest negatives `n1..n10`: at a small temperature the positive stands
    clear of them, at a large one the nearest negatives crowd it.

{input_contract}

    Negatives are every view of every other sample in the global batch.
    `result()` returns one value per rank, a `(k,)` tensor (as Keras'
    `F1Score(average=None)` returns one per class): `fit`'s history keeps
    the vector per epoch (`np.array(history.history[name])[:, r - 1]` is
    rank `r`) and the progress bar shows its mean.

    Args:
        k: How many ranks to report, a positive integer no larger than the
            negatives of an anchor. Defaults to `10`.
        name: Name of the metric instance. Defaults to
            `"nearest_negative_similarity"`.

    Example:

    >>> import numpy as np
    >>> metric = NearestNegativeSimilarity(k=2)
    >>> y_pred = np.array([[[1.0, 0.0]], [[0.8, 0.6]], [[0.0, 1.0]]])
    >>> metric.update_state(None, y_pred)
    >>> [round(float(v), 4) for v in metric.result()]
    [0.7333, 0.2]

    Reference:
        - [Wang & Liu, 2021](https://arxiv.org/abs/2012.09740)
    """

    def __init__(self, k=10, name="nearest_negative_similarity"):
        k = validation.check_optional_positive_int("k", k)
        if k is None:
            raise ValueError(f"`k` must be a positive integer. Received: k={k}")
        super().__init__(name=name, width=k)
        self.k = k

    def update_state(self, y_true, y_pred, sample_weight=None):
        batch, views, _ = validation.check_embeddings(
            ops.convert_to_tensor(y_pred), min_views=1
        )
        if batch is not None:
            available = views * (batch * distribute.num_replicas() - 1)
            if self.k > available:
                raise ValueError(
                    f"`k` must be at most the {available} negatives each "
                    f"anchor has in this batch. Received: k={self.k}"
                )
        super().update_state(y_true, y_pred, sample_weight)

    def anchor_sums(self, pairs):
        negatives = ops.where(negative_mask(pairs), pairs.similarities, -math.inf)
        nearest = ops.top_k(negatives, self.k, sorted=True)[0]
        return nearest, ops.ones_like(nearest[:, 0])

    def get_config(self):
        return {**super().get_config(), "k": self.k}
