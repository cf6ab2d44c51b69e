"""A seeded, class-balanced random sample of a labelled split."""

import numbers

import numpy as np


def balanced_subset(labels, size, seed=0):
    """Indices of a seeded random sample with the classes in equal shares.

    Datasets are often stored in class order (the prepared CIFAR-10 folder
    is), so the first `size` rows can be a single class. This draws
    `size // num_classes` indices from every class (the remainder goes, one
    each, to randomly chosen classes), never more than a class holds, and
    returns them shuffled.

    Args:
        labels: Integer labels of the split, shape `(N,)`.
        size: How many indices to draw, from 1 to `N`.
        seed: Seed of the draw. Defaults to `0`.

    Returns:
        A shuffled int64 array of `size` distinct indices into `labels`.

    Example:

    >>> labels = np.repeat(np.arange(3), 4)          # stored in class order
    >>> np.bincount(labels[balanced_subset(labels, 6)])
    array([2, 2, 2])
    """
    labels = np.asarray(labels).reshape(-1)
    if (
        isinstance(size, bool)
        or not isinstance(size, numbers.Integral)
        or not 1 <= size <= len(labels)
    ):
        raise ValueError(
            f"`size` must be an integer from 1 to the split's {len(labels)} "
            f"examples. Received: size={size!r}"
        )
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    members = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    quota = _class_quotas([len(m) for m in members], int(size), rng)
    chosen = np.concatenate([m[:q] for m, q in zip(members, quota)])
    return rng.permutation(chosen).astype("int64")


def _class_quotas(available, size, rng):
    """Splits `size` as evenly as the classes' sizes allow."""
    quota = np.zeros(len(available), "int64")
    available = np.asarray(available)
    while quota.sum() < size:
        open_classes = np.flatnonzero(quota < available)
        share, remainder = divmod(size - quota.sum(), len(open_classes))
        room = available[open_classes] - quota[open_classes]
        extra = np.zeros(len(open_classes), "int64")
        extra[rng.permutation(len(open_classes))[:remainder]] = 1
        quota[open_classes] += np.minimum(room, share + extra)
    return quota
