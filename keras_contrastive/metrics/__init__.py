"""Streaming Keras metrics of what the paper measures."""

from keras_contrastive.metrics.alignment import Alignment
from keras_contrastive.metrics.contrastive_accuracy import ContrastiveAccuracy
from keras_contrastive.metrics.effective_negatives import EffectiveNegatives
from keras_contrastive.metrics.nearest_negative_similarity import (
    NearestNegativeSimilarity,
)
from keras_contrastive.metrics.pair_metric import PairMetric
from keras_contrastive.metrics.penalty_entropy import PenaltyEntropy
from keras_contrastive.metrics.positive_similarity import PositiveSimilarity
from keras_contrastive.metrics.tolerance import Tolerance
from keras_contrastive.metrics.uniformity import Uniformity
