"""The JAX forms of the losses' TensorFlow-only kernels.

Under `KERAS_BACKEND=jax` the losses run their backend-neutral masked
kernels (`contrastive_utils`), compiled by JAX with the rest of the step.
Two parts have TensorFlow forms that JAX cannot trace, and JAX forms here:

- the hard losses' threshold, each row's `k`-th largest negative
  similarity, exact: the radix selection on the bits of the similarities
  that TensorFlow runs under XLA (on a CPU 32 counting passes over blocks
  of rows held in cache, elsewhere 16 over the matrix; a row sort, JAX's
  other exact choice, measured 10x slower than a 32-pass bisection at
  2,048 and 8,192 columns here);
- the blocked path's loop: `jax.lax.map` over the blocks of a function
  under `jax.checkpoint`, so the forward pass keeps only each block's
  per-anchor losses and the backward pass recomputes one block at a time:
  memory grows as `block_size x candidates`, as on TensorFlow.
"""

import jax
import jax.numpy as jnp
import numpy as np

_SIGN = np.uint32(0x80000000)


def _order_keys(values):
    """uint32 keys ordered as the float32 values (`-0.0` just below `0.0`)."""
    bits = jax.lax.bitcast_convert_type(values, jnp.uint32)
    return jnp.where(bits >= _SIGN, ~bits, bits | _SIGN)


def _values_of_keys(keys):
    bits = jnp.where(keys < _SIGN, ~keys, keys ^ _SIGN)
    return jax.lax.bitcast_convert_type(bits, jnp.float32)


# As in `contrastive_denominator`: on a CPU one bit of the key a pass over
# blocks of rows of 4 MiB of keys, elsewhere two bits a pass over all the
# rows; the candidates' counts in 10-bit fields of one int32 over chunks of
# 512 columns, each chunk's comparisons added over 64 slices before the
# reduction.
_COUNT_BITS = 10
_COUNTED_CHUNK = 2 ** (_COUNT_BITS - 1)
_SUMMED_SLICES = 64
_CACHED_BLOCK_BYTES = 2**22


def kth_largest(values, k):
    """The `k`-th largest entry of each row of a float32 matrix, exactly.

    The key of the `k`-th largest entry is the largest key `v` with at least
    `k` keys `>= v`; it is built a digit a pass (one bit on a CPU, two
    elsewhere) from the most significant, each digit the largest whose
    candidate `v` the count allows.

    Args:
        values: `(rows, columns)` float32.
        k: An int scalar, or one rank per row, each in `[1, columns]`.

    Returns:
        `(rows,)` float32, outside the gradient (it selects, and only
        comparisons with it reach the loss).
    """
    values = jax.lax.stop_gradient(values)
    rows, columns = values.shape
    ranks = jnp.broadcast_to(jnp.asarray(k, jnp.int32), (rows,))
    block_rows, digit_bits = rows, 2
    if jax.default_backend() == "cpu":
        block_rows = min(rows, max(1, _CACHED_BLOCK_BYTES // (4 * max(columns, 1))))
        digit_bits = 1

    def select_block(index, selected):
        # The last block ends at the last row (overlapping its predecessor).
        first = jnp.minimum(index * block_rows, rows - block_rows)
        block = jax.lax.dynamic_slice_in_dim(values, first, block_rows)
        block_ranks = jax.lax.dynamic_slice_in_dim(ranks, first, block_rows)
        block_keys = _radix_selected_keys(_order_keys(block), block_ranks, digit_bits)
        return jax.lax.dynamic_update_slice_in_dim(selected, block_keys, first, 0)

    num_blocks = -(-rows // max(block_rows, 1))
    selected = jax.lax.fori_loop(0, num_blocks, select_block, jnp.zeros(rows, jnp.uint32))
    return _values_of_keys(selected)


def _radix_selected_keys(keys, ranks, digit_bits):
    """The key of each row's `ranks`-th largest key, `digit_bits` a pass."""
    rows, columns = keys.shape
    # Padding keys are 0, never counted: every candidate is at least 1.
    padded = jnp.pad(keys, [(0, 0), (0, (-columns) % _COUNTED_CHUNK)])
    # One slice for rows narrower than a chunk (compiled faster, as on TF).
    slices = 1 if columns < _COUNTED_CHUNK else _SUMMED_SLICES
    sliced = padded.reshape(rows, -1, slices, _COUNTED_CHUNK // slices)
    digits = range(1, 2**digit_bits)

    def next_digit(index, result):
        shift = (32 - digit_bits * (index + 1)).astype(jnp.uint32)
        candidates = [result | (jnp.uint32(d) << shift) for d in digits]
        packed = sum(
            (sliced[:, :, part] >= candidate[:, None, None]).astype(jnp.int32)
            << (_COUNT_BITS * field)
            for part in range(slices)
            for field, candidate in enumerate(candidates)
        )
        chunk_counts = jnp.sum(packed, axis=2)
        digit = jnp.zeros_like(result)
        for field, d in enumerate(digits):
            counts = jnp.sum((chunk_counts >> (_COUNT_BITS * field)) & (2**_COUNT_BITS - 1), axis=1)
            digit = jnp.where(counts >= ranks, jnp.uint32(d), digit)
        return result | (digit << shift)

    initial = jnp.zeros(rows, jnp.uint32)
    return jax.lax.fori_loop(0, 32 // digit_bits, next_digit, initial)


def map_blocks(block_losses, num_blocks):
    """`block_losses(index)` for every block, stacked `(num_blocks, ...)`,
    one block at a time in both passes (see the module docstring)."""
    return jax.lax.map(jax.checkpoint(block_losses), jnp.arange(num_blocks))
