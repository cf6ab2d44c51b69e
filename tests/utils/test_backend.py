"""What runs where: the TensorFlow-only parts say so under another backend."""

import keras
import pytest

import keras_contrastive as kc
from keras_contrastive.utils import backend
from tests.backends import BACKEND

TENSORFLOW_ONLY = {
    "`ContrastiveModel`": lambda: kc.ContrastiveModel(keras.Sequential([keras.layers.Dense(2)])),
    "`export_encoder`": lambda: kc.export_encoder(None, "unused"),
    "`load_encoder`": lambda: kc.load_encoder("unused"),
    "`ContrastiveHyperModel`": lambda: kc.tuning.ContrastiveHyperModel(None, None, None),
}


@pytest.mark.skipif(BACKEND == "tensorflow", reason="checks the errors under another backend (the JAX pass)")
@pytest.mark.parametrize("name", TENSORFLOW_ONLY)
def test_tensorflow_only_parts_raise_a_clear_error(name):
    with pytest.raises(RuntimeError, match=f"{name}.*needs the TensorFlow backend.*KERAS_BACKEND='jax'"):
        TENSORFLOW_ONLY[name]()


@pytest.mark.skipif(BACKEND == "tensorflow", reason="checks the errors under another backend (the JAX pass)")
def test_the_cli_raises_a_clear_error():
    from keras_contrastive.cli import main

    with pytest.raises(RuntimeError, match="`keras-contrastive` command.*needs the TensorFlow backend"):
        main.main(["keras-contrastive", "pretrain"])


def test_the_backend_is_named():
    assert backend.is_tensorflow() == (BACKEND == "tensorflow")
    backend.check_loss_backend()  # both backends of the suite are supported
