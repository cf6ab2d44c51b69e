"""Contrastive losses: each a Keras `Loss` class with a functional twin."""

from keras_contrastive.losses.contrastive_loss import ContrastiveLoss
from keras_contrastive.losses.hard_contrastive_loss import HardContrastiveLoss
from keras_contrastive.losses.hard_contrastive_loss import hard_contrastive_loss
from keras_contrastive.losses.hard_simple_contrastive_loss import (
    HardSimpleContrastiveLoss,
)
from keras_contrastive.losses.hard_simple_contrastive_loss import (
    hard_simple_contrastive_loss,
)
from keras_contrastive.losses.info_nce import InfoNCE
from keras_contrastive.losses.info_nce import info_nce
from keras_contrastive.losses.simple_contrastive_loss import (
    SimpleContrastiveLoss,
)
from keras_contrastive.losses.simple_contrastive_loss import (
    simple_contrastive_loss,
)
