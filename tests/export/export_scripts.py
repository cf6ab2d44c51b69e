"""Subprocess entry points for the export tests.

`load_without_library`: loads an export with TensorFlow alone and saves the
serving outputs, failing if keras_contrastive was imported. `killed_export`:
exports, and SIGKILLs itself after the SavedModel is written but before it is
renamed into place. `concurrent_export`: exports when told to start, for the
races between processes.
"""

import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_without_library(path, images, out):
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    outputs = loaded.signatures["serving_default"](images=tf.constant(np.load(images)))
    assert not any(name.startswith("keras_contrastive") for name in sys.modules)
    np.savez(out, **{key: value.numpy() for key, value in outputs.items()})


def killed_export(model_path, path):
    import keras
    import tensorflow as tf

    import keras_contrastive as kc

    save = tf.saved_model.save

    def save_then_die(*args, **kwargs):
        save(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    tf.saved_model.save = save_then_die
    kc.export_encoder(keras.models.load_model(model_path), path)


def concurrent_export(model_path, path, start_file, version=None):
    """Exports once `start_file` exists (so the processes race), printing the
    version folder it got, or the error."""
    import time

    import keras

    import keras_contrastive as kc

    model = keras.models.load_model(model_path)
    while not os.path.exists(start_file):
        time.sleep(0.01)
    try:
        print("exported", kc.export_encoder(model, path, version=version))
    except ValueError as error:
        print("refused", error)


if __name__ == "__main__":
    command, arguments = sys.argv[1], json.loads(sys.argv[2])
    {"load_without_library": load_without_library, "killed_export": killed_export,
     "concurrent_export": concurrent_export}[command](**arguments)
