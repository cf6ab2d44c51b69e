"""A MoCo-style FIFO queue of recent embeddings, used as extra negatives."""

import keras
import tensorflow as tf
from keras import ops

from keras_contrastive import distribute
from keras_contrastive.api_export import register
from keras_contrastive.negatives.negatives_utils import add_unit_embeddings
from keras_contrastive.negatives.negatives_utils import check_size
from keras_contrastive.utils.embeddings import l2_normalize


@register
class FifoQueue(keras.layers.Layer):
    """The `size` most recent embeddings, each a negative for every anchor.

    As in MoCo (He et al. 2020), negatives outnumber the batch: after each
    step the global batch's first views are enqueued (without gradient) and
    the oldest entries leave. Entries start as random unit vectors. Under
    `tf.distribute` every replica enqueues the same gathered batch. The
    queue is a weight of the model and is saved with it.

    Args:
        size: Number of entries; at least the global batch size.
        seed: Seed of the random initial entries. Defaults to `None`.
        **kwargs: Base `Layer` arguments.

    Reference:
        - [He et al., 2020](https://arxiv.org/abs/1911.05722)
    """

    def __init__(self, size, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.size = check_size(size)
        self.seed = seed

    def build(self, input_shape):
        """Creates the entries for embeddings of shape `(..., dim)`."""
        self.embeddings = add_unit_embeddings(self, self.size, input_shape[-1], self.seed)
        self.position = self.add_weight(
            shape=(),
            initializer="zeros",
            trainable=False,
            dtype="int32",
            aggregation="only_first_replica",
            name="position",
        )

    def candidates(self):
        """The queued embeddings, without gradient, and no labels."""
        return tf.stop_gradient(ops.convert_to_tensor(self.embeddings)), None

    def update(self, indices, embeddings):
        """Enqueues `embeddings` (batch, dim) from every replica."""
        del indices
        count = embeddings.shape[0]
        message = (
            f"`FifoQueue(size={self.size})` must hold at least the global batch, or "
            "entries overwrite each other. Received: a global batch of"
        )
        if count is not None and count > self.size:
            raise ValueError(f"{message} {count}")
        tf.debugging.assert_less_equal(ops.shape(embeddings)[0], self.size, message=message)
        (embeddings,), _ = distribute.gather_global_batch(
            tf.stop_gradient(l2_normalize(embeddings))
        )
        count = ops.shape(embeddings)[0]
        slots = ops.mod(self.position + ops.arange(count, dtype="int32"), self.size)
        self.embeddings.assign(
            tf.tensor_scatter_nd_update(self.embeddings, slots[:, None], embeddings)
        )
        self.position.assign(ops.mod(self.position + count, self.size))

    def get_config(self):
        config = super().get_config()
        config.update({"size": self.size, "seed": self.seed})
        return config
