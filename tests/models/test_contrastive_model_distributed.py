"""The central check: one step under MirroredStrategy equals one on one device.

Two logical CPUs (set up in the root conftest), the same global batch, the
same initial weights and the same fixed views (rank-5 images), so the only
difference is the distribution. Negative tests prove the check can fail.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_contrastive as kc
from keras_contrastive import distribute

GLOBAL_BATCH = 8


def make_model(negatives="batch", views=2, batch_norm=False, sync_batch_norm=False):
    layers = [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(8)]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    encoder = keras.Sequential(layers)
    projector = keras.Sequential([keras.layers.Dense(6)])
    if negatives == "bank":
        negatives = kc.MemoryBank(2 * GLOBAL_BATCH, seed=3)
    return kc.ContrastiveModel(
        encoder, projector, views=views, negatives=negatives, sync_batch_norm=sync_batch_norm
    )


def make_data(rng, views=2, with_index=False):
    shape = (GLOBAL_BATCH, views, 4, 4, 1) if views > 1 else (GLOBAL_BATCH, 4, 4, 1)
    images = rng.uniform(size=shape).astype("float32")
    labels = np.arange(GLOBAL_BATCH) % 3
    if with_index:
        data = {"image": images, "label": labels, "index": np.arange(GLOBAL_BATCH) * 2}
        return tf.data.Dataset.from_tensor_slices(data).batch(GLOBAL_BATCH)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(GLOBAL_BATCH)


def one_step(strategy, loss, weights, data, **model_args):
    with strategy.scope():
        model = make_model(**model_args)
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss)
    history = model.fit(data, epochs=1, verbose=0)
    return history.history["loss"][0], model.get_weights()


def assert_same_step(single, distributed, atol=1e-5):
    assert distributed[0] == pytest.approx(single[0], abs=atol)
    for a, b in zip(single[1], distributed[1]):
        np.testing.assert_allclose(b, a, atol=atol)


def initial_weights(**model_args):
    return make_model(**model_args).get_weights()


LOSSES = {
    "info_nce": lambda: kc.InfoNCE(tau=0.2),
    "hard": lambda: kc.HardContrastiveLoss(tau=0.2, num_negatives=5),
    "supcon": lambda: kc.InfoNCE(tau=0.2, label_mode="supervised"),
}


@pytest.mark.parametrize("name", LOSSES)
def test_mirrored_step_equals_single_device(rng, mirrored, name):
    data = make_data(rng)
    weights = initial_weights()
    single = one_step(tf.distribute.get_strategy(), LOSSES[name](), weights, data)
    distributed = one_step(mirrored, LOSSES[name](), weights, data)
    assert_same_step(single, distributed)


def test_memory_bank_step_equals_single_device(rng, mirrored):
    data = make_data(rng, views=1, with_index=True)
    weights = initial_weights(negatives="bank", views=1)
    single = one_step(tf.distribute.get_strategy(), kc.InfoNCE(tau=0.1), weights, data, negatives="bank", views=1)
    distributed = one_step(mirrored, kc.InfoNCE(tau=0.1), weights, data, negatives="bank", views=1)
    # The weights include the bank: every replica's update landed.
    assert_same_step(single, distributed)
    assert not np.allclose(single[1][-1], weights[-1])


def test_synchronised_batch_norm_step_equals_single_device(rng, mirrored):
    data = make_data(rng)
    weights = initial_weights(batch_norm=True)
    args = {"batch_norm": True, "sync_batch_norm": True}
    single = one_step(tf.distribute.get_strategy(), kc.InfoNCE(tau=0.2), weights, data, **args)
    distributed = one_step(mirrored, kc.InfoNCE(tau=0.2), weights, data, **args)
    assert_same_step(single, distributed)


def test_local_negatives_differ_from_the_global_batch(rng, mirrored):
    """Negative control: replica-local negatives are not the single-device step."""
    data = make_data(rng)
    weights = initial_weights()
    single = one_step(tf.distribute.get_strategy(), kc.InfoNCE(tau=0.2), weights, data)
    local = one_step(mirrored, kc.InfoNCE(tau=0.2), weights, data, negatives="local_batch")
    assert abs(local[0] - single[0]) > 1e-3


def test_stop_gradient_on_gathered_embeddings_is_detected(rng, mirrored, monkeypatch):
    """Negative control: the common stop-gradient shortcut changes the gradients."""
    data = make_data(rng)
    weights = initial_weights()
    single = one_step(tf.distribute.get_strategy(), kc.InfoNCE(tau=0.2), weights, data)
    gather = distribute.gather_global_batch

    def gather_without_gradient(*tensors):
        gathered, offset = gather(*tensors)
        return [tf.stop_gradient(t) for t in gathered], offset

    monkeypatch.setattr(distribute, "gather_global_batch", gather_without_gradient)
    shortcut = one_step(mirrored, kc.InfoNCE(tau=0.2), weights, data)
    assert shortcut[0] == pytest.approx(single[0], abs=1e-5)  # same loss value
    differences = [np.abs(a - b).max() for a, b in zip(single[1], shortcut[1])]
    assert max(differences) > 1e-3  # different update


def test_views_differ_across_replicas_and_views(mirrored):
    """The same images on both replicas still get four different views."""
    with mirrored.scope():
        model = kc.ContrastiveModel(
            keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten()]),
            augmenter=kc.Augmenter(8),
        )
        model.compile(optimizer="sgd", loss=kc.InfoNCE())
    images = tf.constant(np.random.default_rng(0).uniform(size=(2, 8, 8, 3)), "float32")

    @tf.function
    def views():
        return mirrored.run(lambda: model._project_views(images, tf.constant(0, "int64"), True))

    per_replica = mirrored.experimental_local_results(views())
    all_views = np.concatenate([np.asarray(v).reshape(2, 2, -1) for v in per_replica], axis=1)
    for sample in all_views:  # (replicas * views, dim)
        distances = np.abs(sample[:, None, :] - sample[None, :, :]).max(axis=-1)
        assert np.all(distances[~np.eye(4, dtype=bool)] > 1e-3)


def test_jit_compile_under_mirrored_compiles_the_loss_kernel(rng, mirrored):
    data = make_data(rng)
    with mirrored.scope():
        model = make_model()
        with pytest.warns(UserWarning, match="loss kernel is compiled with XLA"):
            model.compile(optimizer="sgd", loss=kc.InfoNCE(tau=0.2), jit_compile=True)
    history = model.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model._loss_kernel._jit_compile is True
