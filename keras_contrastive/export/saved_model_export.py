"""Exporting a pretrained encoder as a reusable, servable SavedModel."""

import errno
import json
import os
import re
import shutil
import socket
import uuid

import keras
import tensorflow as tf

from keras_contrastive.augmentation.augmenter import Augmenter
from keras_contrastive.models.contrastive_model import ContrastiveModel
from keras_contrastive.utils import backend
from keras_contrastive.utils.embeddings import l2_normalize
from keras_contrastive.version import __version__

METADATA_FILE = "keras_contrastive.json"
_VERSION_FOLDER = re.compile(r"^[1-9][0-9]*$")


def export_encoder(
    model_or_encoder,
    path,
    version=None,
    metadata=None,
    overwrite=False,
):
    """Writes an encoder as a TF Hub-style reusable SavedModel, atomically.

    The export lands in `path/<version>/` (the TF Serving layout; the next
    free number when `version` is None) and holds:

    - a `serving_default` signature taking `images` (float32 in [0, 1],
      `(batch, height, width, channels)`; floats in [0, 255] are not
      detected there and give wrong features: divide them by 255 first) and
      returning `features` (the
      encoder's output) and `projection` (the L2-normalised projection, when
      the model has a projector), so TF Serving and `tf.saved_model.load`
      callers need no Keras;
    - the reusable-SavedModel contract: `__call__(images, training)`
      returning the features, `variables`, `trainable_variables` and
      `regularization_losses`, so `hub.KerasLayer(path, trainable=True)`
      fine-tunes it;
    - `assets/keras_contrastive.json`: the input contract and the training
      recipe (see `read_metadata`).

    The SavedModel is written to a temporary folder beside the target and
    renamed into place, so a crash leaves either the complete new version or
    nothing; an existing version is replaced only with `overwrite=True`, and
    then only once the new one is complete. Several processes may export
    into one folder at once: the rename claims a version only if no other
    export holds it, so each one that returns holds exactly what it wrote
    (without `version`, a writer that loses the race takes the next free
    number; with it, it fails). Temporary folders left by killed exports on
    this host are removed by the next export.

    Args:
        model_or_encoder: A built `ContrastiveModel` (its encoder, projector,
            augmenter size, loss and tau are exported) or a built Keras
            encoder taking images.
        path: The export's folder, e.g. `"saved_models/fashion_cnn"`.
        version: A positive integer, or None for the next free version.
            Defaults to `None`.
        metadata: Optional dict merged into the recipe (dataset, epochs, ...).
            Defaults to `None`.
        overwrite: Whether an existing `version` may be replaced. Defaults
            to `False`.

    Returns:
        The path of the version folder written.
    """
    backend.require_tensorflow("`export_encoder`")
    encoder, projector, recipe = _parts(model_or_encoder)
    image_shape = _image_shape(encoder)
    version = _check_version(version)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(
            f"`path` must be a folder for numbered versions; a file is there. "
            f"Received: path={path!r}"
        )
    os.makedirs(path, exist_ok=True)
    _remove_dead_temporaries(path)
    requested = version
    version = version or _next_version(path)
    if not overwrite:
        _check_free(path, version)
    recipe.update(
        {
            "image_shape": list(image_shape),
            "value_range": [0.0, 1.0],
            "input_dtype": "float32",
            "normalization": "none: images in [0, 1]; the encoder holds any "
            "further normalisation",
            "feature_dim": int(encoder.compute_output_shape((None, *image_shape))[-1]),
            "library": "keras_contrastive",
            "library_version": __version__,
            "version": version,
        }
    )
    if projector is not None:
        projection_shape = projector.compute_output_shape(
            encoder.compute_output_shape((None, *image_shape))
        )
        recipe["projection_dim"] = int(projection_shape[-1])
    recipe.update(metadata or {})

    temporary = os.path.join(path, f"{_temporary_prefix()}{uuid.uuid4().hex}")
    try:
        _write_saved_model(encoder, projector, image_shape, recipe, temporary)
        if overwrite:
            return _replace(temporary, os.path.join(path, str(version)))
        return _claim(temporary, path, version, requested is None)
    finally:
        for leftover in (temporary, temporary + "-assets"):
            if os.path.exists(leftover):
                shutil.rmtree(leftover)


def read_metadata(path):
    """Returns the input contract and training recipe of an export (a dict)."""
    metadata_path = os.path.join(path, "assets", METADATA_FILE)
    if not os.path.exists(metadata_path):
        raise ValueError(
            "No keras_contrastive export (assets/keras_contrastive.json) at "
            f"this path. Received: path={path!r}"
        )
    with open(metadata_path) as f:
        return json.load(f)


def _parts(model_or_encoder):
    """Returns (encoder, projector, recipe) and checks they are built."""
    recipe = {}
    if isinstance(model_or_encoder, ContrastiveModel):
        model = model_or_encoder
        encoder, projector = model.encoder, model.projector
        if model.contrastive_loss is not None:
            recipe["loss"] = type(model.contrastive_loss).__name__
            recipe["loss_config"] = model.contrastive_loss.get_config()
            recipe["tau"] = model.contrastive_loss.tau
        recipe["views"] = model.views
        if isinstance(model.augmenter, Augmenter):
            recipe["augmentation"] = model.augmenter.recipe
    elif isinstance(model_or_encoder, keras.Model):
        encoder, projector = model_or_encoder, None
    else:
        raise ValueError(
            "`model_or_encoder` must be a ContrastiveModel or a Keras model. "
            f"Received: {type(model_or_encoder).__name__}"
        )
    if not encoder.built or (projector is not None and not projector.built):
        raise ValueError(
            "The encoder must be built (trained, or called once) before "
            f"export. Received: an unbuilt {type(model_or_encoder).__name__}"
        )
    return encoder, projector, recipe


def _image_shape(encoder):
    inputs = getattr(encoder, "inputs", None)
    shape = tuple(inputs[0].shape[1:]) if inputs else None
    if shape is None or len(shape) != 3 or None in shape:
        raise ValueError(
            "The encoder must take images of a fixed shape (height, width, "
            f"channels). Received: input shape {shape}"
        )
    return shape


def _check_version(version):
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(
            f"`version` must be a positive integer or None. Received: version={version!r}"
        )
    return version


def _next_version(path):
    existing = [int(name) for name in os.listdir(path) if _VERSION_FOLDER.match(name)]
    return max(existing, default=0) + 1


def _check_free(path, version):
    target = os.path.join(path, str(version))
    if os.path.exists(target):
        raise ValueError(
            f"Version {version} already exists at {target!r}; pass "
            f"overwrite=True to replace it. Received: version={version}"
        )


def _claim(temporary, path, version, take_next):
    """Renames `temporary` to the version folder, if no export holds it.

    Renaming a folder onto a non-empty one fails, so of several processes
    renaming onto one version exactly one wins. A loser takes the next free
    number (its metadata says so) when `take_next`, else raises.
    """
    while True:
        target = os.path.join(path, str(version))
        try:
            os.rename(temporary, target)
            return target
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if take_next:
            version = _next_version(path)
            _set_metadata_version(temporary, version)
        else:
            _check_free(path, version)  # raises, unless the holder just went


def _set_metadata_version(folder, version):
    metadata_path = os.path.join(folder, "assets", METADATA_FILE)
    with open(metadata_path) as f:
        metadata = json.load(f)
    metadata["version"] = version
    with open(metadata_path, "w") as f:
        json.dump(metadata, f, indent=2, default=str)


def _replace(temporary, target):
    """Renames `temporary` to `target`; an old `target` goes only afterwards."""
    if not os.path.exists(target):
        os.rename(temporary, target)
        return target
    retired = f"{target}.old-{uuid.uuid4().hex}"
    os.rename(target, retired)
    try:
        os.rename(temporary, target)
    except OSError:
        os.rename(retired, target)
        raise
    shutil.rmtree(retired)
    return target


def _temporary_prefix(pid=None):
    """Temporary folders name their host and process, so a later export can
    tell a killed writer's leftovers from a live writer's work."""
    return f".tmp-{socket.gethostname()}-{pid or os.getpid()}-"


def _remove_dead_temporaries(path):
    pattern = re.compile(re.escape(f".tmp-{socket.gethostname()}-") + r"(\d+)-")
    for name in os.listdir(path):
        match = pattern.match(name)
        if match and not _process_exists(int(match.group(1))):
            shutil.rmtree(os.path.join(path, name), ignore_errors=True)


def _process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _regularization_losses(encoder):
    """Zero-argument functions returning each weight regularizer's penalty."""
    losses = []
    for layer in encoder._flatten_layers():
        for attribute in ("kernel", "bias"):
            regularizer = getattr(layer, f"{attribute}_regularizer", None)
            weight = getattr(layer, attribute, None)
            if regularizer is not None and weight is not None:
                losses.append(
                    tf.function(lambda r=regularizer, w=weight: r(w), input_signature=[])
                )
    return losses


def _write_saved_model(encoder, projector, image_shape, recipe, folder):
    root = tf.__internal__.tracking.AutoTrackable()
    root.encoder = encoder
    root.projector = projector
    # The reusable contract lists what `__call__` (the features) uses; the
    # projector is saved for the serving signature only.
    root.variables = list(encoder.variables)
    root.trainable_variables = list(encoder.trainable_variables)
    root.regularization_losses = _regularization_losses(encoder)
    image_spec = tf.TensorSpec((None, *image_shape), tf.float32, name="images")

    @tf.function
    def call(images, training=False):
        return encoder(images, training=training)

    # Traced for both values of `training`: the reusable-SavedModel contract.
    call.get_concrete_function(image_spec, training=True)
    call.get_concrete_function(image_spec, training=False)
    root.__call__ = call

    @tf.function(input_signature=[image_spec])
    def serve(images):
        features = encoder(images, training=False)
        outputs = {"features": features}
        if projector is not None:
            outputs["projection"] = l2_normalize(projector(features, training=False))
        return outputs

    metadata_file = os.path.join(folder + "-assets", METADATA_FILE)
    os.makedirs(os.path.dirname(metadata_file))
    try:
        with open(metadata_file, "w") as f:
            json.dump(recipe, f, indent=2, default=str)
        root.metadata_file = tf.saved_model.Asset(metadata_file)
        tf.saved_model.save(root, folder, signatures={"serving_default": serve})
    finally:
        shutil.rmtree(folder + "-assets")
