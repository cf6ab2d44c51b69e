"""The same computations on whichever Keras backend runs them.

`tests/test_jax_backend.py` runs these in-process on TensorFlow and as
`KERAS_BACKEND=jax python -m tests.backend_scripts <command> <json>` in a
subprocess, and compares the two: every loss's values and gradients, every
metric's value, and a few `fit` steps of a plain two-view Keras model.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402
from keras import ops  # noqa: E402

import keras_contrastive as kc  # noqa: E402
from keras_contrastive import metrics  # noqa: E402
from tests.backends import value_and_gradients  # noqa: E402
from tests.losses.test_blocked import FUNCTIONS as LOSS_FUNCTIONS  # noqa: E402

# setting: (label_mode, extra negatives?, extra labels?, block_size)
SETTINGS = {
    "plain": (None, False, False, None),
    "extras": (None, True, False, None),
    "supervised": ("supervised", True, True, None),
    "mask": ("mask", True, True, None),
    "blocked": (None, True, False, 3),
    "blocked_supervised": ("supervised", True, True, 4),
}
METRICS = {
    "uniformity": metrics.Uniformity,
    "tolerance": metrics.Tolerance,
    "alignment": metrics.Alignment,
    "positive_similarity": metrics.PositiveSimilarity,
    "nearest_negatives": lambda: metrics.NearestNegativeSimilarity(k=4),
    "contrastive_accuracy": metrics.ContrastiveAccuracy,
    "penalty_entropy": lambda: metrics.PenaltyEntropy(tau=0.2),
    "effective_negatives": lambda: metrics.EffectiveNegatives(tau=0.2),
}


def inputs():
    rng = np.random.default_rng(7)
    return {
        "y_pred": rng.normal(size=(9, 2, 6)).astype("float32"),
        "labels": np.arange(9) % 3,
        "extras": rng.normal(size=(7, 6)).astype("float32"),
        "extra_labels": np.arange(7) % 4,
    }


def loss_results():
    """`{case/value, case/grad_<argument>}` for every loss and setting."""
    data, results = inputs(), {}
    weights = np.arange(1.0, 10.0, dtype="float32")
    for name, (function, selection) in LOSS_FUNCTIONS.items():
        for setting, (label_mode, with_extras, with_labels, block_size) in SETTINGS.items():

            def per_sample(y_pred, tau, extras, function=function, selection=selection,
                           label_mode=label_mode, with_extras=with_extras,
                           with_labels=with_labels, block_size=block_size):
                return function(
                    data["labels"] if label_mode else None, y_pred, tau=tau, label_mode=label_mode,
                    extra_negatives=extras if with_extras else None,
                    extra_labels=data["extra_labels"] if with_labels else None,
                    block_size=block_size, **selection,
                )

            arguments = [data["y_pred"], np.float32(0.2), data["extras"]]
            value, gradients = value_and_gradients(per_sample, arguments, weights)
            case = f"{name}/{setting}"
            results[f"{case}/value"] = value
            for argument, gradient in zip(["y_pred", "tau", "extras"], gradients):
                results[f"{case}/grad_{argument}"] = gradient
    return results


def metric_results():
    data, results = inputs(), {}
    for name, make in METRICS.items():
        metric = make()
        metric.update_state(data["labels"], data["y_pred"])
        metric.update_state(data["labels"][:5], data["y_pred"][:5] * 2.0)
        results[f"metric/{name}"] = ops.convert_to_numpy(metric.result())
    return results


def two_view_model():
    """A plain Keras model from digits to `(batch, 2, dim)`: the image and
    its mirror image through one encoder (deterministic views, so both
    backends see the same inputs)."""
    images = keras.Input((8, 8, 1))
    encoder = keras.Sequential(
        [layers.Flatten(), layers.Dense(32, activation="relu"), layers.Dense(16)], name="encoder"
    )
    views = [encoder(images), encoder(ops.flip(images, axis=2))]
    return keras.Model(images, ops.stack(views, axis=1))


def digits():
    train_images, train_labels = kc.data.embedded.load_digits_splits()["train"]
    return (train_images[:512] / 255.0).astype("float32"), train_labels[:512]


class BatchLosses(keras.callbacks.Callback):
    """Each batch's own loss (Keras logs the epoch's running mean)."""

    def __init__(self):
        super().__init__()
        self.losses = []
        self._previous_mean = 0.0

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        self.losses.append(mean * (batch + 1) - self._previous_mean * batch)
        self._previous_mean = mean


def fit_losses(weights, epochs=3):
    """Per-batch losses of `fit` from `weights`: InfoNCE(tau=0.2), Adam."""
    model = two_view_model()
    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=kc.InfoNCE(tau=0.2))
    images, labels = digits()
    recorder = BatchLosses()
    model.fit(images, labels, batch_size=128, epochs=epochs, shuffle=False, verbose=0,
              callbacks=[recorder])
    return np.array(recorder.losses)


def main(command, arguments):
    if command == "results":
        np.savez(arguments["output"], **loss_results(), **metric_results())
    elif command == "fit":
        with np.load(arguments["weights"]) as stored:
            weights = [stored[f"arr_{index}"] for index in range(len(stored.files))]
        np.save(arguments["output"], fit_losses(weights))
    else:
        raise ValueError(f"Unknown command. Received: {command!r}")


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
