"""Embedding datasets in every form the evaluation functions accept."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_contrastive.evaluation import embed_dataset


@pytest.fixture
def encoder():
    return keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])


@pytest.fixture
def data(rng):
    return rng.normal(size=(10, 4, 4, 1)).astype("float32"), np.arange(10) % 3


def test_every_form_gives_the_same_features(encoder, data):
    images, labels = data
    expected = encoder.predict(images, verbose=0)
    forms = [
        data,
        tf.data.Dataset.from_tensor_slices(data),
        tf.data.Dataset.from_tensor_slices(data).batch(4),
        tf.data.Dataset.from_tensor_slices({"image": images, "label": labels}),
        tf.data.Dataset.from_tensor_slices((images, labels, np.ones(10))).batch(3),
    ]
    for form in forms:
        features, got_labels = embed_dataset(encoder, form, batch_size=4)
        np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got_labels, labels)


def test_unlabelled_data_raises(encoder, data):
    with pytest.raises(ValueError, match="must yield \\(images, labels\\)"):
        embed_dataset(encoder, tf.data.Dataset.from_tensor_slices(data[0]))
    with pytest.raises(ValueError, match="Received: data=ndarray"):
        embed_dataset(encoder, data[0])
