"""Atomic writes, checked with real processes writing and being killed."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from keras_contrastive.utils import files
from keras_contrastive.utils.files import replaced_atomically
from keras_contrastive.utils.files import write_json_atomically

# Each value repeats its writer's and write's id many times, so a torn file
# (or one mixing two writers) cannot pass `check_whole`.
# The module is loaded from its file, without importing TensorFlow, so the
# writers start at once.
WRITER = textwrap.dedent("""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("files", sys.argv[4])
    files = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(files)
    path, writer, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for write in range(count if count else 10**9):
        files.write_json_atomically(path, {"writer": writer, "write": write, "body": [writer * 10**6 + write] * 20000})
        if write == 0:
            print("ready", flush=True)
""")


def start_writer(path, writer, count):
    arguments = [str(path), str(writer), str(count), files.__file__]
    return subprocess.Popen([sys.executable, "-c", WRITER, *arguments], stdout=subprocess.PIPE, text=True)


def check_whole(path):
    value = json.loads(path.read_text())
    assert set(value["body"]) == {value["writer"] * 10**6 + value["write"]}
    return value


def test_two_processes_writing_at_once_always_leave_a_whole_file(tmp_path):
    path = tmp_path / "results.json"
    writers = [start_writer(path, writer, 150) for writer in (1, 2)]
    seen = set()
    while any(w.poll() is None for w in writers):
        if path.exists():
            seen.add(check_whole(path)["writer"])
    assert [w.wait() for w in writers] == [0, 0]
    assert check_whole(path)["write"] == 149
    assert not list(tmp_path.glob(".*.tmp*"))
    assert seen  # the reader did read while they wrote


def test_a_kill_at_any_instant_leaves_the_previous_or_the_new_file(tmp_path):
    path = tmp_path / "results.json"
    writes = []
    for delay in (0.0, 0.003, 0.011, 0.029, 0.07, 0.13):
        writer = start_writer(path, 7, 0)
        assert writer.stdout.readline() == "ready\n"
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writes.append(check_whole(path)["write"])
    assert max(writes) > 0  # killed while rewriting, not before the first write


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "table.md"
    write_json_atomically(path, {"old": True})
    with pytest.raises(RuntimeError):
        with replaced_atomically(path) as temporary:
            with open(temporary, "w") as f:
                f.write("half")
            raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.md"]


def test_the_temporary_file_keeps_the_extension(tmp_path):
    with replaced_atomically(tmp_path / "model.keras") as temporary:
        assert temporary.endswith(".keras") and os.path.dirname(temporary) == str(tmp_path)
        with open(temporary, "w") as f:
            f.write("zip")
    assert (tmp_path / "model.keras").read_text() == "zip"
