"""Exported encoders: reusable SavedModels in, Keras 3 layers out."""

from keras_contrastive.export.saved_model_export import export_encoder
from keras_contrastive.export.saved_model_export import read_metadata
from keras_contrastive.export.saved_model_encoder import SavedModelEncoder
from keras_contrastive.export.saved_model_encoder import load_encoder
