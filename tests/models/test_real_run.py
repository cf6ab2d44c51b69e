"""A short real run: the small CNN on Fashion-MNIST beats its random initialisation."""

import keras
import pytest

import keras_contrastive as kc
from keras_contrastive.evaluation import embed_dataset
from keras_contrastive.evaluation import knn_accuracy


def knn(encoder, train, test):
    bank, bank_labels = embed_dataset(encoder, train)
    queries, query_labels = embed_dataset(encoder, test)
    return knn_accuracy(bank, bank_labels, queries, query_labels)


@pytest.mark.slow
def test_small_cnn_learns_on_fashion_mnist(fashion_mnist):
    train_images, train_labels = fashion_mnist["train"]
    test_images, test_labels = fashion_mnist["test"]
    train = (train_images[:10000, ..., None], train_labels[:10000])
    test = (test_images[:2000, ..., None], test_labels[:2000])
    keras.utils.set_random_seed(0)
    model = kc.ContrastiveModel(
        kc.encoders.small_cnn((28, 28, 1), width=16, feature_dim=64),
        kc.encoders.projection_head("linear", 64),
        kc.Augmenter(28),
    )
    untrained = knn(model, train, test)  # the model's call is its encoder
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=kc.InfoNCE(tau=0.2))
    history = model.fit(train[0], batch_size=256, epochs=4, verbose=0)
    trained = knn(model, train, test)
    print(f"kNN accuracy: untrained {untrained:.4f}, after 4 epochs {trained:.4f}")
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert trained > untrained + 0.03
