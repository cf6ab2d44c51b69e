"""Embedding math shared by losses and metrics, always in float32."""

from keras import ops


def l2_normalize(x, axis=-1):
    """Casts `x` to float32 and scales it to unit L2 norm along `axis`.

    A zero vector maps to zero with a zero gradient (the double `where` keeps
    the untaken branch finite, so no `0 * inf` reaches the gradient). A
    vector holding NaN or inf maps to NaN, so a diverged encoder gives NaN
    losses and metrics (and `TerminateOnNaN` fires), never finite ones. The
    cast comes first: in float16 the squared norm of a vector above ~256
    overflows and that of a small one underflows.
    """
    x = ops.cast(x, "float32")
    squared_norm = ops.sum(ops.square(x), axis=axis, keepdims=True)
    # `!=`, not `>`: a NaN norm must take the scaling branch and stay NaN.
    nonzero = ops.not_equal(squared_norm, 0.0)
    safe_squared_norm = ops.where(nonzero, squared_norm, 1.0)
    return ops.where(nonzero, x * ops.rsqrt(safe_squared_norm), 0.0)


def flatten_views(embeddings):
    """Reshapes `(batch, views, dim)` to `(batch * views, dim)`, sample-major.

    Row `b * views + v` holds view `v` of sample `b`.
    """
    return ops.reshape(embeddings, (-1, embeddings.shape[-1]))
