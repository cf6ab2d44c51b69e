"""The contrastive training model."""

from keras_contrastive.models.contrastive_model import ContrastiveModel
