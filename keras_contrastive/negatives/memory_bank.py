"""The InstDisc memory bank: one embedding per training sample."""

import keras
import tensorflow as tf
from keras import ops

from keras_contrastive import distribute
from keras_contrastive.api_export import register
from keras_contrastive.negatives.negatives_utils import add_unit_embeddings
from keras_contrastive.negatives.negatives_utils import check_size
from keras_contrastive.utils.embeddings import l2_normalize


@register
class MemoryBank(keras.layers.Layer):
    """Holds an L2-normalised embedding of every training sample (the paper's setting).

    With a bank, `ContrastiveModel` makes one view per step; a sample's
    positive is its own bank entry and its negatives are every other entry
    (Wu et al. 2018, the setting of Wang & Liu's Table 1). After each step
    the entries of the step's samples move toward their new embeddings:

    ```python
    bank[i] = normalize(momentum * bank[i] + (1 - momentum) * f(x_i))
    ```

    The dataset must give each sample's index in `[0, size)`. Under
    `tf.distribute` every replica's samples are gathered and every replica
    applies the same update, so all updates land; the bank is a weight of the
    model and is saved with it.

    Args:
        size: Number of training samples (entries). A positive integer.
        momentum: Weight of the old entry in the update, in [0, 1).
            Defaults to `0.5`.
        seed: Seed of the random unit initial entries. Defaults to `None`.
        **kwargs: Base `Layer` arguments.

    Reference:
        - [Wu et al., 2018](https://arxiv.org/abs/1805.01978)
        - [Wang & Liu, 2021](https://arxiv.org/abs/2012.09740)
    """

    def __init__(self, size, momentum=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.size = check_size(size)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1). Received: momentum={momentum}")
        self.momentum = float(momentum)
        self.seed = seed

    def build(self, input_shape):
        """Creates the entries for embeddings of shape `(..., dim)`."""
        self.embeddings = add_unit_embeddings(self, self.size, input_shape[-1], self.seed)

    def candidates(self):
        """The entries and their labels (their indices), without gradient."""
        return tf.stop_gradient(ops.convert_to_tensor(self.embeddings)), ops.arange(
            self.size, dtype="int32"
        )

    def update(self, indices, embeddings):
        """Moves the entries at `indices` toward `embeddings` (batch, dim)."""
        (indices, embeddings), _ = distribute.gather_global_batch(
            ops.cast(ops.reshape(indices, (-1,)), "int32"),
            tf.stop_gradient(l2_normalize(embeddings)),
        )
        old = ops.take(self.embeddings, indices, axis=0)
        new = l2_normalize(self.momentum * old + (1.0 - self.momentum) * embeddings)
        self.embeddings.assign(
            tf.tensor_scatter_nd_update(self.embeddings, indices[:, None], new)
        )

    def get_config(self):
        config = super().get_config()
        config.update({"size": self.size, "momentum": self.momentum, "seed": self.seed})
        return config
