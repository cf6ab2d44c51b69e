"""Loading labelled image splits from TFDS, prepared folders or image folders."""

import os

import numpy as np
import tensorflow as tf

from keras_contrastive.data.embedded import DIGITS
from keras_contrastive.data.embedded import load_digits_splits

# Evaluation split of the named datasets that have no "test" split.
EVALUATION_SPLITS = {"imagenette": "validation"}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def load_splits(source, data_dir=None, manual_dir=None, download=False, image_size=None):
    """Loads the train and evaluation splits of a labelled image dataset.

    Args:
        source: One of: `"digits"` (the embedded default, no download); a
            TFDS dataset name (`"cifar10"`, `"fashion_mnist"`, `"svhn_cropped"`,
            `"stl10"`, `"imagenette"`, ... any TFDS image dataset with
            `image` and `label` features); a prepared TFDS directory (holding
            `dataset_info.json`, e.g. `../shared/data/tfds/cifar10_jpg/1.0.0`);
            or a folder with one sub-folder of images per class (the labels
            are only used for evaluation).
        data_dir: TFDS data directory. Defaults to TFDS's own.
        manual_dir: Folder of the official files, for preparing a TFDS
            dataset without network (e.g. `../shared/data/fashion_mnist`).
        download: Whether TFDS may download. Defaults to `False`.
        image_size: `(height, width)` for an image folder (its images are
            resized); ignored elsewhere. Defaults to `(32, 32)` for folders.

    Returns:
        `{"train": (images, labels), "test": (images, labels)}`: uint8 NumPy
        images `(N, height, width, channels)`, decoded once, and int64
        labels. Image folders are split 80/20 by a fixed permutation.
    """
    if not isinstance(source, (str, os.PathLike)) or not str(source):
        raise ValueError(f"`source` must be a dataset name or a folder. Received: source={source!r}")
    source = str(source)
    if source == DIGITS:
        return load_digits_splits()
    if os.path.isdir(source):
        if os.path.exists(os.path.join(source, "dataset_info.json")):
            return _tfds_directory(source)
        return _image_folder(source, image_size or (32, 32))
    if os.sep in source or source.startswith("."):
        raise ValueError(f"No such folder. Received: source={source!r}")
    return _tfds_by_name(source, data_dir, manual_dir, download)


def _tfds_by_name(name, data_dir, manual_dir, download):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(
            f"Unknown dataset: not 'digits', a folder, nor a TFDS name. Received: source={name!r}"
        ) from error
    if not builder.is_prepared() and (manual_dir is not None or download):
        config = None
        if manual_dir is not None:
            config = tfds.download.DownloadConfig(
                manual_dir=manual_dir,
                # One extract folder per dataset (MNIST and Fashion-MNIST
                # share file names), beside the dataset folders: inside
                # `builder.data_dir` it would block TFDS's final rename.
                extract_dir=os.path.join(_data_root(builder), "extracted", name),
            )
        builder.download_and_prepare(download_config=config)
    elif not builder.is_prepared():
        raise ValueError(
            f"TFDS dataset {name!r} is not prepared in {builder.data_dir} and "
            "download=False: pass manual_dir (the official files) or "
            f"download=True. Received: source={name!r}"
        )
    return _builder_splits(builder, EVALUATION_SPLITS.get(name, "test"))


def _data_root(builder):
    """The TFDS data directory holding `<name>/<version>` folders."""
    return os.path.dirname(os.path.dirname(os.fspath(builder.data_dir)))


def _tfds_directory(path):
    import tensorflow_datasets as tfds

    return _builder_splits(tfds.builder_from_directory(path), "test")


def _builder_splits(builder, evaluation_split):
    return {
        "train": _to_arrays(builder.as_dataset(split="train", shuffle_files=False)),
        "test": _to_arrays(builder.as_dataset(split=evaluation_split, shuffle_files=False)),
    }


def _to_arrays(dataset):
    images, labels = [], []
    for batch in dataset.batch(4096).prefetch(tf.data.AUTOTUNE):
        images.append(batch["image"].numpy())
        labels.append(batch["label"].numpy())
    return np.concatenate(images), np.concatenate(labels).astype("int64")


def _image_folder(path, image_size):
    classes = sorted(
        entry for entry in os.listdir(path) if os.path.isdir(os.path.join(path, entry))
    )
    files, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted(os.listdir(os.path.join(path, name))):
            if file.lower().endswith(IMAGE_EXTENSIONS):
                files.append(os.path.join(path, name, file))
                labels.append(label)
    if not files:
        raise ValueError(
            "The folder holds no class sub-folders of images "
            f"({', '.join(IMAGE_EXTENSIONS)}). Received: source={path!r}"
        )
    images = np.stack([_read_image(file, image_size) for file in files])
    labels = np.array(labels, "int64")
    order = np.random.default_rng(0).permutation(len(files))
    cut = max(1, int(0.8 * len(files)))
    return {
        "train": (images[order[:cut]], labels[order[:cut]]),
        "test": (images[order[cut:]], labels[order[cut:]]),
    }


def _read_image(file, image_size):
    try:
        image = tf.io.decode_image(tf.io.read_file(file), channels=3, expand_animations=False)
    except tf.errors.InvalidArgumentError as error:
        raise ValueError(f"Cannot decode an image. Received: file={file!r}") from error
    return tf.cast(tf.image.resize(image, image_size), tf.uint8).numpy()
