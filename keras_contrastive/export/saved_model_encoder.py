"""A Keras 3 layer around an exported encoder, frozen or fine-tunable."""

import os

import keras
import tensorflow as tf

from keras_contrastive.api_export import register
from keras_contrastive.augmentation.augmenter import to_unit_float
from keras_contrastive.export.saved_model_export import read_metadata
from keras_contrastive.utils import backend


@register
class SavedModelEncoder(keras.layers.Layer):
    """Loads an `export_encoder` SavedModel as a layer of a new Keras model.

    The layer applies the preprocessing the export's metadata describes
    (uint8 images are scaled to [0, 1], other sizes are resized to the
    exported image shape) and returns the encoder's features. With
    `trainable=True` its weights train with any Keras optimizer, while batch
    normalisation keeps its pretrained statistics (the encoder runs in
    inference mode, as Keras' transfer-learning guide advises: batch
    statistics of the small downstream batches, and moving averages lagging
    behind them, wreck a pretrained network); `update_batch_statistics=True`
    runs it in training mode instead. Each
    restored variable is wrapped in a Keras variable that shares it, under a
    name Keras optimizers accept (`keras.layers.TFSMLayer` keeps TensorFlow's
    `:0` names, and Adam fails on them).

    A `.keras` file of a model that holds this layer keeps the layer's
    weights (fine-tuned ones included) but not the encoder's computation,
    which stays in the export folder: the file records the folder's path
    and loads only while that folder exists there (a `FileNotFoundError`
    that says so otherwise). Keep the export beside the file, or export the
    fine-tuned encoder again.

    Args:
        path: The version folder written by `export_encoder`.
        trainable: Whether fine-tuning updates the encoder. Defaults to
            `False`.
        update_batch_statistics: Whether training runs the encoder in
            training mode (batch statistics, moving averages updated).
            Defaults to `False`.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, path, trainable=False, update_batch_statistics=False, **kwargs):
        backend.require_tensorflow("`load_encoder` (a `SavedModelEncoder`)")
        if not os.path.isdir(path):
            raise FileNotFoundError(
                "The export folder of this encoder does not exist. A "
                "SavedModelEncoder (and a .keras file holding one) loads the "
                "encoder's computation from the folder `export_encoder` wrote, "
                f"which must stay in place. Received: path={str(path)!r}"
            )
        super().__init__(trainable=trainable, **kwargs)
        self.update_batch_statistics = bool(update_batch_statistics)
        self.export_path = str(path)
        self.metadata = read_metadata(self.export_path)
        self.image_shape = tuple(self.metadata["image_shape"])
        self._restored = tf.saved_model.load(self.export_path)
        for variable in self._restored.variables:
            self._track_variable(
                keras.Variable(
                    initializer=variable,
                    trainable=variable.trainable and trainable,
                    dtype=variable.dtype,
                    shape=variable.shape,
                    name=_clean_name(variable.name),
                )
            )
        self.built = True

    def call(self, images, training=False):
        images = to_unit_float(images)
        if tuple(images.shape[1:3]) != self.image_shape[:2]:
            images = tf.image.resize(images, self.image_shape[:2])
        training = bool(training) and self.trainable and self.update_batch_statistics
        return self._restored(images, training=training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.metadata["feature_dim"])

    def get_config(self):
        config = super().get_config()
        config.update(
            {"path": self.export_path, "update_batch_statistics": self.update_batch_statistics}
        )
        return config


def _clean_name(name):
    """A TensorFlow variable name as a valid Keras / optimizer slot name."""
    return name.split(":")[0].replace("/", "_")


def load_encoder(path, trainable=False, update_batch_statistics=False, name=None):
    """Loads an exported encoder as a Keras 3 layer; see `SavedModelEncoder`.

    Args:
        path: The version folder written by `export_encoder`.
        trainable: Whether fine-tuning updates the encoder. Defaults to
            `False`.
        update_batch_statistics: Whether training runs the encoder in
            training mode. Defaults to `False`.
        name: Optional layer name. Defaults to `None`.

    Returns:
        A `SavedModelEncoder` layer from images to features.
    """
    return SavedModelEncoder(
        path, trainable=trainable, update_batch_statistics=update_batch_statistics, name=name
    )
