"""The evaluation callback: figures in `logs`, for monitors and TensorBoard."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_contrastive
from keras_contrastive.evaluation import EvaluationCallback
from keras_contrastive.evaluation import evaluate_encoder


def two_view_model(encoder):
    images = keras.Input((4, 4, 1))
    noise = keras.layers.GaussianNoise(0.1)
    views = [encoder(noise(images)) for _ in range(2)]
    return keras.Model(images, keras.ops.stack(views, axis=1))


@pytest.fixture
def setup(rng):
    encoder = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(4)]
    )
    labels = np.arange(64) % 4
    images = (labels[:, None, None, None] + rng.normal(size=(64, 4, 4, 1))).astype("float32")
    model = two_view_model(encoder)
    model.compile(optimizer="adam", loss=keras_contrastive.InfoNCE(tau=0.5))
    return model, encoder, images, labels


def test_figures_reach_history_and_monitors(setup):
    model, encoder, images, labels = setup
    callback = EvaluationCallback(
        (images, labels), (images[:32], labels[:32]), model=encoder, space="features", knn_k=5, every_n_epochs=2
    )
    stopper = keras.callbacks.EarlyStopping(monitor="val_features_knn_accuracy", mode="max", patience=5)
    history = model.fit(images, epochs=4, batch_size=16, verbose=0, callbacks=[callback, stopper])
    assert len(history.history["val_features_knn_accuracy"]) == 2  # epochs 2 and 4
    for key in ["val_features_knn_accuracy", "val_features_uniformity", "val_features_tolerance"]:
        assert np.all(np.isfinite(history.history[key]))
    last = evaluate_encoder(encoder, (images, labels), (images[:32], labels[:32]), space="features", knn_k=5)
    assert history.history["val_features_uniformity"][-1] == pytest.approx(last["uniformity"], rel=1e-5)
    assert stopper.best == max(history.history["val_features_knn_accuracy"])
    assert [point["epoch"] for point in callback.curve] == [2, 4]
    assert callback.curve[-1]["uniformity"] == history.history["val_features_uniformity"][-1]


def test_the_projection_space_is_the_default_and_named_in_the_keys(rng):
    labels = np.arange(64) % 4
    images = (labels[:, None, None, None] / 5 + 0.2 * rng.uniform(size=(64, 8, 8, 1))).astype("float32")
    model = keras_contrastive.ContrastiveModel(
        keras_contrastive.encoders.small_cnn((8, 8, 1), width=4, feature_dim=8),
        keras_contrastive.encoders.projection_head("linear", 6),
        keras_contrastive.Augmenter(8),
    )
    model.compile(optimizer="adam", loss=keras_contrastive.InfoNCE(tau=0.5))
    callback = EvaluationCallback((images, labels), (images[:32], labels[:32]), knn_k=5, linear_probe_epochs=1)
    history = model.fit(images, labels, epochs=1, batch_size=32, verbose=0, callbacks=[callback])
    assert {"val_projection_knn_accuracy", "val_projection_uniformity", "val_projection_tolerance",
            "val_features_linear_accuracy"} <= set(history.history)
    projection = evaluate_encoder(model, (images, labels), (images[:32], labels[:32]), knn_k=5)
    assert history.history["val_projection_uniformity"][-1] == pytest.approx(projection["uniformity"], rel=1e-5)


def test_tensorboard_scalars_and_histograms(setup, tmp_path):
    model, encoder, images, labels = setup
    callback = EvaluationCallback(
        (images, labels),
        (images[:32], labels[:32]),
        model=encoder,
        projector=keras.layers.Dense(3),
        knn_k=5,
        augmenter=keras.layers.GaussianNoise(0.1),
        log_dir=str(tmp_path),
        linear_probe_epochs=1,
    )
    model.fit(images, epochs=1, batch_size=16, verbose=0, callbacks=[callback])
    tags = set()
    for path in tmp_path.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(value.tag for value in event.summary.value)
    assert {"val_projection_knn_accuracy", "val_projection_uniformity", "val_projection_tolerance",
            "val_features_linear_accuracy", "val_projection_positive_similarity",
            "val_projection_nearest_negative_similarity"} <= tags


def test_bad_every_n_epochs_raises(setup):
    _, _, images, labels = setup
    with pytest.raises(ValueError, match="Received: every_n_epochs=0"):
        EvaluationCallback((images, labels), (images, labels), every_n_epochs=0)
