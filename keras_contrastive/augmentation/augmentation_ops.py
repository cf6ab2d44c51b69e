"""Stateless image augmentations that compile under XLA.

Every function takes a batch of float images in [0, 1] of shape
`(batch, height, width, channels)` and a stateless seed (an int32 tensor of
shape `(2,)`), and draws an independent transformation per image. Being
stateless, the same seed gives the same views anywhere: `ContrastiveModel`
folds the step, the view index and the replica id into the seed, so views
differ across views and replicas and a resumed run replays the same views
(within one compilation mode: XLA and the default kernels map a seed to
different numbers; `Augmenter` always draws its views under XLA).
Keras' own random layers keep their generator state in a variable that is
mirrored across replicas, so every replica would draw the same numbers.
"""

import math

import tensorflow as tf

# Named rather than "auto_select", so views do not change with the device.
# TensorFlow's XLA and default kernels still map a seed to different numbers:
# the same seed gives the same views within one compilation mode.
RNG_ALGORITHM = "philox"


def fold_seed(seed, *values):
    """Derives a new stateless seed from `seed` and integers `values`."""
    for value in values:
        seed = tf.random.experimental.stateless_fold_in(
            seed, tf.cast(value, "int64"), alg=RNG_ALGORITHM
        )
    return seed


def _uniform(seed, batch, low, high):
    return tf.random.stateless_uniform(
        [batch], seed, minval=low, maxval=high, alg=RNG_ALGORITHM
    )


def _coin(seed, batch, probability):
    return _uniform(seed, batch, 0.0, 1.0) < probability


def _gather_rows_and_columns(images, rows, columns):
    """`images[b, rows[b, i], columns[b, j]]` for every b, i, j."""
    picked_rows = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.gather(picked_rows, columns, axis=2, batch_dims=1)


def _bilinear_sample(images, ys, xs):
    """Samples `images` at per-image row coordinates `ys` and columns `xs`.

    Gather-based bilinear interpolation: XLA compiles it, unlike
    `tf.image.crop_and_resize`.
    """
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    y0, x0 = tf.floor(ys), tf.floor(xs)
    wy, wx = (ys - y0)[:, :, None, None], (xs - x0)[:, None, :, None]

    def clip(index, size):
        return tf.clip_by_value(tf.cast(index, "int32"), 0, size - 1)

    y0i, y1i = clip(y0, height), clip(y0 + 1, height)
    x0i, x1i = clip(x0, width), clip(x0 + 1, width)
    top = (1 - wx) * _gather_rows_and_columns(images, y0i, x0i) + wx * (
        _gather_rows_and_columns(images, y0i, x1i)
    )
    bottom = (1 - wx) * _gather_rows_and_columns(images, y1i, x0i) + wx * (
        _gather_rows_and_columns(images, y1i, x1i)
    )
    return (1 - wy) * top + wy * bottom


def random_resized_crop(images, seed, size, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)):
    """Crops a random area and aspect ratio of each image, resized to `size`.

    As torchvision's `RandomResizedCrop`, without its retry loop: the crop's
    area fraction is uniform in `scale`, its log aspect ratio uniform in
    `log(ratio)`, and its sides are clipped to the image.
    """
    batch = tf.shape(images)[0]
    height = tf.cast(tf.shape(images)[1], "float32")
    width = tf.cast(tf.shape(images)[2], "float32")
    area = _uniform(fold_seed(seed, 0), batch, scale[0], scale[1])
    log_ratio = _uniform(
        fold_seed(seed, 1), batch, math.log(ratio[0]), math.log(ratio[1])
    )
    aspect = tf.exp(log_ratio)
    crop_height = tf.minimum(tf.sqrt(area / aspect), 1.0) * height
    crop_width = tf.minimum(tf.sqrt(area * aspect), 1.0) * width
    top = _uniform(fold_seed(seed, 2), batch, 0.0, 1.0) * (height - crop_height)
    left = _uniform(fold_seed(seed, 3), batch, 0.0, 1.0) * (width - crop_width)
    out_height, out_width = size
    steps_y = (tf.range(out_height, dtype="float32") + 0.5) / out_height
    steps_x = (tf.range(out_width, dtype="float32") + 0.5) / out_width
    ys = top[:, None] + steps_y[None, :] * crop_height[:, None] - 0.5
    xs = left[:, None] + steps_x[None, :] * crop_width[:, None] - 0.5
    return _bilinear_sample(images, ys, xs)


def random_flip(images, seed, probability=0.5):
    """Flips each image left-right with `probability`."""
    flip = _coin(seed, tf.shape(images)[0], probability)
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def _grayscale(images):
    if images.shape[-1] == 1:
        return images
    weights = tf.constant([0.299, 0.587, 0.114], images.dtype)
    gray = tf.reduce_sum(images * weights, axis=-1, keepdims=True)
    return tf.broadcast_to(gray, tf.shape(images))


def random_grayscale(images, seed, probability=0.2):
    """Turns each colour image grey with `probability`."""
    if images.shape[-1] == 1:
        return images
    gray = _coin(seed, tf.shape(images)[0], probability)
    return tf.where(gray[:, None, None, None], _grayscale(images), images)


def color_jitter(
    images,
    seed,
    brightness=0.4,
    contrast=0.4,
    saturation=0.4,
    hue=0.1,
    probability=1.0,
):
    """Jitters brightness, contrast, saturation and hue of each image.

    Factors as torchvision's `ColorJitter`: brightness and contrast and
    saturation multiply by a factor uniform in `[1 - x, 1 + x]`, hue shifts
    by a fraction of the colour wheel uniform in `[-hue, hue]`; applied in
    that order, to each image with `probability`. Grey images get brightness
    and contrast only.
    """
    batch = tf.shape(images)[0]
    jittered = images

    def factor(index, amount):
        return _uniform(fold_seed(seed, index), batch, 1 - amount, 1 + amount)[
            :, None, None, None
        ]

    if brightness:
        jittered = jittered * factor(0, brightness)
    if contrast:
        mean = tf.reduce_mean(_grayscale(jittered), axis=[1, 2, 3], keepdims=True)
        jittered = (jittered - mean) * factor(1, contrast) + mean
    if images.shape[-1] == 3:
        if saturation:
            gray = _grayscale(jittered)
            jittered = (jittered - gray) * factor(2, saturation) + gray
        if hue:
            jittered = _shift_hue(
                tf.clip_by_value(jittered, 0.0, 1.0),
                _uniform(fold_seed(seed, 3), batch, -hue, hue),
            )
    jittered = tf.clip_by_value(jittered, 0.0, 1.0)
    apply = _coin(fold_seed(seed, 4), batch, probability)
    return tf.where(apply[:, None, None, None], jittered, images)


def _shift_hue(images, shift):
    hsv = tf.image.rgb_to_hsv(images)
    hue = tf.math.floormod(hsv[..., 0] + shift[:, None, None], 1.0)
    return tf.image.hsv_to_rgb(tf.stack([hue, hsv[..., 1], hsv[..., 2]], axis=-1))


def random_gaussian_blur(images, seed, probability=0.5, sigma=(0.1, 2.0)):
    """Blurs each image with `probability`, sigma uniform in `sigma` (pixels).

    The kernel spans about 10% of the image side (SimCLR); each image gets
    its own separable kernel, applied as weighted shifts so XLA compiles it.
    """
    batch = tf.shape(images)[0]
    radius = max(1, int(images.shape[1]) // 20)
    sigmas = _uniform(seed, batch, sigma[0], sigma[1])
    offsets = tf.range(-radius, radius + 1, dtype="float32")
    kernels = tf.exp(-0.5 * (offsets[None, :] / sigmas[:, None]) ** 2)
    kernels /= tf.reduce_sum(kernels, axis=1, keepdims=True)
    blurred = images
    for axis in (1, 2):
        padding = [[0, 0], [0, 0], [0, 0], [0, 0]]
        padding[axis] = [radius, radius]
        padded = tf.pad(blurred, padding, mode="REFLECT")
        size = tf.shape(blurred)[axis]
        total = 0.0
        for index in range(2 * radius + 1):
            window = tf.gather(padded, tf.range(index, index + size), axis=axis)
            total += kernels[:, index][:, None, None, None] * window
        blurred = total
    apply = _coin(fold_seed(seed, 1), batch, probability)
    return tf.where(apply[:, None, None, None], blurred, images)
