"""ContrastiveModel on one device: data forms, XLA, precision, tau, saving."""


import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_contrastive as kc


def dense_encoder(shape=(4, 4, 1)):
    return keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(8)])


def make_model(**kwargs):
    kwargs.setdefault("projector", keras.Sequential([keras.layers.Dense(6)]))
    return kc.ContrastiveModel(dense_encoder(), **kwargs)


def project(model, views):
    """The `(batch, views, dim)` projections, computed view by view."""
    per_view = [model.projector(model.encoder(views[:, v])) for v in range(views.shape[1])]
    return np.stack([np.asarray(p) for p in per_view], axis=1)


@pytest.fixture
def images(rng):
    return rng.uniform(size=(32, 4, 4, 1)).astype("float32")


@pytest.fixture
def labels():
    return np.arange(32) % 4


def test_every_data_form_trains(images, labels):
    forms = [
        {"x": images, "batch_size": 8},
        {"x": images, "y": labels, "batch_size": 8},
        {"x": images, "y": labels, "sample_weight": np.ones(32, "float32"), "batch_size": 8},
        {"x": tf.data.Dataset.from_tensor_slices({"image": images, "label": labels}).batch(8)},
    ]
    for form in forms:
        model = make_model(augmenter=kc.Augmenter(4))
        model.compile(optimizer="adam", loss=kc.InfoNCE(), metrics=[kc.Uniformity()])
        history = model.fit(epochs=1, verbose=0, **form)
        assert np.isfinite(history.history["loss"][0])
        assert np.isfinite(history.history["uniformity"][0])


def test_compile_keeps_the_loss_and_refuses_loss_weights():
    model = make_model()
    loss = kc.HardContrastiveLoss(tau=0.2)
    model.compile(optimizer="adam", loss=loss)
    assert model.loss is loss
    with pytest.raises(ValueError, match="`loss_weights` has no meaning.*Received: loss_weights=0.5"):
        make_model().compile(optimizer="adam", loss=loss, loss_weights=0.5)


def test_load_weights_restores_the_optimizer_state(images, tmp_path):
    """As KerasTuner resumes a trial: a fresh compiled model loads weights
    and optimizer slots (not only the step counter)."""
    model = make_model(augmenter=kc.Augmenter(4), seed=1)
    model.compile(optimizer="adam", loss=kc.InfoNCE())
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    model.save_weights(tmp_path / "trial.weights.h5")
    fresh = make_model(augmenter=kc.Augmenter(4), seed=1)
    fresh.compile(optimizer="adam", loss=kc.InfoNCE())
    fresh.load_weights(tmp_path / "trial.weights.h5")
    assert len(fresh.optimizer.variables) == len(model.optimizer.variables) > 2
    for a, b in zip(fresh.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_labels_reach_the_loss_only_when_it_asks(images, labels, rng):
    views = rng.uniform(size=(8, 2, 4, 4, 1)).astype("float32")
    model = make_model()
    weights = model.get_weights()
    results = {}
    for name, loss, y in [
        ("plain", kc.InfoNCE(), labels[:8]),
        ("plain_no_labels", kc.InfoNCE(), None),
        ("supcon", kc.InfoNCE(label_mode="supervised"), labels[:8]),
    ]:
        model.set_weights(weights)
        model.compile(optimizer="sgd", loss=loss)
        results[name] = model.evaluate(views, y, batch_size=8, verbose=0, return_dict=True)["loss"]
    assert results["plain"] == pytest.approx(results["plain_no_labels"])
    assert results["supcon"] != pytest.approx(results["plain"])


def test_logged_loss_is_the_loss_of_the_projections(rng):
    views = rng.uniform(size=(8, 2, 4, 4, 1)).astype("float32")
    model = make_model()
    model.compile(optimizer="sgd", loss=kc.InfoNCE(tau=0.3))
    logged = model.evaluate(views, batch_size=8, verbose=0, return_dict=True)["loss"]
    projections = project(model, views)
    assert logged == pytest.approx(float(kc.InfoNCE(tau=0.3)(None, projections)), rel=1e-5)


def test_sample_weight_weighs_each_sample(rng):
    views = rng.uniform(size=(8, 2, 4, 4, 1)).astype("float32")
    weights = np.array([1, 0, 2, 1, 0, 1, 1, 3], "float32")
    model = make_model()
    model.compile(optimizer="sgd", loss=kc.InfoNCE(tau=0.3))
    logged = model.evaluate(
        views, np.zeros(8), sample_weight=weights, batch_size=8, verbose=0, return_dict=True
    )["loss"]
    projections = project(model, views)
    per_sample = kc.losses.info_nce(None, projections, tau=0.3).numpy()
    assert logged == pytest.approx(np.sum(per_sample * weights) / 8, rel=1e-5)


def test_jit_compile_compiles_the_whole_step(images):
    model = make_model(augmenter=kc.Augmenter(4))
    model.compile(optimizer="adam", loss=kc.HardContrastiveLoss(tau=0.2, num_negatives=4), jit_compile=True)
    history = model.fit(images, batch_size=8, epochs=1, verbose=0)
    assert model.jit_compile is True
    assert np.isfinite(history.history["loss"][0])


def test_a_layer_without_xla_support_is_named(images):
    encoder = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.RandomCrop(4, 4, name="crop"), keras.layers.Flatten(), keras.layers.Dense(8)]
    )
    model = kc.ContrastiveModel(encoder)
    with pytest.warns(UserWarning, match=r"could not be honoured.*crop"):
        model.compile(optimizer="adam", loss=kc.InfoNCE(), jit_compile=True)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_without_nan(images, policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = kc.ContrastiveModel(
            kc.encoders.small_cnn((4, 4, 1), width=4, feature_dim=8),
            kc.encoders.projection_head("mlp", 8),
            kc.Augmenter(4),
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=kc.InfoNCE(tau=0.05))
        before = [w.copy() for w in model.get_weights()]
        history = model.fit(images, batch_size=16, epochs=3, verbose=0)
    finally:
        keras.config.set_dtype_policy(previous)
    assert np.all(np.isfinite(history.history["loss"]))
    after = model.get_weights()
    assert all(np.all(np.isfinite(w)) for w in after)
    # Scaled correctly: Adam's first steps move weights by about 1e-3 each.
    change = max(np.abs(a - b).max() for a, b in zip(after, before))
    assert 5e-4 < change < 0.1


def test_learnable_temperature_stays_in_its_clamp(images):
    temperature = kc.LearnableTemperature(initial=0.1, minimum=0.05, maximum=0.2)
    model = make_model(augmenter=kc.Augmenter(4), temperature=temperature)
    model.compile(optimizer=keras.optimizers.SGD(50.0), loss=kc.InfoNCE())
    history = model.fit(images, batch_size=8, epochs=3, verbose=0)
    taus = history.history["tau"]
    assert all(0.05 - 1e-6 <= t <= 0.2 + 1e-6 for t in taus)
    assert len(set(np.round(taus, 6))) > 1  # it is trained
    assert any(v is temperature.log_tau for v in model.trainable_variables)


def test_cosine_schedule_follows_its_formula(images):
    schedule = kc.CosineTemperatureSchedule(tau_min=0.1, tau_max=1.0, period=8)
    model = make_model(augmenter=kc.Augmenter(4), temperature=schedule)
    model.compile(optimizer="sgd", loss=kc.InfoNCE())
    history = model.fit(images, batch_size=8, epochs=2, verbose=0)  # 4 steps an epoch
    expected = [0.45 * (1 + np.cos(2 * np.pi * s / 8)) + 0.1 for s in range(8)]
    np.testing.assert_allclose(history.history["tau"], [np.mean(expected[:4]), np.mean(expected[4:])], rtol=1e-5)


def test_float_temperature_overrides_the_loss_tau(rng):
    views = rng.uniform(size=(8, 2, 4, 4, 1)).astype("float32")
    model = make_model(temperature=0.5)
    model.compile(optimizer="sgd", loss=kc.InfoNCE(tau=0.1))
    logs = model.evaluate(views, batch_size=8, verbose=0, return_dict=True)
    model_tau = make_model()
    model_tau.set_weights(model.get_weights())
    model_tau.compile(optimizer="sgd", loss=kc.InfoNCE(tau=0.5))
    assert logs["tau"] == pytest.approx(0.5)
    expected = model_tau.evaluate(views, batch_size=8, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(expected["loss"], rel=1e-6)


def test_fifo_queue_adds_negatives_and_enqueues(images):
    queue = kc.FifoQueue(12, seed=1)
    model = make_model(augmenter=kc.Augmenter(4), negatives=queue)
    model.compile(optimizer="sgd", loss=kc.InfoNCE())
    before = np.array(queue.embeddings)
    model.fit(images[:8], batch_size=8, epochs=1, verbose=0)
    after = np.array(queue.embeddings)
    assert int(queue.position.numpy()) == 8
    assert np.abs(after[:8] - before[:8]).max() > 0
    np.testing.assert_array_equal(after[8:], before[8:])


@pytest.mark.parametrize("negatives", ["batch", "bank", "queue"])
def test_save_and_load_restore_everything(tmp_path, images, labels, negatives):
    kwargs = {"augmenter": kc.Augmenter(4), "temperature": kc.LearnableTemperature()}
    data = {"x": images, "y": labels, "batch_size": 8}
    if negatives == "bank":
        kwargs.update(negatives=kc.MemoryBank(32, seed=2), views=1)
        data = {"x": tf.data.Dataset.from_tensor_slices({"image": images, "index": np.arange(32)}).batch(8)}
    elif negatives == "queue":
        kwargs.update(negatives=kc.FifoQueue(16, seed=2))
    model = make_model(**kwargs)
    model.compile(optimizer="adam", loss=kc.HardContrastiveLoss(num_negatives=3), metrics=[kc.Uniformity()])
    model.fit(epochs=1, verbose=0, **data)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-6)
    assert int(restored.optimizer.iterations) == int(model.optimizer.iterations) == 4
    for a, b in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(restored.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert restored.contrastive_loss.get_config() == model.contrastive_loss.get_config()
    assert restored.loss.get_config() == model.loss.get_config()
    assert [m.name for m in restored.metrics] == [m.name for m in model.metrics]
    restored.fit(epochs=1, verbose=0, **data)  # and it resumes training


def test_the_model_is_built_before_fit():
    model = make_model(augmenter=kc.Augmenter(4))
    assert model.built and model.projector.built


# --- bad input ------------------------------------------------------------


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="Received: views=1"):
        make_model(views=1)
    with pytest.raises(ValueError, match="Received: negatives='global'"):
        make_model(negatives="global")
    with pytest.raises(ValueError, match="one view per step.*views=2"):
        make_model(negatives=kc.MemoryBank(8))
    with pytest.raises(ValueError, match="Received: temperature=-1"):
        make_model(temperature=-1.0)
    with pytest.raises(ValueError, match="Received: temperature='hot'"):
        make_model(temperature="hot")
    with pytest.raises(ValueError, match="keras_contrastive loss.*Received: loss="):
        make_model().compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="label_mode=None.*label_mode='mask'"):
        make_model(negatives=kc.FifoQueue(8)).compile(optimizer="sgd", loss=kc.InfoNCE(label_mode="mask"))


def test_bank_without_indices_raises(images):
    model = make_model(views=1, negatives=kc.MemoryBank(32))
    model.compile(optimizer="sgd", loss=kc.InfoNCE())
    with pytest.raises(ValueError, match="needs each sample's index"):
        model.fit(images, batch_size=8, epochs=1, verbose=0)


def test_tolerance_without_labels_names_the_metric(images):
    model = make_model(augmenter=kc.Augmenter(4))
    model.compile(optimizer="sgd", loss=kc.InfoNCE(), metrics=[kc.Tolerance()])
    with pytest.raises(ValueError, match="Tolerance.*needs integer labels"):
        model.fit(images, batch_size=8, epochs=1, verbose=0)


def test_a_diverged_encoder_stops_training_on_nan(images):
    # Embeddings holding NaN must not be normalised into a finite loss.
    encoder = keras.Sequential([
        keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3),
        keras.layers.Lambda(lambda x: x * float("nan")),
    ])
    model = kc.ContrastiveModel(encoder, views=2)
    model.compile(optimizer="adam", loss=kc.InfoNCE(tau=0.2), metrics=[kc.Uniformity()])
    history = model.fit(images, batch_size=8, epochs=3, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN()])
    assert len(history.history["loss"]) == 1 and np.isnan(history.history["loss"][0])
    assert np.isnan(history.history["uniformity"][0])


def test_ready_made_views_must_match_views(images):
    model = make_model(views=2)
    model.compile(optimizer="sgd", loss=kc.InfoNCE(tau=0.2))
    three_views = np.stack([images] * 3, axis=1)
    with pytest.raises(ValueError, match=r"must hold `views=2` views per image.*\(8, 3, 4, 4, 1\)"):
        model.fit(three_views, batch_size=8, epochs=1, verbose=0)
