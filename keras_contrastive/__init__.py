"""keras_contrastive: contrastive representation learning for Keras 3.

Built on Wang & Liu, "Understanding the Behaviour of Contrastive Loss"
(CVPR 2021). Importing the package registers every loss for `.keras` files.
"""

from keras_contrastive import analysis
from keras_contrastive import losses
from keras_contrastive.losses import HardContrastiveLoss
from keras_contrastive.losses import HardSimpleContrastiveLoss
from keras_contrastive.losses import InfoNCE
from keras_contrastive.losses import SimpleContrastiveLoss
from keras_contrastive.version import __version__
