"""Fixtures shared by the test suite."""

import pathlib

import keras
import numpy as np
import pytest

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def seed():
    """Seeds NumPy, Python and Keras so every test is reproducible."""
    keras.utils.set_random_seed(1337)


@pytest.fixture
def rng():
    return np.random.default_rng(1337)


@pytest.fixture
def shared_data():
    """`../shared/data`; tests that need real data skip, saying why, without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (see the README)")
    return SHARED_DATA
