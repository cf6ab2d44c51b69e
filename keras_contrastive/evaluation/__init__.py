"""Whole-dataset evaluation: the paper's figures computed over a dataset."""

from keras_contrastive.evaluation.dataset_metrics import uniformity_and_tolerance
from keras_contrastive.evaluation.embedding import embed_dataset
from keras_contrastive.evaluation.encoder_evaluation import evaluate_encoder
from keras_contrastive.evaluation.evaluation_callback import EvaluationCallback
from keras_contrastive.evaluation.knn import knn_accuracy
from keras_contrastive.evaluation.knn import knn_predict
from keras_contrastive.evaluation.linear_probe import linear_probe_accuracy
from keras_contrastive.evaluation.similarity_table import similarity_table
