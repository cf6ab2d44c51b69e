"""Datasets: TFDS by name or folder, image folders, and an embedded default."""

from keras_contrastive.data.embedded import DIGITS
from keras_contrastive.data.embedded import load_digits_splits
from keras_contrastive.data.pipeline import training_dataset
from keras_contrastive.data.sources import load_splits
