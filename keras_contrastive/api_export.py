"""Registration of public classes for Keras serialisation."""

import keras

PACKAGE = "keras_contrastive"


def register(cls):
    """Registers `cls` so `.keras` files and `from_config` find it by name.

    Every public Keras object of the package goes through this decorator, so a
    saved model compiled with a `keras_contrastive` loss or metric reloads once
    `keras_contrastive` is imported.
    """
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)
