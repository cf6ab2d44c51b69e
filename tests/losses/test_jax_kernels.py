"""The JAX kernels: the hard losses' threshold (the blocked loop is tested
through the losses' blocked paths on both backends)."""

import numpy as np
import pytest

from tests.losses import numpy_reference

jax = pytest.importorskip("jax", reason='JAX is not installed: pip install -e ".[test,jax]"')
from keras_contrastive.losses import jax_kernels  # noqa: E402  (needs JAX)


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_kth_largest_is_exact_across_blocks_and_count_chunks(monkeypatch, rng, backend):
    """Rows in several blocks (the last overlapping its predecessor, on a
    CPU) or in one (elsewhere); columns in several counting chunks, the last
    padded, whole chunks of equal keys counted; NaN, infinities, signed zeros,
    denormals and values whose differences overflow ordered as their bits;
    one rank per row or one for all."""
    columns = 2 * jax_kernels._COUNTED_CHUNK + 276
    monkeypatch.setattr(jax_kernels, "_CACHED_BLOCK_BYTES", 4 * columns * 3)
    monkeypatch.setattr(jax_kernels.jax, "default_backend", lambda: backend)
    values, ranks = numpy_reference.awkward_selection_case(rng, columns)
    got = np.asarray(jax_kernels.kth_largest(values, ranks))
    expected = numpy_reference.kth_largest_by_bits(values, ranks)
    np.testing.assert_array_equal(got.view("uint32"), expected.view("uint32"))
    got = np.asarray(jax_kernels.kth_largest(values, 7))
    expected = numpy_reference.kth_largest_by_bits(values, np.full(len(values), 7))
    np.testing.assert_array_equal(got.view("uint32"), expected.view("uint32"))


@pytest.mark.parametrize("value_passes", [0, 3])
def test_kth_largest_is_exact_when_the_key_space_search_takes_over(monkeypatch, rng, value_passes):
    """After `_VALUE_PASSES` passes (from the first, or mid-search) the
    candidates split the keys at a half and three quarters instead: still
    exact, on every awkward row."""
    monkeypatch.setattr(jax_kernels, "_VALUE_PASSES", value_passes)
    values, ranks = numpy_reference.awkward_selection_case(rng, 700)
    got = np.asarray(jax_kernels.kth_largest(values, ranks))
    expected = numpy_reference.kth_largest_by_bits(values, ranks)
    np.testing.assert_array_equal(got.view("uint32"), expected.view("uint32"))
