"""`evaluate_encoder` measures the space it is asked for, as the NumPy references do."""

import keras
import numpy as np
import pytest

import keras_contrastive as kc
from keras_contrastive.evaluation import evaluate_encoder
from tests.evaluation import reference


@pytest.fixture
def data(rng):
    labels = np.arange(60) % 3
    images = (labels[:, None, None, None] * 0.2 + rng.random((60, 4, 4, 1))).astype("float32")
    return (images[:40], labels[:40]), (images[40:], labels[40:])


def make_model(projector=True):
    encoder = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(6)])
    head = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5)]) if projector else None
    return kc.ContrastiveModel(encoder, head)


def expected(embed, data, k=5):
    (bank_images, bank_labels), (query_images, query_labels) = data
    bank, queries = embed(bank_images), embed(query_images)
    predictions = reference.weighted_knn(bank, bank_labels, queries, k, 0.07, 3)
    uniformity, tolerance = reference.uniformity_and_tolerance(queries, query_labels)
    return np.mean(predictions == query_labels), uniformity, tolerance


def assert_measures(results, want):
    got = results["knn_accuracy"], results["uniformity"], results["tolerance"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_projection_is_the_default_and_applies_the_head(data):
    model = make_model()

    def project(images):
        return np.asarray(model.projector(model.encoder(images)), np.float64)

    results = evaluate_encoder(model, *data, knn_k=5)
    assert results["space"] == "projection"
    assert_measures(results, expected(project, data))


def test_features_space_reads_the_encoder(data):
    model = make_model()
    results = evaluate_encoder(model, *data, space="features", knn_k=5)
    assert results["space"] == "features"
    assert_measures(results, expected(lambda x: np.asarray(model.encoder(x), np.float64), data))


def test_a_bare_encoder_with_its_head_equals_the_model(data):
    model = make_model()
    as_model = evaluate_encoder(model, *data, knn_k=5)
    as_parts = evaluate_encoder(model.encoder, *data, projector=model.projector, knn_k=5)
    assert as_parts == pytest.approx(as_model)


def test_a_model_without_a_head_is_measured_on_its_features(data):
    model = make_model(projector=False)
    projection = evaluate_encoder(model, *data, knn_k=5)
    features = evaluate_encoder(model, *data, space="features", knn_k=5)
    assert projection.pop("space") == "projection" and features.pop("space") == "features"
    assert projection == pytest.approx(features)


def test_the_linear_probe_reads_the_features_in_either_space(data):
    model = make_model()
    keras.utils.set_random_seed(0)
    projection = evaluate_encoder(model, *data, knn_k=5, linear_probe_epochs=2)
    keras.utils.set_random_seed(0)
    features = evaluate_encoder(model, *data, space="features", knn_k=5, linear_probe_epochs=2)
    assert projection["linear_accuracy"] == features["linear_accuracy"]


def test_a_bare_encoder_has_no_projection(data):
    with pytest.raises(ValueError, match="needs the projection head.*space='features'"):
        evaluate_encoder(make_model().encoder, *data)


def test_an_unknown_space_raises(data):
    with pytest.raises(ValueError, match="Received: space='logits'"):
        evaluate_encoder(make_model(), *data, space="logits")
