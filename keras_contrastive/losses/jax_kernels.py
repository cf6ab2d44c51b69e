"""The JAX forms of the losses' TensorFlow-only kernels.

Under `KERAS_BACKEND=jax` the losses run their backend-neutral masked
kernels (`contrastive_utils`), compiled by JAX with the rest of the step.
Two parts have TensorFlow forms that JAX cannot trace, and JAX forms here:

- the hard losses' threshold, each row's `k`-th largest negative
  similarity, exact: the bisection on the bits of the similarities that
  TensorFlow runs under XLA (32 counting passes; a row sort, JAX's other
  exact choice, measured 10x slower at 2,048 and 8,192 columns here);
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


def kth_largest(values, k):
    """The `k`-th largest entry of each row of a float32 matrix, exactly.

    The key of the `k`-th largest entry is the largest key `v` with at least
    `k` keys `>= v`; it is built from the most significant bit down, each
    bit kept when the count allows.

    Args:
        values: `(rows, columns)` float32.
        k: An int scalar, or one rank per row, each in `[1, columns]`.

    Returns:
        `(rows,)` float32, outside the gradient (it selects, and only
        comparisons with it reach the loss).
    """
    keys = _order_keys(jax.lax.stop_gradient(values))
    ranks = jnp.broadcast_to(jnp.asarray(k, jnp.int32), values.shape[:1])

    def keep_bit_if_counted(index, result):
        candidate = result | (jnp.uint32(1) << (31 - index).astype(jnp.uint32))
        count = jnp.sum(keys >= candidate[:, None], axis=1, dtype=jnp.int32)
        return jnp.where(count >= ranks, candidate, result)

    initial = jnp.zeros(values.shape[:1], jnp.uint32)
    return _values_of_keys(jax.lax.fori_loop(0, 32, keep_bit_if_counted, initial))


def map_blocks(block_losses, num_blocks):
    """`block_losses(index)` for every block, stacked `(num_blocks, ...)`,
    one block at a time in both passes (see the module docstring)."""
    return jax.lax.map(jax.checkpoint(block_losses), jnp.arange(num_blocks))
