"""Atomic file writes: a reader sees the old file or the new one, never half."""

import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def replaced_atomically(path):
    """Yields a temporary path beside `path`, moved onto `path` on success.

    The temporary file sits in the same folder (so the final `os.replace` is
    an atomic rename) and has a unique name ending in the target's own
    extension (Keras saves only to `.keras` names), so two processes writing the
    same path at once each leave a whole file, the last one winning, and a
    kill at any instant leaves the previous file intact. The file is synced
    before the rename; on an exception it is removed.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp" + os.path.splitext(path)[1], dir=folder
    )
    os.close(descriptor)
    try:
        yield temporary
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text_atomically(path, text):
    """Writes `text` to `path` atomically (see `replaced_atomically`)."""
    with replaced_atomically(path) as temporary:
        with open(temporary, "w") as f:
            f.write(text)


def write_json_atomically(path, value):
    """Writes `value` as indented JSON to `path` atomically."""
    write_text_atomically(path, json.dumps(value, indent=2, default=str))
