"""`python -m keras_contrastive.cli`, the same as `keras-contrastive`."""

from keras_contrastive.cli.main import entry_point

entry_point()
