"""Fixtures shared by the test suite."""

import gzip
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def seed():
    """Seeds NumPy, Python and Keras so every test is reproducible."""
    keras.utils.set_random_seed(1337)


@pytest.fixture
def rng():
    return np.random.default_rng(1337)


@pytest.fixture(scope="session")
def mirrored():
    """One MirroredStrategy on the two logical CPUs, shared by every test.

    Two strategies over the same devices in one process draw colliding
    collective instance keys, so the session has exactly one.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture(scope="session")
def shared_data():
    """`../shared/data`; tests that need real data skip, saying why, without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (see the README)")
    return SHARED_DATA


def read_idx(path):
    """Reads an IDX file (the MNIST format): big-endian header, then uint8 data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


@pytest.fixture(scope="session")
def fashion_mnist(shared_data):
    """Fashion-MNIST from the official files: {split: (images uint8, labels)}."""
    folder = shared_data / "fashion_mnist"
    return {
        split: (
            read_idx(folder / f"{prefix}-images-idx3-ubyte.gz"),
            read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz").astype("int64"),
        )
        for split, prefix in [("train", "train"), ("test", "t10k")]
    }
