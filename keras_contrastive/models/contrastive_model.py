"""`ContrastiveModel`: one training step, exact on one device, on many, with XLA."""

import inspect
import numbers
import warnings

import keras
import tensorflow as tf
from keras import ops
from keras.src.utils import tracking

from keras_contrastive import distribute
from keras_contrastive.api_export import register
from keras_contrastive.augmentation import augmentation_ops
from keras_contrastive.augmentation.augmenter import Augmenter
from keras_contrastive.augmentation.augmenter import to_unit_float
from keras_contrastive.losses.contrastive_loss import ContrastiveLoss
from keras_contrastive.negatives.fifo_queue import FifoQueue
from keras_contrastive.negatives.memory_bank import MemoryBank
from keras_contrastive.temperature.learnable_temperature import LearnableTemperature
from keras_contrastive.temperature.temperature_schedule import TemperatureSchedule
from keras_contrastive.utils import backend
from keras_contrastive.utils import validation

BATCH_NEGATIVES = ("batch", "local_batch")
# Folded into the seed of evaluation views, which never depend on the step.
_EVALUATION_STEP = -1


@register
class ContrastiveModel(keras.Model):
    """A Keras model whose `fit` pretrains an encoder with a contrastive loss.

    Each step makes `views` random views of every image with `augmenter`,
    encodes them (all views in one batch through `encoder`, then
    `projector`), and applies the compiled `keras_contrastive` loss and
    metrics to the `(batch, views, dim)` projections. Datasets may yield
    images, `(images, labels)`, `(images, labels, sample_weight)`, or dicts
    with `"image"` and optional `"label"`, `"index"` and `"sample_weight"`.
    Labels reach the metrics, and the loss only when its `label_mode` asks
    for them. Images of rank 5, `(batch, views, height, width, channels)`,
    are taken as ready-made views (augmentation done in `tf.data`).

    What is exact everywhere:

    - Negatives (`negatives="batch"`, the default) are the global batch:
      under `tf.distribute` every replica gathers the others' projections
      (differentiably) and computes its own anchors' losses against all of
      them, scaled so the summed gradients equal the single-device gradient
      on the same global batch. `"local_batch"` keeps each replica's own
      samples only. A `MemoryBank` gives the paper's setting (one view; the
      dataset gives `"index"`); a `FifoQueue` adds recent embeddings.
    - Views use stateless seeds folded from `seed`, the optimizer step, the
      replica id and the view index: they differ across views and replicas,
      and a resumed run draws the same views as an uninterrupted one.
    - `compile(jit_compile=True)` compiles the whole step on one device; under
      a multi-replica strategy, where Keras cannot, the loss kernel alone is
      compiled, and a warning says so. A layer that prevents XLA is named
      in a warning, never silently dropped.
    - Mixed precision: the loss is scaled in `train_step` for
      `mixed_float16`; losses and metrics compute in float32.

    Args:
        encoder: A Keras model from images to features (the part exported
            for downstream use).
        projector: Optional Keras layer from features to the contrastive
            space; None uses the features. Defaults to `None`.
        augmenter: Layer making one view of a batch. A layer whose `call`
            takes `seed` (as `Augmenter`) gets per-view, per-replica,
            per-step seeds; any other layer is called as is. None casts the
            images to float in [0, 1] without augmenting. Defaults to `None`.
        views: Views per image, at least 2; 1 with a `MemoryBank`. Defaults
            to `2`.
        negatives: `"batch"`, `"local_batch"`, a `MemoryBank` or a
            `FifoQueue`. Defaults to `"batch"`.
        temperature: None (the loss's `tau`), a float, a
            `LearnableTemperature` or a `TemperatureSchedule`; logged as
            `tau`. Defaults to `None`.
        sync_batch_norm: Whether the batch normalisation layers of the
            encoder and projector compute statistics over the global batch.
            Defaults to `False`.
        seed: Seed of the views. Defaults to `0`.
        **kwargs: Base `keras.Model` arguments (`name`).

    Example:

    ```python
    model = keras_contrastive.ContrastiveModel(
        encoder=keras_contrastive.encoders.small_cnn((28, 28, 1)),
        projector=keras_contrastive.encoders.projection_head("linear", 64),
        augmenter=keras_contrastive.Augmenter(28),
    )
    model.compile(
        optimizer="adam",
        loss=keras_contrastive.HardContrastiveLoss(tau=0.2),
        metrics=[keras_contrastive.Uniformity(), keras_contrastive.Tolerance()],
    )
    model.fit(images_and_labels, epochs=20)
    ```

    Reference:
        - [Wang & Liu, 2021](https://arxiv.org/abs/2012.09740)
        - [Chen et al., 2020](https://arxiv.org/abs/2002.05709)
    """

    def __init__(
        self,
        encoder,
        projector=None,
        augmenter=None,
        views=2,
        negatives="batch",
        temperature=None,
        sync_batch_norm=False,
        seed=0,
        **kwargs,
    ):
        backend.require_tensorflow("`ContrastiveModel`")
        super().__init__(**kwargs)
        _check_negatives(negatives)
        min_views = 1 if isinstance(negatives, MemoryBank) else 2
        if not isinstance(views, int) or views < min_views:
            raise ValueError(
                f"`views` must be an integer >= {min_views}. Received: views={views!r}"
            )
        if isinstance(negatives, MemoryBank) and views != 1:
            raise ValueError(
                "A `MemoryBank` uses one view per step (the positive is the "
                f"sample's bank entry). Received: views={views}"
            )
        self.encoder = encoder
        self.projector = projector
        self.augmenter = augmenter
        self.views = views
        self.negatives = negatives
        self.temperature = _check_temperature(temperature)
        self.sync_batch_norm = bool(sync_batch_norm)
        self.seed = int(seed)
        self.contrastive_loss = None
        self.contrastive_metrics = []
        self._loss_kernel = None
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.tau_tracker = keras.metrics.Mean(name="tau")
        if self.sync_batch_norm:
            for module in (encoder, projector):
                for layer in _batch_norm_layers(module):
                    layer.synchronized = True
        encoder_inputs = getattr(encoder, "inputs", None)
        if encoder_inputs and (augmenter is None or isinstance(augmenter, Augmenter)):
            # Build now, so nothing is skipped by a save or a restore before
            # `fit`. An `Augmenter` resizes, so raw images may be any size.
            shape = tuple(encoder_inputs[0].shape)
            if augmenter is not None:
                shape = (None, None, None, shape[-1])
            self.build(shape)

    # --- building -----------------------------------------------------------

    def build(self, input_shape):
        input_shape = _image_shape(input_shape)
        if len(input_shape) == 5:  # ready-made views
            input_shape = (input_shape[0], *input_shape[2:])
        image_shape = input_shape
        if self.augmenter is not None:
            image_shape = self.augmenter.compute_output_shape(input_shape)
        if not self.encoder.built:
            self.encoder.build(image_shape)
        shape = self.encoder.compute_output_shape(image_shape)
        if self.projector is not None:
            if not self.projector.built:
                self.projector.build(shape)
            shape = self.projector.compute_output_shape(shape)
        if isinstance(self.negatives, keras.layers.Layer) and not self.negatives.built:
            self.negatives.build(shape)
        self.built = True

    def call(self, inputs, training=False):
        """Encodes images (no augmentation, no projection): the features."""
        images = _unpack(inputs)[0]
        if len(images.shape) == 5:
            images = images[:, 0]
        return self.encoder(self._preprocess(images), training=training)

    def _preprocess(self, images):
        if self.augmenter is not None:
            return self.augmenter(images, training=False)
        return to_unit_float(images)

    # --- compiling ----------------------------------------------------------

    # As Keras' own `compile`: the loss and metrics are set after the model
    # is built, so they must not be tracked as new state of a built layer.
    @tracking.no_automatic_dependency_tracking
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, jit_compile="auto", **kwargs):
        """Configures training; `loss` must be a `keras_contrastive` loss.

        The model owns its loss and metrics (Keras' compiled loss cannot run
        on label-free data under a strategy), so `loss` and `metrics` are kept
        here, `model.loss` is the loss as in any Keras model, and both are
        saved with the compile config. `loss_weights` is refused: there is
        one loss (scale it through the learning rate).
        """
        loss = keras.losses.get(loss) if isinstance(loss, (str, dict)) else loss
        if not isinstance(loss, ContrastiveLoss):
            raise ValueError(
                "`loss` must be a keras_contrastive loss (e.g. "
                f"InfoNCE(tau=0.1)). Received: loss={loss!r}"
            )
        if kwargs.get("loss_weights") is not None:
            raise ValueError(
                "`loss_weights` has no meaning for a ContrastiveModel, which has "
                "one loss (scale it through the learning rate). Received: "
                f"loss_weights={kwargs['loss_weights']!r}"
            )
        if isinstance(self.negatives, (MemoryBank, FifoQueue)) and loss.label_mode:
            raise ValueError(
                f"A {type(self.negatives).__name__} holds unlabelled "
                "embeddings: use a loss with label_mode=None. Received: "
                f"label_mode={loss.label_mode!r}"
            )
        self.contrastive_loss = loss
        self.contrastive_metrics = [keras.metrics.get(m) for m in metrics or []]
        self._requested_jit_compile = jit_compile
        step_jit_compile = jit_compile
        self._loss_kernel = loss.per_sample_loss
        if jit_compile is True and distribute.num_replicas() > 1:
            warnings.warn(
                "jit_compile=True under a multi-replica strategy: Keras cannot "
                "compile a step that reads variables placed on other replicas, "
                "so the contrastive loss kernel is compiled with XLA on its own."
            )
            step_jit_compile = False
            self._loss_kernel = tf.function(loss.per_sample_loss, jit_compile=True)
        super().compile(optimizer=optimizer, jit_compile=step_jit_compile, **kwargs)
        self.loss = loss
        if self.built and not self.optimizer.built:
            # Creates the optimizer's slots now, so the optimizer state of a
            # `.keras` file or `load_weights` (KerasTuner's resumed trials)
            # is loaded into them instead of skipped.
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)
        if step_jit_compile is True and not self.jit_compile:
            blocking = [
                layer.name
                for layer in self._flatten_layers()
                if not getattr(layer, "supports_jit", True)
            ]
            warnings.warn(
                "jit_compile=True could not be honoured: these layers do not "
                f"support XLA: {blocking}. The step runs without XLA."
            )

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None:
            config["loss"] = keras.saving.serialize_keras_object(self.contrastive_loss)
            config["metrics"] = [
                keras.saving.serialize_keras_object(m) for m in self.contrastive_metrics
            ]
            config["jit_compile"] = self._requested_jit_compile
        return config

    def compile_from_config(self, config):
        """Restores the compiled loss, metrics and optimizer of a saved model."""
        self.compile(**keras.saving.deserialize_keras_object(config))

    @property
    def metrics(self):
        return [self.loss_tracker, self.tau_tracker, *self.contrastive_metrics]

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # A private Keras 3 hook, overridden because under
        # a strategy Keras takes a batch and reduces it across replicas to
        # build the model symbolically, which fails on dict batches under
        # MultiWorkerMirroredStrategy (keras-team/keras#20329) and consumes
        # a batch. This model is built already and owns its loss and
        # metrics: only the optimizer is left, and it needs no batch.
        if self.built and self._compile_loss is None and self._compile_metrics is None:
            if not self.optimizer.built:
                with self.distribute_strategy.scope():
                    self.optimizer.build(self.trainable_variables)
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    # --- the steps ----------------------------------------------------------

    def train_step(self, data):
        images, labels, sample_weight, indices = _unpack(data)
        step = self.optimizer.iterations
        with tf.GradientTape() as tape:
            tau = self._tau(step)  # on the tape: a learnt tau gets a gradient
            projections = self._project_views(images, step, training=True)
            loss = self._loss(projections, labels, sample_weight, indices, tau)
            total = loss + self._regularization_loss()
            scaled = self.optimizer.scale_loss(total)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply(gradients, variables)
        if isinstance(self.negatives, keras.layers.Layer):
            self.negatives.update(indices, projections[:, 0])
        if isinstance(self.temperature, LearnableTemperature):
            self.temperature.clamp()
        return self._update_metrics(loss, tau, labels, projections, sample_weight)

    def test_step(self, data):
        images, labels, sample_weight, indices = _unpack(data)
        tau = self._tau(self.optimizer.iterations)
        projections = self._project_views(images, _EVALUATION_STEP, training=False)
        loss = self._loss(projections, labels, sample_weight, indices, tau)
        return self._update_metrics(loss, tau, labels, projections, sample_weight)

    def _project_views(self, images, step, training):
        """Returns the `(batch, views, dim)` projections of the views."""
        if len(images.shape) == 5:
            if images.shape[1] is not None and images.shape[1] != self.views:
                raise ValueError(
                    f"Ready-made views (rank-5 images) must hold `views={self.views}` "
                    f"views per image. Received: images.shape={tuple(images.shape)}"
                )
            views = [to_unit_float(images[:, v]) for v in range(self.views)]
        else:
            views = [self._augment(images, step, v) for v in range(self.views)]
        batch = ops.shape(views[0])[0]
        # All views in one batch: one encoder pass, and batch statistics
        # shared by the views (as SimCLR).
        features = self.encoder(ops.concatenate(views, axis=0), training=training)
        if self.projector is not None:
            features = self.projector(features, training=training)
        features = ops.reshape(features, (self.views, batch, features.shape[-1]))
        return ops.transpose(features, (1, 0, 2))

    def _augment(self, images, step, view):
        if self.augmenter is None:
            return to_unit_float(images)
        if "seed" not in _call_arguments(self.augmenter):
            return self.augmenter(images, training=True)
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        seed = augmentation_ops.fold_seed(
            tf.constant([self.seed, 0], "int32"), step, replica, view
        )
        return self.augmenter(images, seed=seed, training=True)

    def _tau(self, step):
        if self.temperature is None:
            return None
        if isinstance(self.temperature, LearnableTemperature):
            return self.temperature()
        if isinstance(self.temperature, TemperatureSchedule):
            return self.temperature(step)
        return ops.convert_to_tensor(self.temperature, "float32")

    def _loss(self, projections, labels, sample_weight, indices, tau):
        """The replica's share of the global loss (see the class docstring)."""
        overrides = {} if tau is None else {"tau": tau}
        if isinstance(self.negatives, MemoryBank):
            if indices is None:
                raise ValueError(
                    "A MemoryBank needs each sample's index: yield dicts with "
                    "an 'index' entry. Received: no 'index' in the batch"
                )
            bank, bank_labels = self.negatives.candidates()
            per_sample = self._loss_kernel(
                indices,
                projections,
                extra_negatives=bank,
                extra_labels=bank_labels,
                in_batch_negatives=False,
                label_mode="supervised",
                **overrides,
            )
        else:
            extra, extra_labels = self._extra_negatives(projections, labels)
            per_sample = self._loss_kernel(
                labels,
                projections,
                extra_negatives=extra,
                extra_labels=extra_labels,
                **overrides,
            )
        return self.contrastive_loss.reduce(per_sample, sample_weight)

    def _extra_negatives(self, projections, labels):
        """Other replicas' projections (and labels), then queued ones."""
        extras, extra_labels = [], None
        if self.negatives != "local_batch" and distribute.num_replicas() > 1:
            local = [projections] if labels is None else [projections, labels]
            gathered, offset = distribute.gather_global_batch(*local)
            size = ops.shape(projections)[0]
            others = [
                ops.concatenate([g[:offset], g[offset + size :]], axis=0)
                for g in gathered
            ]
            extras.append(ops.reshape(others[0], (-1, projections.shape[-1])))
            if labels is not None:
                extra_labels = ops.repeat(
                    ops.reshape(others[1], (-1,)), self.views
                )
        if isinstance(self.negatives, FifoQueue):
            extras.append(self.negatives.candidates()[0])
        if not extras:
            return None, None
        return ops.concatenate(extras, axis=0), extra_labels

    def _regularization_loss(self):
        if not self.losses:
            return 0.0
        return ops.sum(self.losses) / distribute.num_replicas()

    def _update_metrics(self, loss, tau, labels, projections, sample_weight):
        # The loss of each replica is already divided by the replica count.
        self.loss_tracker.update_state(loss * distribute.num_replicas())
        self.tau_tracker.update_state(
            self.contrastive_loss.tau if tau is None else tau
        )
        for metric in self.contrastive_metrics:
            metric.update_state(labels, projections, sample_weight)
        return distribute.step_logs(self.get_metrics_result())

    # --- serialisation ------------------------------------------------------

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "encoder": serialize(self.encoder),
            "projector": serialize(self.projector),
            "augmenter": serialize(self.augmenter),
            "views": self.views,
            "negatives": serialize(self.negatives),
            "temperature": serialize(self.temperature),
            "sync_batch_norm": self.sync_batch_norm,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "projector", "augmenter", "negatives", "temperature"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _unpack(data):
    """Returns `(images, labels, sample_weight, indices)` from a batch."""
    labels = sample_weight = indices = None
    if isinstance(data, (tuple, list)):
        images = data[0]
        labels = data[1] if len(data) > 1 else None
        sample_weight = data[2] if len(data) > 2 else None
    else:
        images = data
    if isinstance(images, dict):
        features = images
        images = features.get("image", features.get("images"))
        labels = features.get("label", labels)
        indices = features.get("index")
        sample_weight = features.get("sample_weight", sample_weight)
    return images, labels, sample_weight, indices


def _image_shape(input_shape):
    """The images' shape, also from the shapes of a whole batch structure."""
    if isinstance(input_shape, dict):
        return _image_shape(input_shape.get("image", input_shape.get("images")))
    if isinstance(input_shape, (list, tuple)) and isinstance(
        input_shape[0], (list, tuple, dict)
    ):
        return _image_shape(input_shape[0])
    return tuple(input_shape)


def _call_arguments(layer):
    return inspect.signature(layer.call).parameters


def _batch_norm_layers(module):
    if module is None:
        return []
    return [
        layer
        for layer in module._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def _check_negatives(negatives):
    if isinstance(negatives, (MemoryBank, FifoQueue)):
        return
    if negatives not in BATCH_NEGATIVES:
        raise ValueError(
            f"`negatives` must be one of {BATCH_NEGATIVES}, a MemoryBank or a "
            f"FifoQueue. Received: negatives={negatives!r}"
        )


def _check_temperature(temperature):
    if temperature is None or isinstance(
        temperature, (LearnableTemperature, TemperatureSchedule)
    ):
        return temperature
    if isinstance(temperature, numbers.Real):
        return validation.check_positive_float("temperature", temperature)
    raise ValueError(
        "`temperature` must be None, a positive float, a LearnableTemperature "
        f"or a TemperatureSchedule. Received: temperature={temperature!r}"
    )
