"""Analysis functions from the paper's gradient analysis (Section 3)."""

from keras_contrastive.analysis.relative_penalty import effective_negatives
from keras_contrastive.analysis.relative_penalty import penalty_entropy
from keras_contrastive.analysis.relative_penalty import relative_penalty
