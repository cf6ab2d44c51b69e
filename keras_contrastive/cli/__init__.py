"""The `keras-contrastive` command line."""
