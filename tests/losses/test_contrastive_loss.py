"""Behaviours every contrastive loss shares, checked on all four."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_contrastive
from keras_contrastive import losses
from tests.backends import compiled
from tests.backends import run_time_error
from tests.backends import tensorflow_only
from tests.losses import numpy_reference

# name: (class instance at tau, functional form, reference kind, selection)
LOSSES = {
    "info_nce": (
        lambda tau: losses.InfoNCE(tau=tau),
        losses.info_nce,
        {},
    ),
    "hard": (
        lambda tau: losses.HardContrastiveLoss(tau=tau, num_negatives=5),
        losses.hard_contrastive_loss,
        {"num_negatives": 5},
    ),
    "simple": (
        lambda tau: losses.SimpleContrastiveLoss(tau=tau),
        losses.simple_contrastive_loss,
        {},
    ),
    "hard_simple": (
        lambda tau: losses.HardSimpleContrastiveLoss(num_negatives=5, tau=tau),
        losses.hard_simple_contrastive_loss,
        {"num_negatives": 5},
    ),
}


def make_embeddings(rng, kind, batch=6, views=2, dim=8):
    if kind == "random":
        return rng.normal(size=(batch, views, dim)).astype("float32")
    # Clustered: three class centres, views close to their sample.
    centres = rng.normal(size=(3, dim)) * 3.0
    samples = centres[np.arange(batch) % 3] + rng.normal(size=(batch, dim))
    views_ = samples[:, None, :] + 0.3 * rng.normal(size=(batch, views, dim))
    return views_.astype("float32")


def reference(name, labels, y_pred, tau, **candidates):
    _, _, selection = LOSSES[name]
    kind = "info_nce" if name in ("info_nce", "hard") else "simple"
    return numpy_reference.per_sample(
        kind, labels, y_pred, tau, **selection, **candidates
    )


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("embeddings", ["random", "clustered"])
@pytest.mark.parametrize("tau", [0.05, 0.3, 1.0])
@pytest.mark.parametrize("views", [2, 4])
@pytest.mark.parametrize("num_extra", [0, 5])
def test_matches_numpy_reference(rng, name, embeddings, tau, views, num_extra):
    y_pred = make_embeddings(rng, embeddings, views=views)
    extra = rng.normal(size=(num_extra, 8)).astype("float32") if num_extra else None
    _, functional, selection = LOSSES[name]
    actual = functional(None, y_pred, tau=tau, extra_negatives=extra, **selection)
    expected = reference(name, None, y_pred, tau, extra=extra)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("label_mode", ["supervised", "mask"])
def test_labels_match_numpy_reference(rng, name, label_mode):
    y_pred = make_embeddings(rng, "clustered", batch=8, views=2)
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 3])
    extra = rng.normal(size=(6, 8)).astype("float32")
    extra_labels = np.array([0, 1, 5, 5, 2, 0])
    _, functional, selection = LOSSES[name]
    actual = functional(
        labels,
        y_pred,
        tau=0.2,
        label_mode=label_mode,
        extra_negatives=extra,
        extra_labels=extra_labels,
        **selection,
    )
    expected = reference(
        name,
        labels,
        y_pred,
        0.2,
        label_mode=label_mode,
        extra=extra,
        extra_labels=extra_labels,
    )
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", LOSSES)
def test_class_reduces_the_functional_form(rng, name):
    y_pred = make_embeddings(rng, "random")
    make, functional, selection = LOSSES[name]
    per_sample = functional(None, y_pred, tau=0.3, **selection)
    np.testing.assert_allclose(make(0.3)(None, y_pred), np.mean(per_sample), rtol=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_reduction_and_sample_weight_follow_keras(rng, name):
    y_pred = make_embeddings(rng, "random")
    weights = rng.uniform(size=(6,)).astype("float32")
    make, functional, selection = LOSSES[name]
    per_sample = np.asarray(functional(None, y_pred, tau=0.3, **selection))
    config = make(0.3).get_config()
    unreduced = make(0.3).from_config({**config, "reduction": None})
    summed = make(0.3).from_config({**config, "reduction": "sum"})
    np.testing.assert_allclose(unreduced(None, y_pred), per_sample, rtol=1e-6)
    np.testing.assert_allclose(summed(None, y_pred), per_sample.sum(), rtol=1e-5)
    np.testing.assert_allclose(
        make(0.3)(None, y_pred, sample_weight=weights),
        np.sum(per_sample * weights) / 6,
        rtol=1e-5,
    )


@pytest.mark.parametrize("name", LOSSES)
def test_y_true_is_ignored_without_label_mode(rng, name):
    y_pred = make_embeddings(rng, "random")
    loss = LOSSES[name][0](0.3)
    np.testing.assert_allclose(
        loss(None, y_pred), loss(np.arange(6) % 2, y_pred), rtol=1e-6
    )


@pytest.mark.parametrize("name", LOSSES)
def test_get_config_round_trip(name):
    loss = LOSSES[name][0](0.25)
    restored = type(loss).from_config(loss.get_config())
    assert restored.get_config() == loss.get_config()
    assert restored.tau == 0.25
    deserialized = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(deserialized) is type(loss)
    assert deserialized.get_config() == loss.get_config()


def small_model(views=2, dim=4):
    inputs = keras.Input((6,))
    projected = keras.layers.Dense(views * dim)(inputs)
    outputs = keras.layers.Reshape((views, dim))(projected)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("name", LOSSES)
def test_keras_file_round_trip_restores_the_loss(tmp_path, rng, name):
    model = small_model()
    loss = LOSSES[name][0](0.3)
    model.compile(optimizer="adam", loss=loss)
    x = rng.normal(size=(16, 6)).astype("float32")
    model.fit(x, np.zeros(16), epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert type(restored.loss) is type(loss)
    assert restored.loss.get_config() == loss.get_config()
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("name", LOSSES)
def test_one_epoch_fit_without_labels_lowers_nothing_to_nan(rng, name):
    model = small_model()
    model.compile(optimizer="adam", loss=LOSSES[name][0](0.3))
    x = rng.normal(size=(32, 6)).astype("float32")
    history = model.fit(x, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_label_mode_without_labels_raises(rng):
    y_pred = make_embeddings(rng, "random")
    with pytest.raises(ValueError, match="label_mode='supervised'.*y_true=None"):
        losses.InfoNCE(label_mode="supervised")(None, y_pred)
    with pytest.raises(ValueError, match="label_mode='mask'.*y_true=None"):
        losses.info_nce(None, y_pred, label_mode="mask")


def test_package_exports_the_losses():
    for name in [
        "InfoNCE",
        "HardContrastiveLoss",
        "SimpleContrastiveLoss",
        "HardSimpleContrastiveLoss",
    ]:
        assert getattr(keras_contrastive, name) is getattr(losses, name)


# --- bad input: a ValueError that names the argument and the value -------


@pytest.mark.parametrize("tau", [0, -0.1, float("nan"), float("inf"), "0.1"])
@pytest.mark.parametrize("name", LOSSES)
def test_bad_tau_raises(name, tau):
    with pytest.raises(ValueError, match=r"`tau` must be .* Received: tau="):
        LOSSES[name][0](tau)


@pytest.mark.parametrize("name", LOSSES)
def test_bad_tau_in_functional_form_raises(rng, name):
    with pytest.raises(ValueError, match="Received: tau=-1"):
        LOSSES[name][1](None, make_embeddings(rng, "random"), tau=-1.0, **LOSSES[name][2])


@pytest.mark.parametrize("cls", [losses.HardContrastiveLoss, losses.HardSimpleContrastiveLoss])
@pytest.mark.parametrize("num_negatives", [0, -3, 2.5, True])
def test_bad_num_negatives_raises(cls, num_negatives):
    with pytest.raises(ValueError, match="Received: num_negatives="):
        cls(num_negatives=num_negatives)


@pytest.mark.parametrize("cls", [losses.HardContrastiveLoss, losses.HardSimpleContrastiveLoss])
@pytest.mark.parametrize("alpha", [0.0, -0.5, 1.5, float("nan")])
def test_bad_alpha_raises(cls, alpha):
    with pytest.raises(ValueError, match="Received: alpha="):
        cls(alpha=alpha)


@pytest.mark.parametrize("cls", [losses.HardContrastiveLoss, losses.HardSimpleContrastiveLoss])
def test_both_selections_raise(cls):
    with pytest.raises(ValueError, match="only one of `num_negatives` and `alpha`"):
        cls(num_negatives=4, alpha=0.5)


def test_hard_simple_requires_a_selection():
    with pytest.raises(ValueError, match="One of `num_negatives` and `alpha` is required"):
        losses.HardSimpleContrastiveLoss()


def test_hard_contrastive_defaults_to_the_paper_alpha():
    assert losses.HardContrastiveLoss().alpha == pytest.approx(4095 / 50000)


@pytest.mark.parametrize("name", ["hard", "hard_simple"])
def test_more_negatives_than_available_raises(rng, name):
    y_pred = make_embeddings(rng, "random", batch=4, views=2)  # 6 negatives
    functional = LOSSES[name][1]
    with pytest.raises(ValueError, match=r"at most the 6 negatives.*num_negatives=7"):
        functional(None, y_pred, num_negatives=7)
    extra = rng.normal(size=(3, 8)).astype("float32")
    assert np.all(np.isfinite(functional(None, y_pred, num_negatives=9, extra_negatives=extra)))


def test_bad_lam_raises():
    with pytest.raises(ValueError, match="Received: lam=-1"):
        losses.SimpleContrastiveLoss(lam=-1.0)


def test_bad_label_mode_raises():
    with pytest.raises(ValueError, match="Received: label_mode='labels'"):
        losses.InfoNCE(label_mode="labels")


@pytest.mark.parametrize("shape", [(6, 8), (6, 2, 2, 8), (8,)])
@pytest.mark.parametrize("name", LOSSES)
def test_wrong_rank_raises(name, shape):
    with pytest.raises(ValueError, match=r"rank 3. Received: y_pred.shape="):
        LOSSES[name][0](0.3)(None, np.ones(shape, "float32"))


@pytest.mark.parametrize("name", LOSSES)
def test_one_view_without_extra_negatives_raises(name):
    with pytest.raises(ValueError, match=r"at least 2 views.*y_pred.shape=\(6, 1, 8\)"):
        LOSSES[name][0](0.3)(None, np.ones((6, 1, 8), "float32"))


@pytest.mark.parametrize("name", LOSSES)
def test_batch_of_one_without_extra_negatives_raises(name):
    with pytest.raises(ValueError, match=r"at least 2 samples.*y_pred.shape=\(1, 2, 8\)"):
        LOSSES[name][1](None, np.ones((1, 2, 8), "float32"), **LOSSES[name][2])


def test_no_in_batch_negatives_and_no_extra_raises(rng):
    with pytest.raises(ValueError, match="in_batch_negatives=False"):
        losses.info_nce(None, make_embeddings(rng, "random"), in_batch_negatives=False)


@pytest.mark.parametrize("labels_shape", [(5,), (6, 2), (2, 3)])
def test_labels_of_wrong_shape_raise(rng, labels_shape):
    with pytest.raises(ValueError, match=r"one label per sample.*y_true.shape="):
        losses.info_nce(
            np.zeros(labels_shape, "int32"),
            make_embeddings(rng, "random"),
            label_mode="supervised",
        )


def test_extra_negatives_of_wrong_dim_raise(rng):
    with pytest.raises(ValueError, match=r"\(num_extra, 8\).*extra_negatives.shape=\(5, 7\)"):
        losses.info_nce(None, make_embeddings(rng, "random"), extra_negatives=np.ones((5, 7)))


def test_extra_labels_of_wrong_shape_raise(rng):
    with pytest.raises(ValueError, match=r"extra_labels.shape=\(4,\)"):
        losses.info_nce(
            np.zeros(6),
            make_embeddings(rng, "random"),
            label_mode="supervised",
            extra_negatives=np.ones((5, 8)),
            extra_labels=np.zeros(4),
        )


@tensorflow_only
def test_errors_come_before_any_work(rng):
    """A bad argument raises before a similarity is computed (no op runs)."""
    import tensorflow as tf

    y_pred = tf.constant(make_embeddings(rng, "random"))

    @tf.function
    def traced():
        return losses.hard_contrastive_loss(None, y_pred, num_negatives=100)

    with pytest.raises(ValueError, match="num_negatives=100"):
        traced.get_concrete_function()


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_embeddings_give_nan_not_a_finite_loss(rng, name, bad):
    make, function, selection = LOSSES[name]
    y_pred = make_embeddings(rng, "random")
    broken = y_pred.copy()
    broken[2, 1, 3] = bad
    assert np.isnan(float(make(0.1)(None, broken)))
    assert np.isnan(float(make(0.1)(None, np.full_like(y_pred, np.nan))))
    # A non-finite entry of the extra negatives (a bank, a queue) too.
    extra = rng.normal(size=(7, y_pred.shape[-1])).astype("float32")
    extra[4, 0] = bad
    assert np.all(np.isnan(function(None, y_pred, tau=0.1, extra_negatives=extra, **selection)))
    # Zero vectors keep their finite handling.
    assert np.isfinite(float(make(0.1)(None, np.zeros_like(y_pred))))


@pytest.mark.parametrize("name", LOSSES)
def test_tau_as_a_numpy_or_tensor_scalar_is_stored_as_a_float(name):
    import json

    for tau in [np.array(0.2), np.float32(0.2), ops.convert_to_tensor(0.2)]:
        loss = LOSSES[name][0](tau)
        assert isinstance(loss.tau, float) and loss.tau == pytest.approx(0.2)
        json.dumps(loss.get_config())
    for tau in [np.array(-1.0), ops.convert_to_tensor(0.0), np.array([0.1, 0.2])]:
        with pytest.raises(ValueError, match="Received: tau="):
            LOSSES[name][0](tau)


@pytest.mark.parametrize("name", LOSSES)
def test_a_traced_tau_that_is_not_positive_fails_at_run_time(rng, name):
    make, function, selection = LOSSES[name]
    y_pred = make_embeddings(rng, "random")
    compute = compiled(lambda tau: function(None, y_pred, tau=tau, **selection))
    assert np.all(np.isfinite(compute(ops.convert_to_tensor(0.5))))
    with pytest.raises(run_time_error(), match="`tau` must be positive"):
        compute(ops.convert_to_tensor(0.0))


@pytest.mark.parametrize("name", LOSSES)
def test_one_view_with_extras_needs_a_label_mode(rng, name):
    _, function, selection = LOSSES[name]
    y_pred = make_embeddings(rng, "random", views=1)
    extra = rng.normal(size=(9, y_pred.shape[-1])).astype("float32")
    with pytest.raises(ValueError, match="One view has no positive without labels.*label_mode=None"):
        function(None, y_pred, tau=0.1, extra_negatives=extra, **selection)


@tensorflow_only  # JAX shapes are static: the eager check covers it
@pytest.mark.parametrize("cls", [losses.HardContrastiveLoss, losses.HardSimpleContrastiveLoss])
def test_more_hard_negatives_than_a_run_time_batch_has_fail(rng, cls):
    import tensorflow as tf

    loss = cls(tau=0.1, num_negatives=12)
    compute = tf.function(lambda y: loss(None, y), input_signature=[tf.TensorSpec((None, 2, 8))])
    assert np.isfinite(float(compute(make_embeddings(rng, "random", batch=8))))  # 14 negatives
    with pytest.raises(tf.errors.InvalidArgumentError, match="`num_negatives` must be at most.*num_negatives=12"):
        compute(make_embeddings(rng, "random", batch=6))  # a last batch of 6: 10 negatives


@pytest.mark.parametrize("name", LOSSES)
def test_a_block_size_above_the_batch_is_clamped(rng, name):
    _, function, selection = LOSSES[name]
    y_pred = make_embeddings(rng, "random")
    dense = function(None, y_pred, tau=0.2, **selection)
    np.testing.assert_allclose(function(None, y_pred, tau=0.2, block_size=10**9, **selection), dense, rtol=1e-5)


@pytest.mark.parametrize("name", LOSSES)
def test_sample_weight_of_the_wrong_length_raises(rng, name):
    with pytest.raises(ValueError, match=r"`sample_weight` must hold one weight per sample, shape \(6,\).*\(4,\)"):
        LOSSES[name][0](0.1)(None, make_embeddings(rng, "random"), sample_weight=np.ones(4))


def test_float_labels_raise_where_integer_labels_are_needed(rng):
    y_pred = make_embeddings(rng, "random")
    with pytest.raises(ValueError, match="`y_true` must hold integer class labels.*float32"):
        losses.InfoNCE(label_mode="supervised")(np.array([0.5, 1, 2, 0, 1, 2], "float32"), y_pred)
    extra = rng.normal(size=(4, y_pred.shape[-1])).astype("float32")
    with pytest.raises(ValueError, match="`extra_labels` must hold integer class labels"):
        losses.info_nce(np.arange(6), y_pred, label_mode="mask", extra_negatives=extra,
                        extra_labels=np.zeros(4, "float32"))
