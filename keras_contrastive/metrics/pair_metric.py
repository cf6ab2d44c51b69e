"""The base class of the streaming contrastive metrics."""

import keras
from keras import ops

from keras_contrastive.api_export import register
from keras_contrastive.metrics.metric_utils import metric_pairs
from keras_contrastive.utils import backend

INPUT_CONTRACT = """\
    Takes the losses' `(y_true, y_pred)`: `y_pred` of shape `(batch, views,
    dim)`, L2-normalised here in float32 whatever the input dtype. Pairs are
    formed inside each batch (never across batches); the result is the ratio
    of the sums accumulated over every batch since the last `reset_state`,
    not a mean of per-batch values. Under `tf.distribute` each replica pairs
    its own samples with the whole global batch, so the value equals the
    single-device value on the same global batch. A `sample_weight` weighs
    every pair by its anchor's weight."""


def fill_docstring(cls):
    """Fills the shared input contract into a metric's docstring."""
    cls.__doc__ = cls.__doc__.format(input_contract=INPUT_CONTRACT)
    return cls


@register
class PairMetric(keras.metrics.Metric):
    """Base class: a weighted ratio of sums over anchor-candidate pairs.

    A subclass implements `anchor_sums(pairs)`, returning per-anchor totals
    (shape `(anchors,)` or `(anchors, width)`) and counts `(anchors,)`; the
    base class weighs them by the anchors' sample weights and accumulates
    both in metric variables, which Keras sums across replicas. `result()`
    is `total / count`, passed through `finalize`.

    Args:
        name: Name of the metric instance.
        width: Length of the accumulated total; 1 gives a scalar metric.
        needs_labels: Whether `y_true` must hold integer labels.
        min_views: The fewest views per sample the metric needs.
    """

    def __init__(self, name, width=1, needs_labels=False, min_views=1):
        backend.check_loss_backend()
        # Metric state and math stay float32 under any mixed-precision policy.
        super().__init__(name=name, dtype="float32")
        self.needs_labels = needs_labels
        self.min_views = min_views
        total_shape = () if width == 1 else (width,)
        self.total = self.add_variable(
            shape=total_shape, initializer="zeros", name="total", dtype="float32"
        )
        self.count = self.add_variable(
            shape=(), initializer="zeros", name="count", dtype="float32"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = None
        if self.needs_labels:
            if y_true is None:
                raise ValueError(
                    f"`{type(self).__name__}` needs integer labels in "
                    "`y_true`, one per sample. Received: y_true=None"
                )
            labels = y_true
        y_pred = ops.convert_to_tensor(y_pred)
        pairs = metric_pairs(y_pred, labels, sample_weight, self.min_views)
        total, count = self.anchor_sums(pairs)
        # NaN for an anchor paired with a non-finite embedding (normalised to
        # NaN), 0 elsewhere: comparisons and clipping would otherwise turn a
        # diverged encoder into finite values.
        poison = ops.sum(pairs.similarities, axis=1) * 0.0
        weights = pairs.anchor_weights
        if len(total.shape) == 2:
            weights = weights[:, None]
            poison = poison[:, None]
        total = total + poison
        self.total.assign_add(ops.sum(total * weights, axis=0))
        self.count.assign_add(ops.sum(count * pairs.anchor_weights))

    def anchor_sums(self, pairs):
        """Returns `(total, count)` per anchor for a `MetricPairs` tuple."""
        raise NotImplementedError

    def finalize(self, mean):
        """Maps the mean `total / count` to the reported value."""
        return mean

    def result(self):
        return self.finalize(ops.divide_no_nan(self.total, self.count))

    def get_config(self):
        return {"name": self.name}
