"""Ready encoder and projection-head builders."""

from keras_contrastive.encoders.projection_head import projection_head
from keras_contrastive.encoders.resnet import resnet18
from keras_contrastive.encoders.resnet import resnet50
from keras_contrastive.encoders.small_cnn import small_cnn
