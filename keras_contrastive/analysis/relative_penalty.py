"""The relative penalty on negatives, from the paper's gradient analysis (Sec. 3).

InfoNCE's gradient on negative `j` of anchor `i` is proportional to
`exp(s_ij / tau)`. Normalised over the anchor's negatives, this is a
Boltzmann distribution, the relative penalty `r_i(s_ij)`. Its entropy says how
hardness-aware the loss is at a temperature: a small `tau` concentrates the
penalty on the nearest negatives (low entropy), a large `tau` spreads it
evenly (entropy `log(n)` for `n` negatives). `exp(entropy)` reads as the
number of negatives that effectively receive the penalty.
"""

import math

from keras import ops

from keras_contrastive.utils import validation


def _log_relative_penalty(similarities, tau, negative_mask):
    """Checks the arguments; returns `log r_i(s_ij)` and the negatives mask."""
    tau = validation.check_positive_scalar("tau", tau)
    similarities = ops.cast(ops.convert_to_tensor(similarities), "float32")
    shape = tuple(similarities.shape)
    if len(shape) != 2:
        raise ValueError(
            "`similarities` must be a matrix (anchors, candidates). "
            f"Received: similarities.shape={shape}"
        )
    if negative_mask is None:
        if shape[0] != shape[1]:
            raise ValueError(
                "Without `negative_mask`, `similarities` must be square with "
                "the positives on its diagonal. "
                f"Received: similarities.shape={shape}"
            )
        row = ops.arange(shape[0])
        negative_mask = ops.not_equal(row[:, None], row[None, :])
    else:
        negative_mask = ops.cast(ops.convert_to_tensor(negative_mask), "bool")
        if tuple(negative_mask.shape) != shape:
            raise ValueError(
                "`negative_mask` must have the shape of `similarities` "
                f"{shape}. Received: negative_mask.shape="
                f"{tuple(negative_mask.shape)}"
            )
    logits = ops.where(negative_mask, similarities / tau, -math.inf)
    log_penalty = logits - ops.logsumexp(logits, axis=1, keepdims=True)
    return log_penalty, negative_mask


def relative_penalty(similarities, tau, negative_mask=None):
    """The relative penalty `r_i(s_ij)` of every negative.

    Formula:

    ```python
    r_i(s_ij) = exp(s_ij / tau) / sum_(k != i) exp(s_ik / tau)
    ```

    Args:
        similarities: Cosine similarities, shape `(anchors, candidates)`.
        tau: The temperature, a positive float.
        negative_mask: Optional boolean mask of the negatives, same shape.
            None takes a square matrix whose diagonal holds the positives
            (`s_ii`) and whose other entries are negatives. Defaults to
            `None`.

    Returns:
        A float32 matrix of the shape of `similarities`; each row sums to 1
        over its negatives and is 0 elsewhere.

    Example:

    >>> import numpy as np
    >>> s = np.array([[1.0, 0.5, 0.5], [0.2, 1.0, 0.2], [0.0, 0.0, 1.0]])
    >>> relative_penalty(s, tau=0.1).numpy()[0].tolist()
    [0.0, 0.5, 0.5]

    Reference:
        - [Wang & Liu, 2021](https://arxiv.org/abs/2012.09740)
    """
    log_penalty, negative_mask = _log_relative_penalty(
        similarities, tau, negative_mask
    )
    return ops.where(negative_mask, ops.exp(log_penalty), 0.0)


def penalty_entropy(similarities, tau, negative_mask=None):
    """The entropy (nats) of each anchor's relative-penalty distribution.

    Formula:

    ```python
    H_i = -sum_(j != i) r_i(s_ij) * log(r_i(s_ij))
    ```

    It falls as `tau` falls (the loss focuses on fewer, harder negatives) and
    approaches `log(n)` for `n` negatives as `tau` grows.

    Args:
        similarities: Cosine similarities, shape `(anchors, candidates)`.
        tau: The temperature, a positive float.
        negative_mask: See `relative_penalty`. Defaults to `None`.

    Returns:
        A float32 vector `(anchors,)`.

    Example:

    >>> import numpy as np
    >>> s = np.eye(4)  # all negatives at similarity 0
    >>> round(float(penalty_entropy(s, tau=0.5)[0]), 4)  # log(3)
    1.0986

    Reference:
        - [Wang & Liu, 2021](https://arxiv.org/abs/2012.09740)
    """
    log_penalty, negative_mask = _log_relative_penalty(
        similarities, tau, negative_mask
    )
    terms = ops.where(negative_mask, ops.exp(log_penalty) * log_penalty, 0.0)
    return -ops.sum(terms, axis=1)


def effective_negatives(similarities, tau, negative_mask=None):
    """`exp(penalty_entropy)`: how many negatives effectively get the penalty.

    Between 1 (all penalty on the single hardest negative, `tau -> 0`) and
    the number of negatives (a uniform penalty, `tau -> inf`).

    Args:
        similarities: Cosine similarities, shape `(anchors, candidates)`.
        tau: The temperature, a positive float.
        negative_mask: See `relative_penalty`. Defaults to `None`.

    Returns:
        A float32 vector `(anchors,)`.

    Reference:
        - [Wang & Liu, 2021](https://arxiv.org/abs/2012.09740)
    """
    return ops.exp(penalty_entropy(similarities, tau, negative_mask))
