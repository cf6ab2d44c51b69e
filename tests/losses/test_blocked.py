"""The memory-bounded blocked path equals the dense path, values and gradients."""

import keras
import numpy as np
import pytest

import keras_contrastive as kc
from keras_contrastive import losses
from tests.backends import tensorflow_only
from tests.backends import value_and_gradients as backend_value_and_gradients

FUNCTIONS = {
    "info_nce": (losses.info_nce, {}),
    "hard": (losses.hard_contrastive_loss, {"num_negatives": 5}),
    "hard_alpha": (losses.hard_contrastive_loss, {"alpha": 0.3}),
    "simple": (losses.simple_contrastive_loss, {}),
    "hard_simple": (losses.hard_simple_contrastive_loss, {"num_negatives": 4}),
}


def value_and_gradients(name, y_pred, extra, labels, label_mode, block_size, tau=0.2):
    """The per-sample losses and the gradients (embeddings, tau, extras) of
    their sum weighted 1, 2, ..., batch."""
    functional, selection = FUNCTIONS[name]
    extra_labels = None if extra is None or label_mode is None else np.arange(len(extra)) % 3

    def per_sample(y_pred, tau, *extra):
        return functional(
            labels, y_pred, tau=tau, label_mode=label_mode,
            extra_negatives=extra[0] if extra else None, extra_labels=extra_labels,
            block_size=block_size, **selection,
        )

    arguments = [y_pred, np.float32(tau)] + ([] if extra is None else [extra])
    weights = np.arange(1.0, len(y_pred) + 1.0, dtype="float32")
    value, gradients = backend_value_and_gradients(per_sample, arguments, weights)
    return [value, *gradients]


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("batch, views, block_size", [(7, 2, 3), (10, 2, 8), (6, 3, 4), (5, 2, 64)])
@pytest.mark.parametrize("with_extra", [False, True])
def test_blocked_equals_dense(rng, name, batch, views, block_size, with_extra):
    y_pred = rng.normal(size=(batch, views, 6)).astype("float32")
    extra = rng.normal(size=(9, 6)).astype("float32") if with_extra else None
    dense = value_and_gradients(name, y_pred, extra, None, None, None)
    blocked = value_and_gradients(name, y_pred, extra, None, None, block_size)
    for a, b in zip(dense, blocked):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("label_mode", ["supervised", "mask"])
def test_blocked_equals_dense_with_labels(rng, name, label_mode):
    y_pred = rng.normal(size=(9, 2, 6)).astype("float32")
    extra = rng.normal(size=(6, 6)).astype("float32")
    labels = np.arange(9) % 3
    dense = value_and_gradients(name, y_pred, extra, labels, label_mode, None)
    blocked = value_and_gradients(name, y_pred, extra, labels, label_mode, 4)
    for a, b in zip(dense, blocked):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_memory_bank_setting_blocked(rng):
    y_pred = rng.normal(size=(6, 1, 8)).astype("float32")
    bank = rng.normal(size=(40, 8)).astype("float32")
    kwargs = dict(label_mode="supervised", extra_negatives=bank, extra_labels=np.arange(40), in_batch_negatives=False)
    dense = losses.info_nce(np.arange(6) * 3, y_pred, tau=0.1, **kwargs)
    blocked = losses.info_nce(np.arange(6) * 3, y_pred, tau=0.1, block_size=4, **kwargs)
    np.testing.assert_allclose(blocked, dense, rtol=1e-5)


@tensorflow_only
def test_blocked_compiles_under_xla(rng):
    import tensorflow as tf

    y_pred = tf.constant(rng.normal(size=(9, 2, 6)).astype("float32"))

    def loss_and_grad(y, block_size):
        with tf.GradientTape() as tape:
            tape.watch(y)
            value = tf.reduce_sum(losses.hard_contrastive_loss(None, y, num_negatives=4, block_size=block_size))
        return value, tape.gradient(value, y)

    compiled = tf.function(lambda y: loss_and_grad(y, 4), jit_compile=True)
    value, grad = compiled(y_pred)
    dense_value, dense_grad = loss_and_grad(y_pred, None)
    np.testing.assert_allclose(value, dense_value, rtol=1e-5)
    np.testing.assert_allclose(grad, dense_grad, rtol=1e-5, atol=1e-6)


@tensorflow_only
def test_mirrored_step_with_blocks_equals_single_device(rng, mirrored):
    import tensorflow as tf

    views = rng.uniform(size=(8, 2, 4, 4, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(views).batch(8)

    def one_step(strategy, block_size):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = kc.ContrastiveModel(
                keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(6)])
            )
            model.compile(optimizer=keras.optimizers.SGD(0.5), loss=kc.InfoNCE(tau=0.2, block_size=block_size))
        loss = model.fit(data, epochs=1, verbose=0).history["loss"][0]
        return loss, model.get_weights()

    single = one_step(tf.distribute.get_strategy(), None)
    distributed = one_step(mirrored, 3)
    assert distributed[0] == pytest.approx(single[0], abs=1e-5)
    for a, b in zip(single[1], distributed[1]):
        np.testing.assert_allclose(b, a, atol=1e-5)


@pytest.mark.parametrize("label_mode", [None, "supervised"])
def test_automatic_choice_blocks_only_large_batches(monkeypatch, rng, label_mode):
    from keras_contrastive.losses import contrastive_utils

    calls = []
    # On TensorFlow the plain loss blocks in `log_denominators`; the general
    # one (and every loss on JAX) in `blocked_anchor_losses`.
    plain = label_mode is None and keras.backend.backend() == "tensorflow"
    spied = "log_denominators" if plain else "blocked_anchor_losses"
    original = getattr(contrastive_utils, spied)

    def spy(*args, **kwargs):
        block_size = args[-1] if plain else args[2]
        if block_size is not None:
            calls.append(block_size)
        return original(*args, **kwargs)

    monkeypatch.setattr(contrastive_utils, spied, spy)
    monkeypatch.setattr(contrastive_utils, "AUTO_BLOCK_ENTRIES", 100)
    labels = np.arange(8) % 3
    losses.info_nce(labels[:4], rng.normal(size=(4, 2, 3)).astype("float32"), label_mode=label_mode)
    assert calls == []  # 64 pairs
    losses.info_nce(labels, rng.normal(size=(8, 2, 3)).astype("float32"), label_mode=label_mode)
    assert calls == [contrastive_utils.auto_block_size(16)]  # 256 pairs


def test_bad_block_size_raises():
    with pytest.raises(ValueError, match="Received: block_size=0"):
        kc.InfoNCE(block_size=0)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="XLA's memory analysis of a JAX step: the JAX pass runs it")
@pytest.mark.parametrize("name", ["info_nce", "hard_alpha", "simple"])
def test_blocked_memory_grows_with_the_block_on_jax(rng, name):
    """The compiled gradient's scratch memory: at least the `A x A` matrix
    densely, a few `block x A` blocks blocked (2,048 anchors, blocks of 64)."""
    import jax
    import jax.numpy as jnp

    functional, selection = FUNCTIONS[name]
    y_pred = rng.normal(size=(1024, 2, 16)).astype("float32")
    matrix_bytes, block_bytes = 2048 * 2048 * 4, 64 * 2048 * 4

    def scratch_bytes(block_size):
        def total(y):
            return jnp.sum(functional(None, y, tau=0.2, block_size=block_size, **selection))

        compiled = jax.jit(jax.grad(total)).lower(y_pred).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    assert scratch_bytes(None) >= matrix_bytes
    assert scratch_bytes(64) <= 4 * block_bytes
