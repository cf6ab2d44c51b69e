"""Argument checks shared by every loss, metric and analysis function.

Each check raises a `ValueError` that names the argument and the value it
received, and runs before any tensor work, as the Keras API does.
"""

import math
import numbers

import numpy as np
import tensorflow as tf
from keras import backend
from keras import ops

from keras_contrastive.utils import backend as backend_utils

LABEL_MODES = (None, "supervised", "mask")


def check_positive_float(name, value):
    """Returns `value` as a float after checking it is finite and positive.

    NumPy scalars and eager scalar tensors are read as floats (so configs
    stay JSON); variables and traced tensors (a learnt or scheduled
    temperature) pass through: their value is only known when the step runs,
    where `assert_positive` checks it.
    """
    value = _concrete_scalar(name, value)
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        if hasattr(value, "dtype") and hasattr(value, "shape"):
            return value
        raise ValueError(
            f"`{name}` must be a positive float. Received: {name}={value!r}"
        )
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive finite float. "
            f"Received: {name}={value}"
        )
    return float(value)


def check_positive_scalar(name, value):
    """As `check_positive_float`, for a value that flows into computation: a
    tensor comes back as itself (a gradient may be taken through it)."""
    number = check_positive_float(name, value)
    return value if ops.is_tensor(value) else number


def _concrete_scalar(name, value):
    """A NumPy, eager-tensor or JAX-array scalar as a Python number; a
    variable, a traced tensor or anything else as is."""
    if not hasattr(value, "dtype") or hasattr(value, "assign"):
        return value
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, NotImplementedError):
        return value  # a traced tensor (TF graph or JAX tracer)
    if array.size != 1 or array.dtype.kind not in "iuf":
        raise ValueError(f"`{name}` must be a scalar number. Received: {name}={value!r}")
    return array.item()


def assert_positive(name, value):
    """At run time: fails the step when a tensor `value` is not positive (a
    TF assertion; under JAX a host callback that raises, surfacing as a
    `JaxRuntimeError` with the same message)."""
    if isinstance(value, numbers.Real):
        return
    message = f"`{name}` must be positive. Received: {name} <= 0"
    if backend_utils.is_tensorflow():
        tf.debugging.assert_positive(value, message=f"{message} (value below)")
        return
    import jax

    def fail_if(not_positive):
        if not_positive:
            raise ValueError(message)

    jax.debug.callback(fail_if, ops.any(value <= 0))


def check_optional_positive_int(name, value):
    """Returns `value` as an int (or None) after checking it is at least 1."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < 1
    ):
        raise ValueError(
            f"`{name}` must be a positive integer or None. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def check_optional_fraction(name, value):
    """Returns `value` as a float (or None) after checking it is in (0, 1]."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 < value <= 1.0
    ):
        raise ValueError(
            f"`{name}` must be a float in (0, 1] or None. "
            f"Received: {name}={value!r}"
        )
    return float(value)


def check_optional_nonnegative_float(name, value):
    """Returns `value` as a float (or None) after checking it is >= 0."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(
            f"`{name}` must be a non-negative finite float or None. "
            f"Received: {name}={value!r}"
        )
    return float(value)


def check_label_mode(label_mode):
    """Returns `label_mode` after checking it is one of `LABEL_MODES`."""
    if label_mode not in LABEL_MODES:
        raise ValueError(
            f"`label_mode` must be one of {LABEL_MODES}. "
            f"Received: label_mode={label_mode!r}"
        )
    return label_mode


def check_embeddings(y_pred, min_views=2, name="y_pred"):
    """Checks the `(batch, views, dim)` contract and returns the static shape.

    Args:
        y_pred: The embeddings tensor.
        min_views: The fewest views accepted.
        name: The argument name used in error messages.

    Returns:
        The tuple `(batch, views, dim)`; `batch` may be None.
    """
    shape = tuple(y_pred.shape)
    if len(shape) != 3:
        raise ValueError(
            f"`{name}` must have shape (batch, views, dim), rank 3. "
            f"Received: {name}.shape={shape}"
        )
    batch, views, dim = shape
    if views is None or dim is None:
        raise ValueError(
            f"The views and dim axes of `{name}` must be known statically. "
            f"Received: {name}.shape={shape}"
        )
    if views < min_views:
        raise ValueError(
            f"`{name}` must hold at least {min_views} views per sample "
            f"(axis 1). Received: {name}.shape={shape}"
        )
    return batch, views, dim


def check_labels(labels, batch, name="y_true"):
    """Checks that integer labels hold one entry per sample.

    Accepts shapes `(batch,)` and `(batch, 1)`.
    """
    shape = tuple(labels.shape)
    per_sample = len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)
    if not per_sample or (
        batch is not None and shape[0] is not None and shape[0] != batch
    ):
        raise ValueError(
            f"`{name}` must hold one label per sample, shape ({batch},). "
            f"Received: {name}.shape={shape}"
        )


def check_integer_labels(labels, name="y_true"):
    """Raises for float or boolean labels: class labels are integers."""
    dtype = labels.dtype if hasattr(labels, "dtype") else np.asarray(labels).dtype
    dtype = backend.standardize_dtype(dtype)
    if "int" not in dtype:
        raise ValueError(
            f"`{name}` must hold integer class labels. Received: {name} of dtype {dtype}"
        )


def check_sample_weight(sample_weight, batch):
    """Checks one weight per sample when both sizes are known."""
    if sample_weight is None:
        return
    shape = tuple(sample_weight.shape if hasattr(sample_weight, "shape") else np.shape(sample_weight))
    if shape and batch is not None and shape[0] is not None and (shape[0] != batch or len(shape) > 2):
        raise ValueError(
            f"`sample_weight` must hold one weight per sample, shape ({batch},). "
            f"Received: sample_weight.shape={shape}"
        )


def check_extra_negatives(extra_negatives, extra_labels, dim):
    """Checks a bank, queue or other replicas' embeddings of shape (M, dim)."""
    shape = tuple(extra_negatives.shape)
    if len(shape) != 2 or shape[1] != dim:
        raise ValueError(
            f"`extra_negatives` must have shape (num_extra, {dim}), the "
            f"embedding dim of `y_pred`. "
            f"Received: extra_negatives.shape={shape}"
        )
    if extra_labels is not None:
        check_labels(extra_labels, shape[0], name="extra_labels")
