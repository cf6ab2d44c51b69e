"""TensorFlow's C++ start-up lines, kept out of the command line's output.

TensorFlow writes its start-up lines (oneDNN, CUDA probing, CPU features)
from C++ before its logging is configured, where `TF_CPP_MIN_LOG_LEVEL`
does not reach them (TensorFlow 2.21). The `keras-contrastive` command
therefore loads TensorFlow and probes its devices with the process's
standard error (file descriptor 2) sent to the null device, and sets
`TF_CPP_MIN_LOG_LEVEL=2` for the rest of the run. A user who sets
`TF_CPP_MIN_LOG_LEVEL=0` asks for them and sees everything. Library imports
(not the command) are left alone.
"""

import contextlib
import os
import sys

COMMAND = "keras-contrastive"


def is_command_line():
    """Whether this process is the `keras-contrastive` command (or `python
    -m keras_contrastive.cli`, whose package import sees `argv[0] == "-m"`)."""
    program = sys.argv[0] if sys.argv else ""
    return os.path.basename(program) == COMMAND or program == "-m"


@contextlib.contextmanager
def _native_stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def start_tensorflow_quietly():
    """Imports TensorFlow and probes its devices without the C++ start-up
    lines, for the command line only (see the module docstring)."""
    if not is_command_line() or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()
