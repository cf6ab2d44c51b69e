"""Subprocess entry points for the multi-worker and kill-and-resume tests.

Run as `python -m tests.models.distributed_scripts <command> ...`; each writes
its result (weights, loss, epochs run) to an `.npz` file. Everything is
seeded and deterministic, so separate processes can be compared exactly.
"""

import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_contrastive as kc  # noqa: E402

GLOBAL_BATCH = 8


def build_model():
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(8)])
    projector = keras.Sequential([keras.layers.Dense(6)])
    return kc.ContrastiveModel(encoder, projector, augmenter=kc.Augmenter(6), seed=5)


def dataset(num_batches):
    images = np.random.default_rng(0).uniform(size=(GLOBAL_BATCH * num_batches, 6, 6, 1))
    data = tf.data.Dataset.from_tensor_slices(images.astype("float32")).batch(GLOBAL_BATCH)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options)


def save(path, model, **extra):
    np.savez(path, *model.get_weights(), **extra)


def multi_worker_step(out):
    """One step of fixed views; under TF_CONFIG, one of two workers."""
    strategy = (
        tf.distribute.MultiWorkerMirroredStrategy()
        if "TF_CONFIG" in os.environ
        else tf.distribute.get_strategy()
    )
    with strategy.scope():
        model = build_model()
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=kc.InfoNCE(tau=0.2))
    # Ready-made views (rank 5), identical in every process.
    views = np.random.default_rng(1).uniform(size=(GLOBAL_BATCH, 2, 6, 6, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(views).batch(GLOBAL_BATCH)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    history = model.fit(data.with_options(options), epochs=1, verbose=0)
    save(out, model, loss=history.history["loss"][0])


class KillAt(keras.callbacks.Callback):
    """Kills this process (SIGKILL) after the given global step."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if self.step is not None and int(self.model.optimizer.iterations) == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class CountEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def train_with_backup(out, backup_dir, kill_at_step=None):
    """Three epochs of four steps with BackupAndRestore, optionally killed."""
    tf.config.experimental.enable_op_determinism()
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=kc.InfoNCE(tau=0.2))
    counter = CountEpochs()
    callbacks = [keras.callbacks.BackupAndRestore(backup_dir), counter, KillAt(kill_at_step)]
    model.fit(dataset(4), epochs=3, verbose=0, callbacks=callbacks)
    save(out, model, epochs_run=np.array(counter.epochs), steps=int(model.optimizer.iterations))


if __name__ == "__main__":
    command, arguments = sys.argv[1], json.loads(sys.argv[2])
    {"multi_worker_step": multi_worker_step, "train_with_backup": train_with_backup}[command](**arguments)
