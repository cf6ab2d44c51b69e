"""The memory bank and the FIFO queue."""

import numpy as np
import pytest

import keras_contrastive as kc


def test_memory_bank_update_follows_the_instdisc_rule(rng):
    bank = kc.MemoryBank(10, momentum=0.5, seed=0)
    bank.build((None, 4))
    old = np.array(bank.embeddings)
    np.testing.assert_allclose(np.linalg.norm(old, axis=1), 1.0, rtol=1e-5)
    new = rng.normal(size=(3, 4)).astype("float32")
    bank.update(np.array([2, 5, 7]), new)
    unit = new / np.linalg.norm(new, axis=1, keepdims=True)
    mixed = 0.5 * old[[2, 5, 7]] + 0.5 * unit
    expected = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    after = np.array(bank.embeddings)
    np.testing.assert_allclose(after[[2, 5, 7]], expected, rtol=1e-5)
    untouched = [i for i in range(10) if i not in (2, 5, 7)]
    np.testing.assert_array_equal(after[untouched], old[untouched])


def test_fifo_queue_wraps_around(rng):
    queue = kc.FifoQueue(5, seed=0)
    queue.build((None, 3))
    batches = [rng.normal(size=(3, 3)).astype("float32") for _ in range(2)]
    for batch in batches:
        queue.update(None, batch)
    unit = [b / np.linalg.norm(b, axis=1, keepdims=True) for b in batches]
    after = np.array(queue.embeddings)
    np.testing.assert_allclose(after[[3, 4, 0]], unit[1], rtol=1e-5)
    np.testing.assert_allclose(after[[1, 2]], unit[0][1:], rtol=1e-5)
    assert int(queue.position.numpy()) == 1


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="Received: size=0"):
        kc.MemoryBank(0)
    with pytest.raises(ValueError, match="Received: momentum=1.0"):
        kc.MemoryBank(4, momentum=1.0)
    with pytest.raises(ValueError, match="Received: size=-1"):
        kc.FifoQueue(-1)


def test_a_queue_smaller_than_the_global_batch_raises(rng):
    import keras

    import keras_contrastive as kc

    encoder = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(4)])
    model = kc.ContrastiveModel(encoder, negatives=kc.FifoQueue(8))
    model.compile(optimizer="sgd", loss=kc.InfoNCE(tau=0.2))
    images = rng.uniform(size=(32, 4, 4, 1)).astype("float32")
    with pytest.raises(Exception, match=r"FifoQueue\(size=8\)` must hold at least the global batch.*16"):
        model.fit(images, batch_size=16, epochs=1, verbose=0)
