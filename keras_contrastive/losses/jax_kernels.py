"""The JAX forms of the losses' TensorFlow-only kernels.

Under `KERAS_BACKEND=jax` the losses run their backend-neutral masked
kernels (`contrastive_utils`), compiled by JAX with the rest of the step.
Two parts have TensorFlow forms that JAX cannot trace, and JAX forms here:

- the hard losses' threshold, each row's `k`-th largest negative
  similarity, exact, from a sort (JAX has no linear-time selection; a row
  sort costs about as much as the 32 counting passes of the TensorFlow
  bisection, and no more memory);
- the blocked path's loop: `jax.lax.map` over the blocks of a function
  under `jax.checkpoint`, so the forward pass keeps only each block's
  per-anchor losses and the backward pass recomputes one block at a time:
  memory grows as `block_size x candidates`, as on TensorFlow.
"""

import jax
import jax.numpy as jnp


def kth_largest(values, k):
    """The `k`-th largest entry of each row of a float32 matrix, exactly.

    Args:
        values: `(rows, columns)` float32.
        k: An int scalar, or one rank per row, each in `[1, columns]`.

    Returns:
        `(rows,)` float32, outside the gradient (it selects, and only
        comparisons with it reach the loss).
    """
    values = jax.lax.stop_gradient(values)
    ascending = jnp.sort(values, axis=1)
    positions = values.shape[1] - jnp.broadcast_to(jnp.asarray(k, jnp.int32), values.shape[:1])
    return jnp.take_along_axis(ascending, positions[:, None], axis=1)[:, 0]


def map_blocks(block_losses, num_blocks):
    """`block_losses(index)` for every block, stacked `(num_blocks, ...)`,
    one block at a time in both passes (see the module docstring)."""
    return jax.lax.map(jax.checkpoint(block_losses), jnp.arange(num_blocks))

