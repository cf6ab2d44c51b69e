"""tf.data pipelines over decoded arrays: shuffled per epoch, indexed, prefetched."""

import tensorflow as tf


def training_dataset(images, labels, batch_size, seed=0, with_index=False, shuffle=True,
                     epochs=None, initial_epoch=0):
    """Batches of `{"image", "label"[, "index"]}` for `ContrastiveModel.fit`.

    The arrays are decoded already (kept in memory once); augmentation runs
    in the model, per view. Each epoch's order is a stateless shuffle seeded
    by `(seed, epoch)` when `epochs` is given, so it is the same in every
    process: a run resumed at `initial_epoch` sees the batches an
    uninterrupted run would. `"index"` (the position in `images`) feeds a
    `MemoryBank`.

    Args:
        images: uint8 `(N, height, width, channels)` array.
        labels: int64 `(N,)` array (used only by metrics).
        batch_size: Samples per batch; each epoch's last partial batch is
            dropped so every step sees the same number of negatives.
        seed: Shuffle seed. Defaults to `0`.
        with_index: Whether to add each sample's index. Defaults to `False`.
        shuffle: Whether to shuffle. Defaults to `True`.
        epochs: None for one epoch's batches (iterate it once per epoch);
            an integer for the batches of epochs `initial_epoch` to
            `epochs - 1` in one dataset (fit it with `steps_per_epoch=
            len(images) // batch_size`). Defaults to `None`.
        initial_epoch: The first epoch, with `epochs`. Defaults to `0`.
    """
    count = len(images)
    steps = count // batch_size
    if steps < 1:
        raise ValueError(
            f"`batch_size` must be at most the {count} images. Received: batch_size={batch_size}"
        )
    features = {"image": tf.constant(images), "label": tf.constant(labels)}
    if with_index:
        features["index"] = tf.range(count, dtype=tf.int32)

    def epoch_batches(epoch):
        order = tf.range(count)
        if shuffle:
            epoch_seed = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
            order = tf.random.experimental.stateless_shuffle(order, seed=epoch_seed)
        batches = tf.reshape(order[: steps * batch_size], (steps, batch_size))
        return tf.data.Dataset.from_tensor_slices(batches)

    if epochs is None:
        # Reshuffled by each new iterator, in this process's sequence.
        dataset = tf.data.Dataset.range(count)
        if shuffle:
            dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size, drop_remainder=True)
    else:
        dataset = tf.data.Dataset.range(initial_epoch, epochs).flat_map(epoch_batches)
    dataset = dataset.map(
        lambda rows: {key: tf.gather(value, rows) for key, value in features.items()},
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    # The arrays are not files: under several workers, each takes its share
    # of every global batch.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
