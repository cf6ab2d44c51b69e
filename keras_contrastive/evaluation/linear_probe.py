"""The linear probe: a softmax classifier on frozen, standardised features."""

import keras
import numpy as np

from keras_contrastive.evaluation.evaluation_utils import check_features
from keras_contrastive.evaluation.evaluation_utils import check_labels
from keras_contrastive.utils import validation


def linear_probe_accuracy(
    train_features,
    train_labels,
    test_features,
    test_labels,
    epochs=30,
    batch_size=256,
    learning_rate=1e-3,
    num_classes=None,
    seed=0,
):
    """Trains a Keras `Dense` softmax on frozen features; returns test top-1.

    The features are standardised with the train split's mean and standard
    deviation, then a single `Dense` layer is trained with Adam on the
    cross-entropy. The paper trains 100 epochs with SGD at lr 30 on raw
    features; standardising lets Adam's default scale converge in fewer.

    Args:
        train_features: `(M, dim)` frozen train embeddings.
        train_labels: `(M,)` integer labels.
        test_features: `(N, dim)` frozen test embeddings.
        test_labels: `(N,)` integer labels.
        epochs: Training epochs. Defaults to `30`.
        batch_size: Batch size. Defaults to `256`.
        learning_rate: Adam learning rate. Defaults to `1e-3`.
        num_classes: Number of classes; None infers it. Defaults to `None`.
        seed: Seed of the initialisation and the shuffling. Defaults to `0`.

    Returns:
        The test accuracy, a float in [0, 1].
    """
    train_features = check_features(train_features, "train_features")
    train_labels = check_labels(train_labels, len(train_features), "train_labels")
    test_features = check_features(test_features, "test_features")
    test_labels = check_labels(test_labels, len(test_features), "test_labels")
    epochs = validation.check_optional_positive_int("epochs", epochs)
    learning_rate = validation.check_positive_float("learning_rate", learning_rate)
    num_classes = num_classes or int(max(train_labels.max(), test_labels.max())) + 1

    mean = train_features.mean(axis=0)
    scale = train_features.std(axis=0) + 1e-6
    keras.utils.set_random_seed(seed)
    probe = keras.Sequential(
        [
            keras.Input((train_features.shape[1],)),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    probe.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    probe.fit(
        (train_features - mean) / scale,
        train_labels,
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
    )
    predictions = probe.predict((test_features - mean) / scale, verbose=0)
    return float(np.mean(predictions.argmax(axis=1) == test_labels))
