"""One call that measures an encoder as the paper does."""

import numpy as np

from keras_contrastive.evaluation.dataset_metrics import uniformity_and_tolerance
from keras_contrastive.evaluation.embedding import embed_dataset
from keras_contrastive.evaluation.evaluation_utils import encoder_and_projector
from keras_contrastive.evaluation.knn import knn_accuracy
from keras_contrastive.evaluation.linear_probe import linear_probe_accuracy


def evaluate_encoder(
    model,
    bank_data,
    query_data,
    space="projection",
    projector=None,
    knn_k=200,
    sigma=0.07,
    t=2.0,
    linear_probe_epochs=0,
    batch_size=512,
):
    """Embeds two labelled splits once and returns the paper's measures.

    kNN accuracy, uniformity and tolerance are measured in one named
    `space`: by default the L2-normalised projection, the `f(x)` the loss
    sees and the paper measures; `"features"` takes the encoder's output.
    The linear probe, as in the paper, reads the features. The encoder runs
    once per split; the head is applied to its features.

    Args:
        model: A `ContrastiveModel` (its `encoder` and `projector` are
            used), or a bare encoder: a Keras model or callable from images
            (float, in [0, 1]) to features.
        bank_data: The labelled reference split (usually train), in any form
            `embed_dataset` takes.
        query_data: The evaluated split (usually test or validation).
        space: `"projection"` or `"features"`. Defaults to `"projection"`.
        projector: The head from features to the projection, for a bare
            encoder (a `ContrastiveModel` brings its own). Defaults to
            `None`.
        knn_k: Neighbours of the weighted kNN. Defaults to `200`.
        sigma: Temperature of the kNN vote weights. Defaults to `0.07`.
        t: Scale of uniformity. Defaults to `2.0`.
        linear_probe_epochs: Epochs of the linear probe; 0 skips it.
            Defaults to `0`.
        batch_size: Batch size of the embedding pass. Defaults to `512`.

    Returns:
        A dict: `space`, `knn_accuracy` (queries against the bank),
        `uniformity` and `tolerance` (over all distinct pairs of the query
        split), and `linear_accuracy` when the probe runs.

    Example:

    >>> import keras
    >>> encoder = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(8)])
    >>> images = np.random.default_rng(0).random((40, 4, 4, 1), "float32")
    >>> labels = np.arange(40) % 4
    >>> results = evaluate_encoder(encoder, (images, labels), (images, labels),
    ...                            space="features", knn_k=5)
    >>> sorted(results)
    ['knn_accuracy', 'space', 'tolerance', 'uniformity']
    """
    encoder, head = encoder_and_projector(model, projector, space)
    bank_features, bank_labels = embed_dataset(encoder, bank_data, batch_size)
    query_features, query_labels = embed_dataset(encoder, query_data, batch_size)
    bank, queries = (
        _apply_head(head, features, batch_size)
        for features in (bank_features, query_features)
    )
    results = {
        "space": space,
        "knn_accuracy": knn_accuracy(
            bank, bank_labels, queries, query_labels, knn_k, sigma
        ),
        **uniformity_and_tolerance(queries, query_labels, t=t),
    }
    if linear_probe_epochs:
        results["linear_accuracy"] = linear_probe_accuracy(
            bank_features,
            bank_labels,
            query_features,
            query_labels,
            epochs=linear_probe_epochs,
        )
    return results


def _apply_head(head, features, batch_size):
    if head is None:
        return features
    outputs = [
        head(features[start : start + batch_size], training=False)
        for start in range(0, len(features), batch_size)
    ]
    return np.concatenate([np.asarray(output, "float32") for output in outputs])
