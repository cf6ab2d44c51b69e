"""Every data source loads offline with the right shapes, labels and splits."""

import hashlib

import numpy as np
import pytest
import tensorflow as tf

from keras_contrastive import data


def digests(images):
    return {hashlib.sha1(image.tobytes()).hexdigest() for image in images}


def assert_split(split, count, shape, classes):
    images, labels = split
    assert images.dtype == np.uint8 and labels.dtype == np.int64
    assert images.shape == (count, *shape)
    assert set(np.unique(labels)) == set(range(classes))


def test_embedded_digits():
    splits = data.load_splits("digits")
    assert_split(splits["train"], 1437, (8, 8, 1), 10)
    assert_split(splits["test"], 360, (8, 8, 1), 10)
    assert splits["train"][0].max() == 255
    assert not digests(splits["train"][0]) & digests(splits["test"][0])


@pytest.fixture(scope="module")
def fashion_mnist_tfds(shared_data, tmp_path_factory):
    return data.load_splits(
        "fashion_mnist",
        data_dir=str(tmp_path_factory.mktemp("tfds")),
        manual_dir=str(shared_data / "fashion_mnist"),
    )


@pytest.mark.slow
def test_tfds_by_name_prepared_offline_from_manual_dir(fashion_mnist_tfds, fashion_mnist):
    assert_split(fashion_mnist_tfds["train"], 60000, (28, 28, 1), 10)
    assert_split(fashion_mnist_tfds["test"], 10000, (28, 28, 1), 10)
    assert np.all(np.bincount(fashion_mnist_tfds["train"][1]) == 6000)
    # The same examples as the official files (TFDS reorders them).
    assert digests(fashion_mnist_tfds["test"][0][..., 0]) == digests(fashion_mnist["test"][0])


@pytest.mark.slow
def test_prepared_tfds_directory(shared_data):
    splits = data.load_splits(str(shared_data / "tfds" / "cifar10_jpg" / "1.0.0"))
    assert_split(splits["train"], 50000, (32, 32, 3), 10)
    assert_split(splits["test"], 10000, (32, 32, 3), 10)
    assert np.all(np.bincount(splits["test"][1]) == 1000)
    assert not digests(splits["train"][0]) & digests(splits["test"][0])


def write_image_folder(root, per_class=5):
    rng = np.random.default_rng(0)
    for name in ["cat", "dog", "emu"]:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
            (root / name / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    return root


def test_image_folder(tmp_path):
    root = write_image_folder(tmp_path / "images")
    splits = data.load_splits(str(root), image_size=(16, 16))
    assert_split(splits["train"], 12, (16, 16, 3), 3)
    assert splits["test"][0].shape == (3, 16, 16, 3)
    assert not digests(splits["train"][0]) & digests(splits["test"][0])


def test_bad_sources_raise(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset.*source='no_such_dataset'"):
        data.load_splits("no_such_dataset")
    with pytest.raises(ValueError, match="No such folder.*missing"):
        data.load_splits(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders of images"):
        data.load_splits(str(tmp_path / "empty"))
    (tmp_path / "broken" / "a").mkdir(parents=True)
    (tmp_path / "broken" / "a" / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="Cannot decode an image.*x.png"):
        data.load_splits(str(tmp_path / "broken"))
    with pytest.raises(ValueError, match="not prepared.*download=False"):
        data.load_splits("mnist", data_dir=str(tmp_path / "tfds"))


def test_training_dataset_batches_with_indices():
    images = np.zeros((10, 4, 4, 1), np.uint8)
    batches = list(data.training_dataset(images, np.arange(10), 4, with_index=True))
    assert len(batches) == 2  # the partial batch is dropped
    indices = np.concatenate([b["index"].numpy() for b in batches])
    assert len(set(indices)) == 8 and set(indices) <= set(range(10))
