"""Views for contrastive learning: stateless, per-replica, XLA-compatible."""

from keras_contrastive.augmentation.augmenter import Augmenter
