"""keras_contrastive: contrastive representation learning for Keras 3.

Built on Wang & Liu, "Understanding the Behaviour of Contrastive Loss"
(CVPR 2021). Importing the package registers every loss and metric for `.keras` files.
"""

from keras_contrastive.cli import native_logs

native_logs.start_tensorflow_quietly()  # the command line only

from keras_contrastive import analysis
from keras_contrastive import augmentation
from keras_contrastive import data
from keras_contrastive import encoders
from keras_contrastive import evaluation
from keras_contrastive import export
from keras_contrastive import layers
from keras_contrastive import losses
from keras_contrastive import metrics
from keras_contrastive import models
from keras_contrastive import negatives
from keras_contrastive import temperature
from keras_contrastive import tuning
from keras_contrastive.augmentation import Augmenter
from keras_contrastive.export import export_encoder
from keras_contrastive.export import load_encoder
from keras_contrastive.export import read_metadata
from keras_contrastive.losses import HardContrastiveLoss
from keras_contrastive.losses import HardSimpleContrastiveLoss
from keras_contrastive.losses import InfoNCE
from keras_contrastive.losses import SimpleContrastiveLoss
from keras_contrastive.metrics import Alignment
from keras_contrastive.metrics import ContrastiveAccuracy
from keras_contrastive.metrics import EffectiveNegatives
from keras_contrastive.metrics import NearestNegativeSimilarity
from keras_contrastive.metrics import PenaltyEntropy
from keras_contrastive.metrics import PositiveSimilarity
from keras_contrastive.metrics import Tolerance
from keras_contrastive.metrics import Uniformity
from keras_contrastive.models import ContrastiveModel
from keras_contrastive.negatives import FifoQueue
from keras_contrastive.negatives import MemoryBank
from keras_contrastive.temperature import ConstantTemperature
from keras_contrastive.temperature import CosineTemperatureSchedule
from keras_contrastive.temperature import LearnableTemperature
from keras_contrastive.version import __version__
