"""Temperature tuning with KerasTuner on a Fashion-MNIST subset."""

import keras_tuner
import numpy as np
import pytest

import keras_contrastive as kc
from keras_contrastive.tuning import ContrastiveHyperModel
from keras_contrastive.tuning import format_summary
from keras_contrastive.tuning import tuning_summary


@pytest.fixture(scope="module")
def splits(fashion_mnist):
    train_images, train_labels = fashion_mnist["train"]
    test_images, test_labels = fashion_mnist["test"]
    return (train_images[:1024, ..., None], train_labels[:1024]), (
        test_images[:400, ..., None],
        test_labels[:400],
    )


def hypermodel(splits, **kwargs):
    train, test = splits
    return ContrastiveHyperModel(
        build_encoder=lambda: kc.encoders.small_cnn((28, 28, 1), width=4, feature_dim=16),
        bank_data=train,
        validation_data=test,
        augmenter=lambda: kc.Augmenter(28),
        projection_dim=16,
        num_negatives_choices=(8, 32),
        knn_k=20,
        **kwargs,
    )


def search(tuner, splits, epochs=1):
    train, _ = splits
    tuner.search(train[0], epochs=epochs, batch_size=128, verbose=0)
    return tuning_summary(tuner)


def assert_completed_and_consistent(tuner, rows, trials):
    assert len(rows) == trials
    assert all(row["status"] == keras_tuner.engine.trial.TrialStatus.COMPLETED for row in rows)
    best = tuner.oracle.get_best_trials(1)[0]
    assert best.score == max(row["objective"] for row in rows) == rows[0]["objective"]
    for row in rows:
        assert 0.03 <= row["tau"] <= 1.0
        assert 0.0 < row["objective"] <= 1.0
        assert row["uniformity"] is not None and row["tolerance"] is not None
        assert row["space"] == "projection"


@pytest.mark.slow
def test_random_search_completes_and_summarises(splits, tmp_path):
    model = hypermodel(splits)
    tuner = keras_tuner.RandomSearch(
        model, objective=model.objective(), max_trials=3, seed=1, directory=tmp_path, project_name="random"
    )
    rows = search(tuner, splits)
    assert_completed_and_consistent(tuner, rows, 3)
    table = format_summary(rows)
    assert table.count("\n") == 4 and "COMPLETED" in table


@pytest.mark.slow
def test_bayesian_optimization_with_learning_rate(splits, tmp_path):
    model = hypermodel(splits, learning_rate=(1e-4, 1e-2))
    tuner = keras_tuner.BayesianOptimization(
        model, objective=model.objective(), max_trials=3, seed=2, directory=tmp_path, project_name="bayes"
    )
    rows = search(tuner, splits)
    assert_completed_and_consistent(tuner, rows, 3)
    assert all(1e-4 <= row["learning_rate"] <= 1e-2 for row in rows)


@pytest.mark.slow
def test_hyperband(splits, tmp_path):
    model = hypermodel(splits, losses=("hard_contrastive",))
    tuner = keras_tuner.Hyperband(
        model, objective=model.objective(), max_epochs=2, factor=2, hyperband_iterations=1,
        seed=3, directory=tmp_path, project_name="hyperband",
    )
    rows = search(tuner, splits, epochs=2)
    assert len(rows) >= 3
    assert all(row["status"] == keras_tuner.engine.trial.TrialStatus.COMPLETED for row in rows)
    assert all(row["loss"] == "hard_contrastive" and row["num_negatives"] in (8, 32) for row in rows)


def test_val_loss_is_refused_as_the_objective(splits):
    with pytest.raises(ValueError, match="tau-independent.*objective_name='val_loss'"):
        hypermodel(splits, objective_name="val_loss")


def test_bad_arguments_raise(splits):
    with pytest.raises(ValueError, match="Received: losses=\\('simple',\\)"):
        hypermodel(splits, losses=("simple",))
    with pytest.raises(ValueError, match="tau_range=\\(1.0, 0.1\\)"):
        hypermodel(splits, tau_range=(1.0, 0.1))
    with pytest.raises(ValueError, match="linear_probe_epochs"):
        hypermodel(splits, objective_name="linear_accuracy")
    with pytest.raises(ValueError, match="Received: space='pixels'"):
        hypermodel(splits, space="pixels")


def test_the_objective_names_its_space(splits):
    assert hypermodel(splits).objective().name == "val_projection_knn_accuracy"
    assert hypermodel(splits, space="features").objective().name == "val_features_knn_accuracy"
    probe = hypermodel(splits, objective_name="linear_accuracy", linear_probe_epochs=1)
    assert probe.objective().name == "val_features_linear_accuracy"


@pytest.mark.slow
def test_the_features_space_is_measured_and_summarised(splits, tmp_path):
    model = hypermodel(splits, space="features")
    tuner = keras_tuner.RandomSearch(
        model, objective=model.objective(), max_trials=1, seed=4, directory=tmp_path, project_name="features"
    )
    rows = search(tuner, splits)
    assert rows[0]["space"] == "features" and rows[0]["status"] == keras_tuner.engine.trial.TrialStatus.COMPLETED
    assert "| features |" in format_summary(rows)


def test_each_trial_is_seeded(splits):
    model = hypermodel(splits)
    hp = keras_tuner.HyperParameters()
    first = model.build(hp).get_weights()
    second = model.build(hp).get_weights()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
