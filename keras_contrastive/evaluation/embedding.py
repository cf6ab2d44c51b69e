"""Embedding a dataset with an encoder, in batches."""

import numpy as np
import tensorflow as tf


def embed_dataset(encoder, data, batch_size=512):
    """Runs `encoder` over `data` and returns float32 features and labels.

    Args:
        encoder: A Keras model or any callable from images to features.
        data: A `tf.data.Dataset` yielding `(images, labels)` pairs or
            `{"image", "label"}` dicts (batched or not), or a tuple of NumPy
            arrays `(images, labels)`.
        batch_size: Batch size used when `data` is unbatched or NumPy.
            Defaults to `512`.

    Returns:
        `(features, labels)`: NumPy arrays of shapes `(N, dim)` (float32) and
        `(N,)` (int64).
    """
    dataset = as_batched_dataset(data, batch_size)
    features, labels = [], []
    for images, batch_labels in dataset:
        output = encoder(images, training=False)
        features.append(np.asarray(tf.cast(output, "float32")))
        labels.append(np.asarray(batch_labels))
    if not features:
        raise ValueError("`data` yielded no examples. Received: an empty dataset")
    return (
        np.concatenate(features).reshape(sum(len(f) for f in features), -1),
        np.concatenate(labels).reshape(-1).astype("int64"),
    )


def as_batched_dataset(data, batch_size):
    if isinstance(data, tuple) and len(data) == 2:
        return tf.data.Dataset.from_tensor_slices(data).batch(batch_size)
    if not isinstance(data, tf.data.Dataset):
        raise ValueError(
            "`data` must be a tf.data.Dataset of (images, labels) or a tuple "
            f"(images, labels) of arrays. Received: data={type(data).__name__}"
        )
    spec = data.element_spec
    if isinstance(spec, dict):
        data = data.map(lambda example: (example["image"], example["label"]))
        spec = data.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise ValueError(
            "`data` must yield (images, labels); labels are needed to "
            f"evaluate. Received: element_spec={spec}"
        )
    data = data.map(lambda images, labels, *rest: (images, labels))
    # Labels are scalars per example, so their rank tells batched from not.
    if data.element_spec[1].shape.rank == 0:
        data = data.batch(batch_size)
    return data.prefetch(tf.data.AUTOTUNE)
