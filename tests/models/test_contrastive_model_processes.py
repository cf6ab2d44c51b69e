"""Checks that need separate processes: two workers, and a killed run resumed."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT_S = 240


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start(command, arguments, env=None):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    environment.pop("TF_CONFIG", None) if env is None else None
    return subprocess.Popen(
        [sys.executable, "-m", "tests.models.distributed_scripts", command, json.dumps(arguments)],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def finish(processes):
    """Waits for every process; kills them all on a time-out. Returns outputs."""
    outputs = []
    try:
        for process in processes:
            output, _ = process.communicate(timeout=TIMEOUT_S)
            outputs.append((process.returncode, output.decode(errors="replace")))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return outputs


def weights(path):
    data = np.load(path)
    return [data[f"arr_{i}"] for i in range(len([k for k in data if k.startswith("arr_")]))], data


@pytest.mark.slow
def test_multi_worker_step_equals_one_process(tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = [
        start(
            "multi_worker_step",
            {"out": str(tmp_path / f"worker{i}.npz")},
            env={"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
        )
        for i in range(2)
    ]
    single = start("multi_worker_step", {"out": str(tmp_path / "single.npz")})
    for code, output in finish(workers + [single]):
        assert code == 0, output[-3000:]
    expected, expected_data = weights(tmp_path / "single.npz")
    for i in range(2):
        actual, actual_data = weights(tmp_path / f"worker{i}.npz")
        assert float(actual_data["loss"]) == pytest.approx(float(expected_data["loss"]), abs=1e-5)
        for a, b in zip(actual, expected):
            np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_weights(tmp_path):
    backup = tmp_path / "backup"
    killed = start(
        "train_with_backup",
        {"out": str(tmp_path / "killed.npz"), "backup_dir": str(backup), "kill_at_step": 6},
    )
    reference = start(
        "train_with_backup",
        {"out": str(tmp_path / "reference.npz"), "backup_dir": str(tmp_path / "reference_backup")},
    )
    (killed_code, killed_output), (code, output) = finish([killed, reference])
    assert killed_code == -9, killed_output[-3000:]  # SIGKILL in epoch 2 (step 6 of 12)
    assert not (tmp_path / "killed.npz").exists()
    assert code == 0, output[-3000:]
    resumed = start(
        "train_with_backup",
        {"out": str(tmp_path / "resumed.npz"), "backup_dir": str(backup)},
    )
    ((code, output),) = finish([resumed])
    assert code == 0, output[-3000:]
    expected, expected_data = weights(tmp_path / "reference.npz")
    actual, actual_data = weights(tmp_path / "resumed.npz")
    np.testing.assert_array_equal(actual_data["epochs_run"], [1, 2])  # it resumed
    assert int(actual_data["steps"]) == int(expected_data["steps"]) == 12
    for a, b in zip(actual, expected):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
