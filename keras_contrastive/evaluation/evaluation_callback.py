"""A Keras callback that evaluates the encoder during training."""

import keras
import numpy as np
import tensorflow as tf

from keras_contrastive.evaluation.embedding import as_batched_dataset
from keras_contrastive.evaluation.encoder_evaluation import evaluate_encoder
from keras_contrastive.evaluation.evaluation_utils import check_space
from keras_contrastive.evaluation.evaluation_utils import encoder_and_projector
from keras_contrastive.evaluation.evaluation_utils import log_key
from keras_contrastive.evaluation.similarity_table import similarity_table
from keras_contrastive.utils import validation


class EvaluationCallback(keras.callbacks.Callback):
    """Runs `evaluate_encoder` every few epochs and logs what it measures.

    kNN accuracy, uniformity and tolerance are measured in one named
    `space` (see `evaluate_encoder`), and every log key says which: they
    enter the epoch's `logs` as `val_projection_knn_accuracy`,
    `val_projection_uniformity`, `val_projection_tolerance` (`val_features_...`
    with `space="features"`), and the linear probe's as
    `val_features_linear_accuracy`, so `EarlyStopping`, `ModelCheckpoint`
    and KerasTuner can monitor them: put this callback before those in the
    `callbacks` list. `curve` keeps every evaluation (`epoch`, counted from
    1, and the measures). With `log_dir` it also writes them as TensorBoard
    scalars, with histograms of the positive and nearest-negative
    similarities of up to `table_size` query images (positives are two
    augmentations of the same image when an augmenter is known, the Figure 8
    comparison).

    Args:
        bank_data: The labelled reference split (usually train).
        query_data: The evaluated split, labelled.
        model: What to evaluate: a `ContrastiveModel` or a bare encoder (see
            `evaluate_encoder`); None uses the model being trained.
            Defaults to `None`.
        space: `"projection"` or `"features"`. Defaults to `"projection"`.
        projector: The projection head of a bare encoder. Defaults to
            `None`.
        every_n_epochs: Evaluate after every this many epochs. Defaults to
            `1`.
        knn_k: Neighbours of the weighted kNN. Defaults to `200`.
        sigma: Temperature of the kNN weights. Defaults to `0.07`.
        linear_probe_epochs: Epochs of the linear probe; 0 skips it.
            Defaults to `0`.
        augmenter: Callable `images -> augmented images` for the positives of
            the histograms; None uses `model.augmenter` when present.
            Defaults to `None`.
        log_dir: TensorBoard log directory, or None. Defaults to `None`.
        table_size: Query images in the similarity histograms. Defaults to
            `1000`.
        prefix: Prefix of the log keys. Defaults to `"val_"`.
    """

    def __init__(
        self,
        bank_data,
        query_data,
        model=None,
        space="projection",
        projector=None,
        every_n_epochs=1,
        knn_k=200,
        sigma=0.07,
        linear_probe_epochs=0,
        augmenter=None,
        log_dir=None,
        table_size=1000,
        prefix="val_",
    ):
        super().__init__()
        self.bank_data = bank_data
        self.query_data = query_data
        self.evaluated_model = model
        self.space = check_space(space)
        self.projector = projector
        self.every_n_epochs = validation.check_optional_positive_int(
            "every_n_epochs", every_n_epochs
        )
        self.knn_k = knn_k
        self.sigma = sigma
        self.linear_probe_epochs = linear_probe_epochs
        self.augmenter = augmenter
        self.log_dir = log_dir
        self.table_size = table_size
        self.prefix = prefix
        self._writer = None
        self.curve = []

    def _evaluated(self):
        return self.model if self.evaluated_model is None else self.evaluated_model

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        results = evaluate_encoder(
            self._evaluated(),
            self.bank_data,
            self.query_data,
            space=self.space,
            projector=self.projector,
            knn_k=self.knn_k,
            sigma=self.sigma,
            linear_probe_epochs=self.linear_probe_epochs,
        )
        measures = {k: float(v) for k, v in results.items() if k != "space"}
        self.curve.append({"epoch": epoch + 1, **measures})
        logged = {
            log_key(key, self.space, self.prefix): value
            for key, value in measures.items()
        }
        if logs is not None:
            logs.update(logged)
        if self.log_dir is not None:
            self._write_summaries(epoch, logged)

    def _write_summaries(self, epoch, logged):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        table = self._similarity_table()
        with self._writer.as_default(step=epoch):
            for key, value in logged.items():
                tf.summary.scalar(key, value)
            if table is not None:
                tf.summary.histogram(
                    log_key("positive_similarity", self.space, self.prefix),
                    table["positive"],
                )
                tf.summary.histogram(
                    log_key("nearest_negative_similarity", self.space, self.prefix),
                    table["negatives"][:, 0],
                )
        self._writer.flush()

    def _similarity_table(self):
        augmenter = self.augmenter or getattr(self.model, "augmenter", None)
        if augmenter is None:
            return None
        first_images = as_batched_dataset(self.query_data, self.table_size)
        first_images = first_images.unbatch().batch(self.table_size).take(1)
        images = np.asarray(next(iter(first_images))[0])
        encoder, head = encoder_and_projector(
            self._evaluated(), self.projector, self.space
        )

        def embed(views):
            features = encoder(views, training=False)
            return features if head is None else head(features, training=False)

        anchors = embed(augmenter(images, training=True))
        positives = embed(augmenter(images, training=True))
        k = min(10, len(images) - 1)
        return similarity_table(np.asarray(anchors), np.asarray(positives), k=k)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
