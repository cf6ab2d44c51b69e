"""Layers for the package's encoders."""

from keras_contrastive.layers.fused_batch_normalization import FusedBatchNormalization
