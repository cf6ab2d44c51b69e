"""The embedded default dataset: real handwritten digits, no download."""

import numpy as np

DIGITS = "digits"


def load_digits_splits(seed=0):
    """scikit-learn's bundled UCI digits as uint8 images, split 80/20.

    1,797 real 8x8 grey scans of handwritten digits (0-16 levels, scaled to
    0-255), installed with scikit-learn, so no network is needed. The split is
    a fixed permutation of `seed`.

    Returns:
        `{"train": (images, labels), "test": (images, labels)}` with images
        of shape `(N, 8, 8, 1)` uint8 and labels int64.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype("uint8")[..., None]
    labels = digits.target.astype("int64")
    order = np.random.default_rng(seed).permutation(len(images))
    cut = int(0.8 * len(images))
    return {
        "train": (images[order[:cut]], labels[order[:cut]]),
        "test": (images[order[cut:]], labels[order[cut:]]),
    }
