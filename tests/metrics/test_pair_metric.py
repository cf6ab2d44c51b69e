"""Behaviours every streaming metric shares, checked on all of them."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_contrastive
from keras_contrastive import metrics
from tests.backends import tensorflow_only
from tests.metrics import numpy_reference as ref

# name: (make metric, reference(batches, labels) -> value)
METRICS = {
    "uniformity": (lambda: metrics.Uniformity(), lambda b, l: ref.uniformity(b)),
    "uniformity_t1": (lambda: metrics.Uniformity(t=1.0), lambda b, l: ref.uniformity(b, t=1.0)),
    "tolerance": (lambda: metrics.Tolerance(), ref.tolerance),
    "alignment": (lambda: metrics.Alignment(), lambda b, l: ref.alignment(b)),
    "alignment_1": (lambda: metrics.Alignment(alpha=1.0), lambda b, l: ref.alignment(b, 1.0)),
    "positive_similarity": (
        lambda: metrics.PositiveSimilarity(),
        lambda b, l: ref.positive_similarity(b),
    ),
    "nearest_negatives": (
        lambda: metrics.NearestNegativeSimilarity(k=3),
        lambda b, l: ref.nearest_negatives(b, 3),
    ),
    "contrastive_accuracy": (
        lambda: metrics.ContrastiveAccuracy(),
        lambda b, l: ref.contrastive_accuracy(b),
    ),
    "penalty_entropy": (
        lambda: metrics.PenaltyEntropy(tau=0.2),
        lambda b, l: ref.penalty_entropies(b, 0.2).mean(),
    ),
    "effective_negatives": (
        lambda: metrics.EffectiveNegatives(tau=0.2),
        lambda b, l: np.exp(ref.penalty_entropies(b, 0.2)).mean(),
    ),
}


def value_of(metric):
    return ops.convert_to_numpy(metric.result())


def make_batch(rng, kind, batch=6, views=2, dim=5):
    labels = np.arange(batch) % 3
    if kind == "random":
        y_pred = rng.normal(size=(batch, views, dim))
    elif kind == "clustered":
        centres = rng.normal(size=(3, dim)) * 3
        y_pred = centres[labels][:, None, :] + 0.5 * rng.normal(size=(batch, views, dim))
    else:  # collapsed
        y_pred = np.broadcast_to(rng.normal(size=(1, 1, dim)), (batch, views, dim))
    return y_pred.astype("float32"), labels


def feed(metric, batches, labels, sample_weight=None):
    for index, (y_pred, batch_labels) in enumerate(zip(batches, labels)):
        weight = None if sample_weight is None else sample_weight[index]
        metric.update_state(batch_labels, y_pred, sample_weight=weight)


@pytest.mark.parametrize("name", METRICS)
@pytest.mark.parametrize("kind", ["random", "clustered", "collapsed"])
def test_matches_numpy_reference(rng, name, kind):
    y_pred, labels = make_batch(rng, kind)
    make, reference = METRICS[name]
    metric = make()
    feed(metric, [y_pred], [labels])
    np.testing.assert_allclose(value_of(metric), reference([y_pred], [labels]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", METRICS)
def test_streaming_equals_the_definition_over_the_batches(rng, name):
    """Three batches of different sizes: pairs stay inside each batch."""
    batches, labels = zip(*[make_batch(rng, "clustered", batch=b) for b in (4, 6, 5)])
    make, reference = METRICS[name]
    metric = make()
    feed(metric, batches, labels)
    np.testing.assert_allclose(value_of(metric), reference(batches, labels), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", METRICS)
def test_reset_state_forgets_earlier_batches(rng, name):
    first, first_labels = make_batch(rng, "random")
    second, second_labels = make_batch(rng, "clustered")
    make, reference = METRICS[name]
    metric = make()
    feed(metric, [first], [first_labels])
    metric.reset_state()
    feed(metric, [second], [second_labels])
    np.testing.assert_allclose(value_of(metric), reference([second], [second_labels]), rtol=1e-5, atol=1e-6)


def test_sample_weight_weighs_each_anchor(rng):
    y_pred, labels = make_batch(rng, "random")
    weights = np.array([1.0, 0.0, 2.0, 1.0, 0.5, 1.0], "float32")
    metric = metrics.PositiveSimilarity()
    metric.update_state(None, y_pred, sample_weight=weights)
    z = ref.normalize(y_pred)
    per_sample = np.sum(z[:, 0] * z[:, 1], axis=1)
    np.testing.assert_allclose(metric.result(), np.sum(weights * per_sample) / weights.sum(), rtol=1e-5)


@pytest.mark.parametrize("name", METRICS)
def test_low_precision_inputs_are_measured_in_float32(rng, name):
    y_pred, labels = make_batch(rng, "clustered")
    low = ops.cast(y_pred, "float16")
    rounded = ops.convert_to_numpy(ops.cast(low, "float32"))
    make, reference = METRICS[name]
    metric = make()
    feed(metric, [low], [labels])
    np.testing.assert_allclose(value_of(metric), reference([rounded], [labels]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", METRICS)
def test_config_round_trip(name):
    metric = METRICS[name][0]()
    restored = type(metric).from_config(metric.get_config())
    assert restored.get_config() == metric.get_config()
    deserialized = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert type(deserialized) is type(metric)


def test_compiled_model_logs_every_metric(rng):
    """Every metric in `fit`'s logs, finite; the nearest negatives as one
    value per rank."""
    inputs = keras.Input((6,))
    outputs = keras.layers.Reshape((2, 4))(keras.layers.Dense(8)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="adam",
        loss=keras_contrastive.InfoNCE(),
        metrics=[make() for make, _ in METRICS.values()],
    )
    x = rng.normal(size=(16, 6)).astype("float32")
    history = model.fit(x, np.arange(16) % 4, batch_size=8, epochs=2, verbose=0).history
    for key in ["uniformity", "tolerance", "alignment", "contrastive_accuracy",
                "penalty_entropy", "effective_negatives"]:
        assert np.shape(history[key]) == (2,) and np.all(np.isfinite(history[key])), key
    nearest = np.array(history["nearest_negative_similarity"])
    assert nearest.shape == (2, 3) and np.all(np.isfinite(nearest))
    assert np.all(np.diff(nearest, axis=1) <= 0)  # n1 >= n2 >= n3


# --- paper properties -------------------------------------------------------


def test_uniformity_is_at_most_2t_and_zero_when_collapsed(rng):
    for t in [0.5, 2.0, 4.0]:
        metric = metrics.Uniformity(t=t)
        metric.update_state(None, rng.normal(size=(64, 1, 3)))
        assert 0.0 < float(metric.result()) <= 2 * t
    collapsed = metrics.Uniformity()
    collapsed.update_state(None, np.ones((8, 2, 3)))
    assert float(collapsed.result()) == pytest.approx(0.0, abs=1e-6)


def test_effective_negatives_is_exp_entropy_per_anchor(rng):
    y_pred, _ = make_batch(rng, "clustered")
    small = metrics.EffectiveNegatives(tau=0.01)
    large = metrics.EffectiveNegatives(tau=100.0)
    small.update_state(None, y_pred)
    large.update_state(None, y_pred)
    assert float(small.result()) < 2.0
    assert float(large.result()) == pytest.approx(10.0, rel=1e-3)  # 2 * (6 - 1) negatives


# --- distributed: equal to the single-device value on the global batch ----


@tensorflow_only
@pytest.mark.parametrize("name", METRICS)
def test_mirrored_equals_single_device_on_the_global_batch(rng, mirrored, name):
    import tensorflow as tf

    y_pred, labels = make_batch(rng, "clustered", batch=8)
    make, _ = METRICS[name]
    single = make()
    feed(single, [y_pred], [labels])
    with mirrored.scope():
        distributed = make()

    def local(context):
        start = 4 * context.replica_id_in_sync_group
        return y_pred[start : start + 4], labels[start : start + 4]

    values = mirrored.experimental_distribute_values_from_function(local)

    @tf.function
    def step(values):
        mirrored.run(lambda v: distributed.update_state(v[1], v[0]), args=(values,))

    step(values)
    np.testing.assert_allclose(value_of(distributed), value_of(single), rtol=1e-5, atol=1e-6)


def test_per_replica_average_differs_from_the_global_value(rng):
    """The check above can fail: averaging halves is not the global metric."""
    y_pred, labels = make_batch(rng, "clustered", batch=8)
    whole, halves = metrics.Uniformity(), metrics.Uniformity()
    whole.update_state(None, y_pred)
    values = []
    for start in (0, 4):
        halves.reset_state()
        halves.update_state(None, y_pred[start : start + 4])
        values.append(float(halves.result()))
    assert abs(np.mean(values) - float(whole.result())) > 1e-3


# --- bad input ------------------------------------------------------------


def test_tolerance_without_labels_raises(rng):
    with pytest.raises(ValueError, match="Tolerance.*needs integer labels.*y_true=None"):
        metrics.Tolerance().update_state(None, make_batch(rng, "random")[0])


@pytest.mark.parametrize("name", METRICS)
@pytest.mark.parametrize("shape", [(6, 5), (6, 2, 1, 5)])
def test_wrong_rank_raises(rng, name, shape):
    with pytest.raises(ValueError, match="rank 3. Received: y_pred.shape="):
        METRICS[name][0]().update_state(np.zeros(6), np.ones(shape, "float32"))


@pytest.mark.parametrize(
    "make", [metrics.Alignment, metrics.PositiveSimilarity, metrics.ContrastiveAccuracy]
)
def test_one_view_for_a_positive_pair_metric_raises(make):
    with pytest.raises(ValueError, match=r"at least 2 views.*y_pred.shape=\(6, 1, 5\)"):
        make().update_state(None, np.ones((6, 1, 5), "float32"))


def test_k_larger_than_the_negatives_raises(rng):
    metric = metrics.NearestNegativeSimilarity(k=11)
    with pytest.raises(ValueError, match="at most the 10 negatives.*k=11"):
        metric.update_state(None, make_batch(rng, "random")[0])


@pytest.mark.parametrize("k", [0, -1, 2.5, None])
def test_bad_k_raises(k):
    with pytest.raises(ValueError, match="Received: k="):
        metrics.NearestNegativeSimilarity(k=k)


@pytest.mark.parametrize(
    "make, argument",
    [(metrics.Uniformity, "t"), (metrics.Alignment, "alpha"), (metrics.PenaltyEntropy, "tau"),
     (metrics.EffectiveNegatives, "tau")],
)
@pytest.mark.parametrize("value", [0.0, -2.0, float("nan")])
def test_non_positive_scale_raises(make, argument, value):
    with pytest.raises(ValueError, match=f"Received: {argument}="):
        make(**{argument: value})


def test_labels_of_wrong_shape_raise(rng):
    with pytest.raises(ValueError, match=r"one label per sample.*y_true.shape=\(5,\)"):
        metrics.Tolerance().update_state(np.zeros(5), make_batch(rng, "random")[0])


@pytest.mark.parametrize("name", METRICS)
def test_a_non_finite_embedding_gives_nan_not_a_finite_value(rng, name):
    y_pred, labels = make_batch(rng, "random")
    y_pred[1, 0, 2] = np.nan
    metric = METRICS[name][0]()
    feed(metric, [y_pred], [labels])
    assert np.all(np.isnan(value_of(metric)))
    metric.reset_state()
    feed(metric, [np.zeros_like(y_pred)], [labels])
    assert np.all(np.isfinite(value_of(metric)))
