"""The command line: pretrain on the embedded default, and a two-tau sweep."""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def cli(*arguments, timeout=600, env=None):
    return subprocess.run(
        [sys.executable, "-m", "keras_contrastive.cli", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )


# TensorFlow's C++ log lines start with a severity and the date, `I0000 00:00...`.
NATIVE_LOG_LINE = re.compile(r"^[IWEF]\d{4} ", re.MULTILINE)


def assert_only_our_output(stderr):
    """No TensorFlow C++ line and no warning that our code causes."""
    assert not NATIVE_LOG_LINE.search(stderr), stderr[-3000:]
    assert "Warning" not in stderr and "shuffle=True" not in stderr, stderr[-3000:]


def quick(tmp_path):
    return [
        "--epochs=1", "--batch_size=128", "--knn_k=20", "--linear_probe_epochs=1",
        f"--output_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'export'}", "--verbose=0",
    ]


@pytest.mark.slow
def test_pretrain_writes_results_export_and_summary(tmp_path):
    result = cli("pretrain", *quick(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert_only_our_output(result.stderr)
    for line in ["kNN accuracy", "linear accuracy   ", "(features)", "uniformity (U)", "tolerance (T)",
                 "(projection)", "converged         ", "exported to"]:
        assert line in result.stdout
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["dataset"] == "digits" and results["space"] == "projection"
    assert 0.1 < results["knn_accuracy"] <= 1.0
    assert 0 < results["uniformity"] <= 4.0 and -1 <= results["tolerance"] <= 1
    assert len(results["similarity_table"]["negatives"][0]) == 10
    assert results["export_path"].endswith(os.path.join("export", "1"))
    assert (tmp_path / "export" / "1" / "saved_model.pb").exists()
    assert (tmp_path / "run" / "model.keras").exists()
    # The curve's last evaluation is the final one, in the same space.
    assert results["curve"][-1]["val_projection_knn_accuracy"] == pytest.approx(results["knn_accuracy"])
    assert results["convergence"]["reason"] == "fewer than two evaluations in the window"

    evaluated = cli("evaluate", f"--checkpoint={tmp_path / 'run' / 'model.keras'}", "--knn_k=20", "--linear_probe_epochs=0")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.loads(evaluated.stdout)["knn_accuracy"] == pytest.approx(results["knn_accuracy"])
    exported = cli("export", f"--checkpoint={tmp_path / 'run' / 'model.keras'}", f"--export_dir={tmp_path / 'export'}")
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert (tmp_path / "export" / "2" / "saved_model.pb").exists()


@pytest.mark.slow
def test_pretrain_measures_the_space_it_is_given(tmp_path):
    arguments = [*quick(tmp_path), "--space=features", "--epochs=2", "--linear_probe_epochs=0", "--export_dir="]
    result = cli("pretrain", *arguments)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(features)" in result.stdout and "(projection)" not in result.stdout
    assert "exported to" not in result.stdout
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["space"] == "features" and "export_path" not in results
    assert [point["epoch"] for point in results["curve"]] == [1, 2]
    assert results["curve"][-1]["val_features_uniformity"] == pytest.approx(results["uniformity"])
    assert not any(key.startswith("val_projection") for key in results["curve"][-1])
    evaluated = cli("evaluate", f"--checkpoint={tmp_path / 'run' / 'model.keras'}", "--knn_k=20",
                    "--linear_probe_epochs=0", "--space=features")
    assert json.loads(evaluated.stdout)["uniformity"] == pytest.approx(results["uniformity"], rel=1e-5)


@pytest.mark.slow
def test_paper_setting_trains_with_the_bank(tmp_path):
    result = cli("pretrain", *quick(tmp_path), "--paper_setting", "--loss=hard", "--export_dir=")
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((tmp_path / "run" / "results.json").read_text())["config"]
    assert config["negatives"] == "bank" and config["optimizer"] == "sgd" and config["lr_schedule"] == "steps"
    assert config["alpha"] == 4095 / 50000 and config["batch_size"] == 128 and config["weight_decay"] == 5e-4


SWEEP = ["sweep", "--losses=info_nce,simple,hard_simple", "--taus=0.1,0.5", "--seeds=0,1", "--alpha=0.1",
         "--num_negatives=0", "--linear_probe_epochs=0"]


@pytest.mark.slow
def test_sweep_writes_table_and_figures_and_resumes(tmp_path):
    arguments = [*SWEEP, *quick(tmp_path), "--export_dir="]
    first = cli(*arguments, "--max_runs=3")
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.strip().endswith("runs finished: 3, pending: 5")
    run = tmp_path / "run"
    finished = (run / "runs" / "info_nce_tau0.1_seed0" / "results.json").stat().st_mtime
    second = cli(*arguments)  # resumable: nothing finished is redone
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.strip().endswith("runs finished: 8, pending: 0")
    assert (run / "runs" / "info_nce_tau0.1_seed0" / "results.json").stat().st_mtime == finished
    assert sorted(p.name for p in (run / "runs").iterdir()) == sorted(
        [f"info_nce_tau{tau}_seed{seed}" for tau in ("0.1", "0.5") for seed in (0, 1)]
        + [f"{loss}_seed{seed}" for loss in ("simple", "hard_simple") for seed in (0, 1)]
    )
    header = (run / "table.md").read_text().splitlines()[0]
    assert [cell.strip(" *") for cell in header.split("|")[2:-1]] == ["C 0.1", "C 0.5", "Simple", "HardSimple"]
    assert "| seeds (converged) | 2 (" in (run / "table.md").read_text() and " ± " in (run / "table.md").read_text()
    assert len((run / "runs.csv").read_text().strip().splitlines()) == 9
    figures = ["uniformity_tolerance.png", "accuracy.png", "curves.png", "relative_penalty.png",
               "positive_vs_negatives_info_nce.png", "positive_vs_negatives_simple.png",
               "positive_vs_negatives_hard_simple.png"]
    from matplotlib import image

    for name in figures:
        assert (run / name).read_bytes()[:8] == PNG_SIGNATURE
        assert image.imread(run / name).shape[0] > 100


@pytest.mark.slow
def test_a_sweep_killed_mid_run_resumes_that_run_from_its_last_epoch(tmp_path):
    arguments = [*SWEEP, "--losses=info_nce", "--taus=0.1", "--seeds=0", *quick(tmp_path), "--epochs=4",
                 "--export_dir=", "--verbose=2"]
    run_dir = tmp_path / "run" / "runs" / "info_nce_tau0.1_seed0"
    process = subprocess.Popen([sys.executable, "-m", "keras_contrastive.cli", *arguments], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not _backed_up_epochs(run_dir) >= 2 and process.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert not (run_dir / "results.json").exists(), "the run finished before it could be killed"
    curve_before = json.loads((run_dir / "curve.json").read_text())
    resumed = cli(*arguments)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    output = resumed.stdout + resumed.stderr
    assert "Epoch 1/4" not in output and "Epoch 2/4" not in output and "Epoch 3/4" in output
    results = json.loads((run_dir / "results.json").read_text())
    assert [point["epoch"] for point in results["curve"]] == [1, 2, 3, 4]
    # The epochs trained before the kill keep their logged values, and the
    # run's seconds count the killed process's too.
    assert results["curve"][:2] == curve_before[:2]
    assert results["seconds"] > results["curve"][-1]["seconds"] > curve_before[1]["seconds"] > 0
    # And it ends where an uninterrupted run does: same batches, same views.
    whole = cli(*[a.replace(str(tmp_path / "run"), str(tmp_path / "whole")) for a in arguments])
    assert whole.returncode == 0, whole.stderr[-3000:]
    whole_dir = tmp_path / "whole" / "runs" / "info_nce_tau0.1_seed0"
    import keras

    import keras_contrastive  # noqa: F401  (registers the model)

    resumed_weights = keras.models.load_model(run_dir / "model.keras").get_weights()
    whole_weights = keras.models.load_model(whole_dir / "model.keras").get_weights()
    for a, b in zip(resumed_weights, whole_weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_an_unreadable_backup_restarts_the_run(tmp_path):
    arguments = [*SWEEP, "--losses=info_nce", "--taus=0.1", "--seeds=0", *quick(tmp_path), "--epochs=2",
                 "--export_dir=", "--verbose=2"]
    backup = tmp_path / "run" / "runs" / "info_nce_tau0.1_seed0" / "backup"
    backup.mkdir(parents=True)
    (backup / "training_metadata.json").write_text('{"epoch": 1, "ba')  # killed mid-write
    result = cli(*arguments)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Epoch 1/2" in result.stdout + result.stderr and "restarting the run" in result.stderr


def _backed_up_epochs(run_dir, worker=""):
    try:
        return json.loads((run_dir / "backup" / worker / "training_metadata.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def test_unknown_command_and_missing_checkpoint_fail_clearly(tmp_path):
    result = cli("train")
    assert result.returncode != 0 and "one of pretrain, sweep, evaluate, export, tune" in result.stderr
    assert_only_our_output(result.stderr)
    result = cli("export", f"--checkpoint={tmp_path / 'none.keras'}")
    assert result.returncode != 0 and "--checkpoint must name a model.keras file" in result.stderr


def test_tensorflow_start_up_lines_show_when_asked_for():
    result = cli("train", env={"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert NATIVE_LOG_LINE.search(result.stderr)


@pytest.mark.slow
def test_tune_ranks_on_held_out_training_images_and_tests_the_best_once(tmp_path):
    result = cli("tune", "--max_trials=2", "--epochs=1", "--knn_k=20", "--validation_size=300",
                 f"--output_dir={tmp_path / 'tune'}", "--verbose=0")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "tune" / "tune.json").read_text())
    assert results["validation_size"] == 300 and results["train_size"] == 1437 - 300
    assert len(results["trials"]) == 2 and results["trials"][0]["objective"] is not None
    assert 0.1 < results["best_test"]["knn_accuracy"] <= 1.0
    assert "trials ranked on 300 validation images held out of the 1437 training images" in result.stdout
    assert "on the test split: kNN accuracy" in result.stdout


def start_workers(*arguments, scratch=None):
    """Starts the command line as both workers of a 127.0.0.1 cluster, with
    `scratch` as their temporary folder."""
    sockets = [socket.socket() for _ in range(2)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:
        s.close()
    processes = []
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        environment = {**os.environ, "TF_CONFIG": json.dumps(config)}
        if scratch is not None:
            scratch.mkdir(exist_ok=True)
            environment["TMPDIR"] = str(scratch)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "keras_contrastive.cli", *arguments, "--strategy=multi_worker"],
            cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    return processes


def finish_workers(processes, timeout=600):
    """Each worker's standard output, once all have succeeded."""
    outputs = []
    try:
        for process in processes:
            output, errors = process.communicate(timeout=timeout)
            assert process.returncode == 0, errors[-3000:]
            outputs.append(output)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return outputs


def two_workers(*arguments, scratch=None):
    return finish_workers(start_workers(*arguments, scratch=scratch))


@pytest.mark.slow
def test_the_main_job_on_two_workers_writes_once_and_matches_one_process(tmp_path):
    arguments = [*quick(tmp_path), "--epochs=3", "--linear_probe_epochs=0"]
    chief, worker = two_workers("pretrain", *arguments, scratch=tmp_path / "scratch")
    assert "written by the chief worker" in worker and "results.json" in chief
    assert sorted(os.listdir(tmp_path / "export")) == ["1"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.name != "backup") == [
        "curve.json", "model.keras", "results.json"]
    assert not list((tmp_path / "run" / "backup").rglob("*.h5"))  # each worker's backup removed
    assert not list((tmp_path / "scratch").iterdir())  # the other worker's outputs removed
    shared = json.loads((tmp_path / "run" / "results.json").read_text())

    alone = cli("pretrain", *[a.replace(str(tmp_path), str(tmp_path / "alone")) for a in arguments])
    assert alone.returncode == 0, alone.stderr[-3000:]
    single = json.loads((tmp_path / "alone" / "run" / "results.json").read_text())
    # The same global batches and views; batch statistics are per worker.
    np.testing.assert_allclose([p["loss"] for p in shared["curve"]], [p["loss"] for p in single["curve"]], rtol=0.05)
    assert shared["knn_accuracy"] == pytest.approx(single["knn_accuracy"], abs=0.05)

    checkpoint = f"--checkpoint={tmp_path / 'run' / 'model.keras'}"
    exported = two_workers("export", checkpoint, f"--export_dir={tmp_path / 'export'}")
    assert sorted(os.listdir(tmp_path / "export")) == ["1", "2"] and "the chief worker exports" in exported[1]
    evaluated = two_workers("evaluate", checkpoint, "--knn_k=20", "--linear_probe_epochs=0")
    assert json.loads(evaluated[0])["knn_accuracy"] == json.loads(evaluated[1])["knn_accuracy"]

    sweep = two_workers(*SWEEP, "--losses=info_nce", "--taus=0.1,0.5", "--seeds=0", *quick(tmp_path / "sweep"),
                        "--export_dir=")
    assert sweep[0].strip().endswith("runs finished: 2, pending: 0")  # the chief's count
    assert (tmp_path / "sweep" / "run" / "table.md").exists()


@pytest.mark.slow
def test_two_workers_killed_and_restarted_resume_from_their_backups(tmp_path):
    def arguments(folder):
        return [*quick(folder), "--epochs=4", "--linear_probe_epochs=0", "--export_dir=", "--verbose=2"]

    processes = start_workers("pretrain", *arguments(tmp_path))
    try:
        deadline = time.time() + 400
        while time.time() < deadline and any(p.poll() is None for p in processes):
            if all(_backed_up_epochs(tmp_path / "run", name) >= 2 for name in ("chief", "worker1")):
                break
            time.sleep(0.05)
    finally:
        for process in processes:  # the whole cluster goes down
            process.kill()
            process.communicate()
    assert not (tmp_path / "run" / "results.json").exists(), "the run finished before it could be killed"
    resumed = finish_workers(start_workers("pretrain", *arguments(tmp_path)))
    assert all("Epoch 1/4" not in out and "Epoch 2/4" not in out for out in resumed)
    whole = finish_workers(start_workers("pretrain", *arguments(tmp_path / "whole")))
    assert all("Epoch 1/4" in out for out in whole)
    import keras

    import keras_contrastive  # noqa: F401  (registers the model)

    got = keras.models.load_model(tmp_path / "run" / "model.keras").get_weights()
    want = keras.models.load_model(tmp_path / "whole" / "run" / "model.keras").get_weights()
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
