"""The losses and metrics on the JAX backend equal the TensorFlow backend's.

Run in the TensorFlow pass: each test starts a `KERAS_BACKEND=jax`
subprocess (`tests.backend_scripts`, or pytest over the backend-neutral
tests) and compares with the same computation here.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests import backend_scripts
from tests.backends import tensorflow_only

pytestmark = [tensorflow_only, pytest.mark.slow]
ROOT = pathlib.Path(__file__).resolve().parents[1]
# Every test of these (and the docstring examples of the losses, metrics and layers)
# runs on both backends; TensorFlow-only ones skip under JAX, saying so.
BACKEND_NEUTRAL = [
    "tests/losses", "tests/metrics", "tests/layers", "tests/utils/test_backend.py",
    "keras_contrastive/losses", "keras_contrastive/metrics", "keras_contrastive/layers",
]


@pytest.fixture(scope="module", autouse=True)
def jax_installed():
    try:
        import jax  # noqa: F401
    except ImportError:
        pytest.fail('JAX is not installed: pip install -e ".[test,jax]" (the CI does)')


def run_under_jax(*command, timeout=900):
    environment = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    completed = subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=environment, capture_output=True,
        text=True, timeout=timeout,
    )
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-6000:]
    return completed.stdout


def test_backend_neutral_tests_pass_under_jax():
    output = run_under_jax("-m", "pytest", "-q", "-p", "no:cacheprovider", *BACKEND_NEUTRAL)
    assert " passed" in output and "failed" not in output


def test_values_and_gradients_equal_the_tensorflow_backend(tmp_path):
    output = tmp_path / "jax.npz"
    run_under_jax("-m", "tests.backend_scripts", "results", json.dumps({"output": str(output)}))
    expected = {**backend_scripts.loss_results(), **backend_scripts.metric_results()}
    with np.load(output) as jax_results:
        assert sorted(jax_results.files) == sorted(expected)
        for key, value in expected.items():
            # To 1e-5 of each entry, or of the array's largest entry for
            # entries that are sums with cancellation.
            scale = max(float(np.abs(value).max()), 1e-3)
            np.testing.assert_allclose(jax_results[key], value, rtol=1e-5, atol=1e-5 * scale, err_msg=key)
    # The comparison is not vacuous: gradients are non-zero where they must be.
    assert np.abs(expected["hard/plain/grad_y_pred"]).max() > 1e-3
    assert np.abs(expected["info_nce/blocked/grad_extras"]).max() > 1e-3


def test_a_jax_fit_learns_and_starts_from_the_tensorflow_loss(tmp_path):
    keras.utils.set_random_seed(3)
    weights = backend_scripts.two_view_model().get_weights()
    np.savez(tmp_path / "weights.npz", *weights)
    output = tmp_path / "jax_losses.npy"
    run_under_jax("-m", "tests.backend_scripts", "fit",
                  json.dumps({"weights": str(tmp_path / "weights.npz"), "output": str(output)}))
    jax_losses = np.load(output)
    tensorflow_losses = backend_scripts.fit_losses(weights)
    assert len(jax_losses) == len(tensorflow_losses) == 12
    assert jax_losses[0] == pytest.approx(tensorflow_losses[0], rel=1e-5)
    assert np.mean(jax_losses[-4:]) < 0.8 * np.mean(jax_losses[:4])
    np.testing.assert_allclose(jax_losses, tensorflow_losses, rtol=1e-3)
