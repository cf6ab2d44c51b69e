"""The stateless augmenter: seeds, recipes, ranges and XLA."""

import numpy as np
import pytest
import tensorflow as tf

from keras_contrastive import Augmenter
from keras_contrastive.augmentation import augmentation_ops as aug


@pytest.fixture
def images(rng):
    return rng.uniform(size=(6, 32, 32, 3)).astype("float32")


@pytest.mark.parametrize("recipe", ["paper", "simclr"])
def test_same_seed_same_views_other_seed_other_views(images, recipe):
    augmenter = Augmenter(24, recipe=recipe)
    first = augmenter(images, seed=tf.constant([1, 2]))
    again = augmenter(images, seed=tf.constant([1, 2]))
    other = augmenter(images, seed=tf.constant([1, 3]))
    np.testing.assert_array_equal(first, again)
    assert np.abs(np.asarray(first) - np.asarray(other)).max() > 0.1
    assert first.shape == (6, 24, 24, 3)
    assert float(tf.reduce_min(first)) >= 0.0 and float(tf.reduce_max(first)) <= 1.0


def test_each_image_gets_its_own_transformation():
    same = np.broadcast_to(np.random.default_rng(0).uniform(size=(1, 16, 16, 3)), (4, 16, 16, 3))
    views = np.asarray(Augmenter(16)(same.astype("float32"), seed=tf.constant([0, 0])))
    for i in range(1, 4):
        assert np.abs(views[0] - views[i]).max() > 1e-3


def test_uint8_images_are_scaled_and_inference_only_resizes(images):
    as_uint8 = (images * 255).astype("uint8")
    out = Augmenter(32)(as_uint8, training=False)
    np.testing.assert_allclose(out, as_uint8 / 255.0, atol=1e-6)
    assert Augmenter(16)(images, training=False).shape == (6, 16, 16, 3)


@pytest.mark.parametrize("size", [24, 128])
def test_compiles_under_xla(rng, size):
    """Compiled, it is still seeded: same seed, same views; valid images."""
    augmenter = Augmenter(size, recipe="simclr")
    images = rng.uniform(size=(2, size + 8, size + 8, 3)).astype("float32")
    compiled = tf.function(lambda x, s: augmenter(x, seed=s), jit_compile=True)
    first = compiled(images, tf.constant([4, 5]))
    np.testing.assert_array_equal(first, compiled(images, tf.constant([4, 5])))
    assert np.abs(np.asarray(first) - np.asarray(compiled(images, tf.constant([4, 6])))).max() > 0.1
    assert first.shape == (2, size, size, 3)
    assert 0.0 <= float(tf.reduce_min(first)) and float(tf.reduce_max(first)) <= 1.0


def test_grey_images_keep_one_channel(rng):
    grey = rng.uniform(size=(3, 28, 28, 1)).astype("float32")
    assert Augmenter(28)(grey, seed=tf.constant([1, 1])).shape == (3, 28, 28, 1)


def test_full_crop_of_the_same_size_is_the_identity(images):
    crop = aug.random_resized_crop(images, tf.constant([0, 1]), (32, 32), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_allclose(crop, images, atol=1e-5)


def test_flip_with_probability_one_reverses_columns(images):
    np.testing.assert_array_equal(aug.random_flip(images, tf.constant([0, 1]), 1.0), images[:, :, ::-1])


def test_config_round_trip():
    augmenter = Augmenter((24, 20), recipe="simclr", jitter_strength=1.0, seed=3, jit_compile=False)
    restored = Augmenter.from_config(augmenter.get_config())
    assert restored.get_config() == augmenter.get_config()
    assert restored.jit_compile is False


def test_a_seed_gives_the_same_views_in_eager_graph_and_xla_steps(images):
    """The views are drawn by one XLA function wherever the augmenter runs."""
    augmenter = Augmenter(24)
    seed = tf.constant([7, 8])
    eager = augmenter(images, seed=seed)
    graph = tf.function(lambda x: augmenter(x, seed=seed))(images)
    xla = tf.function(lambda x: augmenter(x, seed=seed), jit_compile=True)(images)
    np.testing.assert_allclose(graph, eager, atol=1e-6)
    np.testing.assert_allclose(xla, eager, atol=1e-6)


def test_without_jit_compile_the_views_are_seeded_too(images):
    augmenter = Augmenter(24, jit_compile=False)
    first = augmenter(images, seed=tf.constant([1, 2]))
    np.testing.assert_array_equal(first, augmenter(images, seed=tf.constant([1, 2])))
    assert np.abs(np.asarray(first) - np.asarray(augmenter(images, seed=tf.constant([1, 3])))).max() > 0.1


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="Received: recipe='byol'"):
        Augmenter(32, recipe="byol")
    with pytest.raises(ValueError, match="Received: image_size=\\(0, 0\\)"):
        Augmenter(0)
    with pytest.raises(ValueError, match="Received: jit_compile='yes'"):
        Augmenter(32, jit_compile="yes")


def test_float_images_in_0_255_raise_instead_of_clipping_to_white(images):
    augmenter = Augmenter(images.shape[1])
    augmenter(images, training=True)  # floats in [0, 1] are fine
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Float images must be in \[0, 1\]"):
        augmenter(images * 255.0, training=True)
