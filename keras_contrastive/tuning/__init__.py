"""Temperature tuning with KerasTuner."""

from keras_contrastive.tuning.contrastive_hyper_model import ContrastiveHyperModel
from keras_contrastive.tuning.tuning_summary import format_summary
from keras_contrastive.tuning.tuning_summary import tuning_summary
