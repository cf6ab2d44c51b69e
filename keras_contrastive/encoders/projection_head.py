"""Projection heads: linear (the paper) or an MLP (SimCLR)."""

import keras
from keras import layers

from keras_contrastive.layers import FusedBatchNormalization

HEADS = ("linear", "mlp")


def projection_head(kind="linear", output_dim=128, hidden_dim=None, name="projection_head"):
    """Builds the head that maps encoder features to the contrastive space.

    Args:
        kind: `"linear"` (one `Dense`, the paper's 128-d head) or `"mlp"`
            (`Dense`-BN-ReLU-`Dense`, SimCLR's). Defaults to `"linear"`.
        output_dim: Size of the projection. Defaults to `128`.
        hidden_dim: Hidden size of the MLP; None uses `output_dim * 4`.
            Defaults to `None`.
        name: Model name. Defaults to `"projection_head"`.

    Returns:
        A `keras.Sequential`; the loss L2-normalises its output.
    """
    if kind not in HEADS:
        raise ValueError(f"`kind` must be one of {HEADS}. Received: kind={kind!r}")
    if kind == "linear":
        return keras.Sequential([layers.Dense(output_dim)], name=name)
    return keras.Sequential(
        [
            layers.Dense(hidden_dim or 4 * output_dim, use_bias=False),
            FusedBatchNormalization(),
            layers.ReLU(),
            layers.Dense(output_dim),
        ],
        name=name,
    )
