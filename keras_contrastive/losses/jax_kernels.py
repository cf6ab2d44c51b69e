"""The JAX forms of the losses' TensorFlow-only kernels.

Under `KERAS_BACKEND=jax` the losses run their backend-neutral masked
kernels (`contrastive_utils`), compiled by JAX with the rest of the step.
Two parts have TensorFlow forms that JAX cannot trace, and JAX forms here:

- the hard losses' threshold, each row's `k`-th largest negative
  similarity, exact: the counting selection that TensorFlow runs under
  XLA (candidates searched in value space, two comparisons a key a pass,
  over blocks of rows held in cache on a CPU, over all the rows
  elsewhere; a row sort, JAX's other exact choice, measured 10x slower
  than a 32-pass bisection at 2,048 and 8,192 columns here);
- the blocked path's loop: `jax.lax.map` over the blocks of a function
  under `jax.checkpoint`, so the forward pass keeps only each block's
  per-anchor losses and the backward pass recomputes one block at a time:
  memory grows as `block_size x candidates`, as on TensorFlow.
"""

import functools

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


# As in `contrastive_denominator` (the comment above its `_VALUE_PASSES`):
# blocks of rows of 4 MiB of keys on a CPU, all the rows elsewhere; each
# pass counts two candidates a row over chunks of 512 columns, each chunk's
# comparisons added over 64 slices (the two counts in 16-bit fields of one
# int32) before the reduction.
_VALUE_PASSES = 40
_COUNTED_CHUNK = 512
_SUMMED_SLICES = 64
_CACHED_BLOCK_BYTES = 2**22


def kth_largest(values, k):
    """The `k`-th largest entry of each row of a float32 matrix, exactly.

    Each row's bracket of keys `[low, high]` (at least `k` keys `>= low`,
    fewer than `k` keys `> high`) narrows by two candidates counted a pass,
    found in value space (one interpolated between the ends from their
    counts, the other halfway), or halfway and three quarters of the way in
    key space while an end is infinite and after `_VALUE_PASSES` passes; the
    rank then falls on the bracket's largest or smallest key, which a last
    pass reads off.

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
    block_rows = rows
    if jax.default_backend() == "cpu":
        block_rows = min(rows, max(1, _CACHED_BLOCK_BYTES // (4 * max(columns, 1))))

    def select_block(index, selected):
        # The last block ends at the last row (overlapping its predecessor).
        first = jnp.minimum(index * block_rows, rows - block_rows)
        block = jax.lax.dynamic_slice_in_dim(values, first, block_rows)
        block_ranks = jax.lax.dynamic_slice_in_dim(ranks, first, block_rows)
        block_keys = _searched_selected_keys(_order_keys(block), block_ranks)
        return jax.lax.dynamic_update_slice_in_dim(selected, block_keys, first, 0)

    num_blocks = -(-rows // max(block_rows, 1))
    selected = jax.lax.fori_loop(0, num_blocks, select_block, jnp.zeros(rows, jnp.uint32))
    return _values_of_keys(selected)


def _searched_selected_keys(keys, ranks):
    """The key of each row's `ranks`-th largest key, by narrowing brackets."""
    rows, columns = keys.shape
    # Padding keys are 0, never counted: every candidate is at least 1.
    padded = jnp.pad(keys, [(0, 0), (0, (-columns) % _COUNTED_CHUNK)])
    # One slice for rows narrower than a chunk (compiled faster, as on TF).
    slices = 1 if columns < _COUNTED_CHUNK else _SUMMED_SLICES
    sliced = padded.reshape(rows, -1, slices, _COUNTED_CHUNK // slices)

    def unfinished(bracket):
        low, high, count_low, count_above = bracket
        rank_inside, size = ranks - count_above, count_low - count_above
        return (low < high) & (rank_inside > 1) & (rank_inside < size)

    def narrow(state):
        passes, bracket = state
        low, high, count_low, count_above = bracket
        rank_inside, size = ranks - count_above, count_low - count_above
        smaller, larger = _candidate_keys(passes, low, high, rank_inside, size)
        smaller_count, larger_count = _counts_at_least(sliced, smaller, larger)
        active = unfinished(bracket)
        larger_raises = active & (larger_count >= ranks)
        smaller_raises = active & (smaller_count >= ranks)
        smaller_lowers = active & (smaller_count < ranks)
        larger_lowers = active & (larger_count < ranks)
        return passes + 1, (
            jnp.where(larger_raises, larger, jnp.where(smaller_raises, smaller, low)),
            jnp.where(smaller_lowers, smaller - 1, jnp.where(larger_lowers, larger - 1, high)),
            jnp.where(
                larger_raises, larger_count, jnp.where(smaller_raises, smaller_count, count_low)
            ),
            jnp.where(
                smaller_lowers, smaller_count, jnp.where(larger_lowers, larger_count, count_above)
            ),
        )

    # Every key is >= 0; none is > the largest uint32.
    bracket = (
        jnp.zeros(rows, jnp.uint32),
        jnp.full(rows, 0xFFFFFFFF, jnp.uint32),
        jnp.full(rows, columns, jnp.int32),
        jnp.zeros(rows, jnp.int32),
    )
    state = jax.lax.while_loop(lambda state: jnp.any(unfinished(state[1])), narrow, (0, bracket))
    low, high, _, count_above = state[1]
    # The bracket's extremes, the padding left out.
    column = jnp.arange(np.prod(sliced.shape[1:])).reshape(sliced.shape[1:])
    parts = [sliced[:, :, part] for part in range(slices)]
    insides = [
        (part >= low[:, None, None]) & (part <= high[:, None, None]) & (column[:, index] < columns)
        for index, part in enumerate(parts)
    ]
    largest = functools.reduce(
        jnp.maximum,
        [jnp.where(inside, part, jnp.uint32(0)) for inside, part in zip(insides, parts)],
    )
    smallest = functools.reduce(
        jnp.minimum,
        [jnp.where(inside, part, jnp.uint32(0xFFFFFFFF)) for inside, part in zip(insides, parts)],
    )
    rank_inside = ranks - count_above
    largest, smallest = largest.max(axis=2).max(axis=1), smallest.min(axis=2).min(axis=1)
    return jnp.where(low == high, low, jnp.where(rank_inside == 1, largest, smallest))


def _counts_at_least(sliced, smaller, larger):
    """Each row's counts of keys at or above its two candidates."""
    smaller, larger = smaller[:, None, None], larger[:, None, None]
    hits = sum(
        jnp.where(sliced[:, :, part] >= smaller, 1, 0)
        + jnp.where(sliced[:, :, part] >= larger, 1 << 16, 0)
        for part in range(sliced.shape[2])
    )
    chunk_hits = hits.sum(axis=2)
    return (chunk_hits & 0xFFFF).sum(axis=1), (chunk_hits >> 16).sum(axis=1)


def _candidate_keys(passes, low, high, rank_inside, size):
    """Two keys in each bracket `(low, high]` to count next, the smaller
    first: interpolated and halfway in value space, or halfway and three
    quarters of the way in key space."""
    low_value, high_value = _values_of_keys(low), _values_of_keys(high)
    # rank_inside of the size keys in the bracket are at or above the answer.
    above = (rank_inside.astype(jnp.float32) - 0.5) / size.astype(jnp.float32)
    interpolated = high_value - (high_value - low_value) * above
    halfway = 0.5 * low_value + 0.5 * high_value
    by_value = jnp.isfinite(low_value) & jnp.isfinite(high_value) & (passes < _VALUE_PASSES)
    first, second = [
        jnp.where(by_value, jnp.minimum(jnp.maximum(_order_keys(value), low + 1), high), key)
        for value, key in (
            (interpolated, low + (high - low) // 2 + 1),
            (halfway, low + (high - low) // 4 * 3 + 1),
        )
    ]
    return jnp.minimum(first, second), jnp.maximum(first, second)


def map_blocks(block_losses, num_blocks):
    """`block_losses(index)` for every block, stacked `(num_blocks, ...)`,
    one block at a time in both passes (see the module docstring)."""
    return jax.lax.map(jax.checkpoint(block_losses), jnp.arange(num_blocks))
