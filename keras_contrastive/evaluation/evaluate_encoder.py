"""One call that measures an encoder as the paper does."""

from keras_contrastive.evaluation.dataset_metrics import uniformity_and_tolerance
from keras_contrastive.evaluation.embedding import embed_dataset
from keras_contrastive.evaluation.knn import knn_accuracy
from keras_contrastive.evaluation.linear_probe import linear_probe_accuracy


def evaluate_encoder(
    encoder,
    bank_data,
    query_data,
    knn_k=200,
    sigma=0.07,
    t=2.0,
    linear_probe_epochs=0,
    batch_size=512,
):
    """Embeds two labelled splits once and returns the paper's measures.

    Args:
        encoder: A Keras model or callable from images to features.
        bank_data: The labelled reference split (usually train), in any form
            `embed_dataset` takes.
        query_data: The evaluated split (usually test or validation).
        knn_k: Neighbours of the weighted kNN. Defaults to `200`.
        sigma: Temperature of the kNN vote weights. Defaults to `0.07`.
        t: Scale of uniformity. Defaults to `2.0`.
        linear_probe_epochs: Epochs of the linear probe; 0 skips it.
            Defaults to `0`.
        batch_size: Batch size of the embedding pass. Defaults to `512`.

    Returns:
        A dict: `knn_accuracy` (queries against the bank), `uniformity` and
        `tolerance` (over all distinct pairs of the query split), and
        `linear_accuracy` when the probe runs.
    """
    bank_features, bank_labels = embed_dataset(encoder, bank_data, batch_size)
    query_features, query_labels = embed_dataset(encoder, query_data, batch_size)
    results = {
        "knn_accuracy": knn_accuracy(
            bank_features, bank_labels, query_features, query_labels, knn_k, sigma
        ),
        **uniformity_and_tolerance(query_features, query_labels, t=t),
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
