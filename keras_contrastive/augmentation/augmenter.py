"""The view-making augmenter: the paper's and SimCLR's recipes, XLA-ready."""

import keras
import tensorflow as tf

from keras_contrastive.api_export import register
from keras_contrastive.augmentation import augmentation_ops as aug

RECIPES = ("paper", "simclr")


@register
class Augmenter(keras.layers.Layer):
    """Makes one random view of each image, from a stateless seed.

    Recipes:

    - `"paper"` (Wang & Liu 2021, after InstDisc): random resized crop with
      scale 0.2-1, colour jitter 0.4 (brightness, contrast, saturation, hue),
      random grayscale 0.2, horizontal flip.
    - `"simclr"` (Chen et al. 2020): random resized crop with scale 0.08-1,
      flip, colour jitter of strength `s` (0.8s, 0.8s, 0.8s, 0.2s) with
      probability 0.8, grayscale 0.2.

    Both add SimCLR's Gaussian blur (probability 0.5) for images of 96
    pixels or more. Every operation is a stateless gather or elementwise op,
    so the augmenter compiles under XLA (Keras' `RandomCrop` and
    `RandomZoom` do not) and two calls with the same seed give the same
    views. Inputs are uint8 in [0, 255] or floats in [0, 1]; outputs are
    float32 in [0, 1] of size `image_size`. With `training=False` the images
    are only converted and resized.

    The views are drawn by one XLA-compiled function (`jit_compile=True`),
    also inside a training step that is not compiled (Keras' default on a
    CPU): fused, its few dozen small elementwise ops cost half as much, and
    a seed gives the same views whether or not the step is compiled
    (TensorFlow's stateless kernels and XLA's map a seed to different
    numbers).

    Args:
        image_size: Output `(height, width)`, or an int for square images.
        recipe: `"paper"` or `"simclr"`. Defaults to `"paper"`.
        jitter_strength: SimCLR's colour strength `s`; the paper's recipe
            uses 0.4 for every factor. Defaults to `0.5` (SimCLR's CIFAR).
        seed: Seed of the views drawn when `call` gets no seed. Defaults to
            `None`.
        jit_compile: Whether to draw the views in an XLA-compiled function.
            Defaults to `True`.
        **kwargs: Base `Layer` arguments.

    Example:

    >>> import numpy as np
    >>> augmenter = Augmenter(image_size=24)
    >>> images = np.random.default_rng(0).uniform(size=(4, 32, 32, 3))
    >>> augmenter(images, seed=tf.constant([1, 2])).shape
    TensorShape([4, 24, 24, 3])
    """

    def __init__(
        self,
        image_size,
        recipe="paper",
        jitter_strength=0.5,
        seed=None,
        jit_compile=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        image_size = tuple(image_size)
        if len(image_size) != 2 or min(image_size) < 1:
            raise ValueError(
                "`image_size` must be a positive int or (height, width). "
                f"Received: image_size={image_size}"
            )
        if recipe not in RECIPES:
            raise ValueError(
                f"`recipe` must be one of {RECIPES}. Received: recipe={recipe!r}"
            )
        if not isinstance(jit_compile, bool):
            raise ValueError(
                f"`jit_compile` must be True or False. Received: jit_compile={jit_compile!r}"
            )
        self.image_size = image_size
        self.recipe = recipe
        self.jitter_strength = jitter_strength
        self.seed = seed
        self.jit_compile = jit_compile
        self._seed_generator = keras.random.SeedGenerator(seed)
        self._random_view = tf.function(self._draw_view, jit_compile=jit_compile)

    def call(self, images, seed=None, training=True):
        if images.dtype != tf.uint8:
            # Floats in [0, 255] would all clip to 1: a blank image.
            tf.debugging.assert_less_equal(
                tf.reduce_max(tf.cast(images, "float32")), 1.0 + 1e-3,
                message="Float images must be in [0, 1]: divide images in [0, 255] by "
                "255, or pass uint8. Received a maximum of (below)",
            )
        if not training:
            return self._resize(to_unit_float(images))
        if seed is None:
            seed = tf.cast(self._seed_generator.next(), "int32")
        return self._random_view(images, seed)

    def _draw_view(self, images, seed):
        images = to_unit_float(images)
        if self.recipe == "paper":
            images = aug.random_resized_crop(
                images, aug.fold_seed(seed, 0), self.image_size, scale=(0.2, 1.0)
            )
            images = aug.color_jitter(images, aug.fold_seed(seed, 1), 0.4, 0.4, 0.4, 0.4)
            images = aug.random_grayscale(images, aug.fold_seed(seed, 2), 0.2)
        else:
            s = self.jitter_strength
            images = aug.random_resized_crop(
                images, aug.fold_seed(seed, 0), self.image_size, scale=(0.08, 1.0)
            )
            images = aug.color_jitter(
                images, aug.fold_seed(seed, 1), 0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s,
                probability=0.8,
            )
            images = aug.random_grayscale(images, aug.fold_seed(seed, 2), 0.2)
        images = aug.random_flip(images, aug.fold_seed(seed, 3))
        if min(self.image_size) >= 96:
            images = aug.random_gaussian_blur(images, aug.fold_seed(seed, 4))
        return images

    def _resize(self, images):
        if tuple(images.shape[1:3]) == self.image_size:
            return images
        return tf.image.resize(images, self.image_size)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.image_size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "recipe": self.recipe,
                "jitter_strength": self.jitter_strength,
                "seed": self.seed,
                "jit_compile": self.jit_compile,
            }
        )
        return config


def to_unit_float(images):
    """uint8 images to float32 in [0, 1]; float images cast to float32."""
    if images.dtype == tf.uint8:
        return tf.cast(images, "float32") / 255.0
    return tf.cast(images, "float32")
