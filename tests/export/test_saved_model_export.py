"""Exported encoders: round trips, fine-tuning, atomic writes and bad input."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_contrastive as kc

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained():
    """A briefly trained ContrastiveModel and its training images."""
    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).uniform(size=(64, 12, 12, 1)).astype("float32")
    model = kc.ContrastiveModel(
        kc.encoders.small_cnn((12, 12, 1), width=4, feature_dim=8),
        kc.encoders.projection_head("linear", 6),
        kc.Augmenter(12),
    )
    model.compile(optimizer="adam", loss=kc.HardContrastiveLoss(tau=0.3, num_negatives=4))
    model.fit(images, batch_size=16, epochs=1, verbose=0)
    return model, images


@pytest.fixture
def exported(trained, tmp_path):
    model, _ = trained
    return kc.export_encoder(model, str(tmp_path / "cnn"), metadata={"dataset": "noise", "epochs": 1})


def classifier(encoder_layer, images, labels):
    inputs = keras.Input(images.shape[1:])
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(encoder_layer(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    return model


def test_serving_signature_and_reusable_call_match_the_encoder(trained, exported):
    model, images = trained
    loaded = tf.saved_model.load(exported)
    outputs = loaded.signatures["serving_default"](images=tf.constant(images[:8]))
    features = model.encoder(images[:8]).numpy()
    projection = model.projector(features).numpy()
    projection /= np.linalg.norm(projection, axis=1, keepdims=True)
    np.testing.assert_allclose(outputs["features"], features, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs["projection"], projection, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded(images[:8], training=False), features, rtol=1e-5, atol=1e-6)
    assert len(loaded.trainable_variables) == len(model.encoder.trainable_variables)
    assert len(loaded.variables) == len(model.encoder.variables)
    assert list(loaded.regularization_losses) == []


def test_load_encoder_matches_and_preprocesses(trained, exported):
    model, images = trained
    layer = kc.load_encoder(exported)
    np.testing.assert_allclose(layer(images[:8]), model.encoder(images[:8]), rtol=1e-5, atol=1e-6)
    as_uint8 = (images[:8] * 255).round().astype("uint8")
    np.testing.assert_allclose(
        layer(as_uint8), model.encoder(as_uint8 / 255.0), rtol=1e-4, atol=1e-5
    )
    assert layer(np.zeros((2, 24, 24, 1), "float32")).shape == (2, 8)  # resized


def test_fine_tuning_through_load_encoder_with_adam(trained, exported):
    _, images = trained
    labels = np.arange(64) % 4
    layer = kc.load_encoder(exported, trainable=True)
    before = [np.array(v) for v in layer.trainable_variables]
    history = classifier(layer, images, labels).fit(images, labels, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert max(np.abs(a - np.array(v)).max() for a, v in zip(before, layer.trainable_variables)) > 1e-4


def test_a_keras_file_with_the_layer_keeps_fine_tuned_weights_and_needs_the_folder(trained, exported, tmp_path):
    import shutil

    _, images = trained
    labels = np.arange(64) % 4
    model = classifier(kc.load_encoder(exported, trainable=True), images, labels)
    model.fit(images, labels, epochs=2, verbose=0)
    model.save(tmp_path / "classifier.keras")
    restored = keras.models.load_model(tmp_path / "classifier.keras")
    np.testing.assert_allclose(restored.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5)
    shutil.rmtree(exported)
    # Keras re-raises a layer's error as a TypeError that quotes it.
    with pytest.raises((FileNotFoundError, TypeError), match="(?s)export folder of this encoder does not exist.*must stay in place"):
        keras.models.load_model(tmp_path / "classifier.keras")


def test_a_frozen_encoder_does_not_change(trained, exported):
    _, images = trained
    layer = kc.load_encoder(exported)
    before = [np.array(v) for v in layer.weights]
    classifier(layer, images, np.arange(64) % 4).fit(images, np.arange(64) % 4, epochs=2, verbose=0)
    assert layer.trainable_weights == []
    for a, v in zip(before, layer.weights):
        np.testing.assert_array_equal(a, np.array(v))


def test_hub_keras_layer_loads_and_fine_tunes(trained, exported):
    hub = pytest.importorskip("tensorflow_hub", reason="tensorflow-hub is not installed (see README)")
    tf_keras = pytest.importorskip("tf_keras", reason="tf-keras is not installed (see README)")
    model, images = trained
    layer = hub.KerasLayer(exported, trainable=True)
    np.testing.assert_allclose(layer(images[:8]), model.encoder(images[:8]), rtol=1e-5, atol=1e-6)
    labels = np.arange(64) % 4
    head = tf_keras.Sequential([tf_keras.Input((12, 12, 1)), layer, tf_keras.layers.Dense(4, activation="softmax")])
    head.compile(optimizer=tf_keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    before = [v.numpy().copy() for v in layer.trainable_variables]
    history = head.fit(images, labels, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert max(np.abs(a - v.numpy()).max() for a, v in zip(before, layer.trainable_variables)) > 1e-4


def run_script(command, arguments):
    return subprocess.run(
        [sys.executable, "-m", "tests.export.export_scripts", command, json.dumps(arguments)],
        cwd=ROOT,
        capture_output=True,
        timeout=180,
    )


@pytest.mark.slow
def test_a_fresh_process_loads_it_without_the_library(trained, exported, tmp_path):
    model, images = trained
    np.save(tmp_path / "images.npy", images[:8])
    result = run_script(
        "load_without_library",
        {"path": exported, "images": str(tmp_path / "images.npy"), "out": str(tmp_path / "out.npz")},
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    outputs = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(outputs["features"], model.encoder(images[:8]), rtol=1e-5, atol=1e-6)


def test_metadata_is_one_call_away(trained, exported):
    metadata = kc.read_metadata(exported)
    assert metadata["image_shape"] == [12, 12, 1]
    assert metadata["value_range"] == [0.0, 1.0]
    assert metadata["feature_dim"] == 8 and metadata["projection_dim"] == 6
    assert metadata["loss"] == "HardContrastiveLoss" and metadata["tau"] == 0.3
    assert metadata["dataset"] == "noise" and metadata["epochs"] == 1
    assert metadata["library_version"] == kc.__version__


def test_versions_are_numbered_and_never_overwritten(trained, tmp_path):
    model, images = trained
    path = str(tmp_path / "cnn")
    assert kc.export_encoder(model, path).endswith(os.path.join("cnn", "1"))
    assert kc.export_encoder(model, path).endswith(os.path.join("cnn", "2"))
    assert kc.export_encoder(model, path, version=7).endswith(os.path.join("cnn", "7"))
    assert kc.export_encoder(model, path).endswith(os.path.join("cnn", "8"))
    with pytest.raises(ValueError, match="Version 2 already exists.*overwrite=True"):
        kc.export_encoder(model, path, version=2)
    kc.export_encoder(model, path, version=2, overwrite=True, metadata={"replaced": True})
    assert kc.read_metadata(os.path.join(path, "2"))["replaced"] is True
    assert sorted(os.listdir(path)) == ["1", "2", "7", "8"]


def test_an_exception_while_writing_leaves_nothing(trained, tmp_path, monkeypatch):
    model, _ = trained
    path = str(tmp_path / "cnn")
    kc.export_encoder(model, path)
    save = tf.saved_model.save

    def save_then_fail(*args, **kwargs):
        save(*args, **kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", save_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        kc.export_encoder(model, path)
    with pytest.raises(RuntimeError, match="disk full"):
        kc.export_encoder(model, path, version=1, overwrite=True)
    assert os.listdir(path) == ["1"]  # no version 2, no temporary folder
    tf.saved_model.load(os.path.join(path, "1"))  # the previous one intact


@pytest.mark.slow
def test_a_killed_export_leaves_no_version_folder(trained, tmp_path):
    model, _ = trained
    path = str(tmp_path / "cnn")
    kc.export_encoder(model, path)
    model_path = str(tmp_path / "model.keras")
    model.save(model_path)
    result = run_script("killed_export", {"model_path": model_path, "path": path})
    assert result.returncode == -9, result.stderr.decode()[-3000:]
    versions = [name for name in os.listdir(path) if not name.startswith(".")]
    assert versions == ["1"]
    assert kc.read_metadata(os.path.join(path, "1"))["version"] == 1


def race(model, tmp_path, writers, version=None):
    """`writers` processes export `model` into one folder at the same instant."""
    model_path, start = str(tmp_path / "model.keras"), tmp_path / "start"
    model.save(model_path)
    arguments = {"model_path": model_path, "path": str(tmp_path / "cnn"), "start_file": str(start),
                 "version": version}
    command = [sys.executable, "-m", "tests.export.export_scripts", "concurrent_export", json.dumps(arguments)]
    processes = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(writers)]
    start.write_text("go")
    outputs = [process.communicate(timeout=300) for process in processes]
    assert all(process.returncode == 0 for process in processes), [err[-2000:] for _, err in outputs]
    return [out.strip().splitlines()[-1] for out, _ in outputs]


@pytest.mark.slow
def test_concurrent_exports_each_get_their_own_version(trained, tmp_path):
    model, images = trained
    lines = race(model, tmp_path, writers=4)
    paths = sorted(line.split(" ", 1)[1] for line in lines)
    assert all(line.startswith("exported ") for line in lines)
    assert paths == [str(tmp_path / "cnn" / str(v)) for v in (1, 2, 3, 4)]
    assert sorted(os.listdir(tmp_path / "cnn")) == ["1", "2", "3", "4"]  # no temporaries left
    for version, path in enumerate(paths, start=1):
        assert kc.read_metadata(path)["version"] == version
        outputs = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(images[:4]))
        np.testing.assert_allclose(outputs["features"], model.encoder(images[:4]), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_concurrent_exports_to_one_explicit_version_never_replace(trained, tmp_path):
    model, _ = trained
    lines = race(model, tmp_path, writers=2, version=3)
    assert sorted(line.split(" ")[0] for line in lines) == ["exported", "refused"]
    assert "Version 3 already exists" in [line for line in lines if line.startswith("refused")][0]
    assert sorted(os.listdir(tmp_path / "cnn")) == ["3"]


def test_a_dead_writers_temporary_folder_is_removed(trained, tmp_path):
    from keras_contrastive.export import saved_model_export as module

    model, _ = trained
    path = tmp_path / "cnn"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        live_folder = path / (module._temporary_prefix(sleeper.pid) + "abc")
        dead_folders = [path / (module._temporary_prefix(dead.pid) + "def"),
                        path / (module._temporary_prefix(dead.pid) + "def-assets")]
        for folder in [live_folder, *dead_folders]:
            folder.mkdir(parents=True)
        kc.export_encoder(model, str(path))
        assert sorted(os.listdir(path)) == sorted(["1", live_folder.name])
    finally:
        sleeper.kill()
        sleeper.wait()


def test_bad_input_raises(trained, tmp_path):
    model, _ = trained
    unbuilt = kc.ContrastiveModel(keras.Sequential([keras.layers.Dense(3)]), views=2)
    with pytest.raises(ValueError, match="must be built"):
        kc.export_encoder(unbuilt, str(tmp_path / "a"))
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ValueError, match="a file is there"):
        kc.export_encoder(model, str(tmp_path / "file"))
    vector_encoder = keras.Sequential([keras.Input((10,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"images of a fixed shape.*\(10,\)"):
        kc.export_encoder(vector_encoder, str(tmp_path / "b"))
    for version in [0, -1, "2", True, 1.5]:
        with pytest.raises(ValueError, match="Received: version="):
            kc.export_encoder(model, str(tmp_path / "c"), version=version)
    with pytest.raises(ValueError, match="Received: ndarray"):
        kc.export_encoder(np.zeros(3), str(tmp_path / "d"))
    with pytest.raises(ValueError, match="No keras_contrastive export"):
        kc.load_encoder(str(tmp_path))
