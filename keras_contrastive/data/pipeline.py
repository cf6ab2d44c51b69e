"""tf.data pipelines over decoded arrays: cached, shuffled, indexed, prefetched."""

import tensorflow as tf


def training_dataset(images, labels, batch_size, seed=0, with_index=False, shuffle=True):
    """Batches of `{"image", "label"[, "index"]}` for `ContrastiveModel.fit`.

    The arrays are decoded already (kept in memory once); augmentation runs
    in the model, per view. Shuffling is seeded and reshuffled each epoch;
    `"index"` (the position in `images`) feeds a `MemoryBank`.

    Args:
        images: uint8 `(N, height, width, channels)` array.
        labels: int64 `(N,)` array (used only by metrics).
        batch_size: Samples per batch; the last partial batch is dropped so
            every step sees the same number of negatives.
        seed: Shuffle seed. Defaults to `0`.
        with_index: Whether to add each sample's index. Defaults to `False`.
        shuffle: Whether to shuffle. Defaults to `True`.
    """
    features = {"image": images, "label": labels}
    if with_index:
        features["index"] = tf.range(len(images), dtype=tf.int32)
    dataset = tf.data.Dataset.from_tensor_slices(features)
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
