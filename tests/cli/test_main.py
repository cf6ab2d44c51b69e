"""The command line: pretrain on the embedded default, and a two-tau sweep."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def cli(*arguments, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "keras_contrastive.cli", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def quick(tmp_path):
    return [
        "--epochs=1", "--batch_size=128", "--knn_k=20", "--linear_probe_epochs=1",
        f"--output_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'export'}", "--verbose=0",
    ]


@pytest.mark.slow
def test_pretrain_writes_results_export_and_summary(tmp_path):
    result = cli("pretrain", *quick(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    for line in ["kNN accuracy", "linear accuracy", "uniformity (U)", "tolerance (T)", "exported to"]:
        assert line in result.stdout
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["dataset"] == "digits"
    assert 0.1 < results["knn_accuracy"] <= 1.0
    assert 0 < results["uniformity"] <= 4.0 and -1 <= results["tolerance"] <= 1
    assert len(results["similarity_table"]["negatives"][0]) == 10
    assert results["export_path"].endswith(os.path.join("export", "1"))
    assert (tmp_path / "export" / "1" / "saved_model.pb").exists()
    assert (tmp_path / "run" / "model.keras").exists()

    evaluated = cli("evaluate", f"--checkpoint={tmp_path / 'run' / 'model.keras'}", "--knn_k=20", "--linear_probe_epochs=0")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.loads(evaluated.stdout)["knn_accuracy"] == pytest.approx(results["knn_accuracy"])
    exported = cli("export", f"--checkpoint={tmp_path / 'run' / 'model.keras'}", f"--export_dir={tmp_path / 'export'}")
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert (tmp_path / "export" / "2" / "saved_model.pb").exists()


@pytest.mark.slow
def test_sweep_writes_table_and_figures_and_resumes(tmp_path):
    arguments = ["sweep", "--losses=info_nce,hard", "--taus=0.1,0.5", "--num_negatives=32", *quick(tmp_path)]
    result = cli(*arguments)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    table = (run / "table.md").read_text()
    for column in ["C 0.1", "C 0.5", "H 0.1", "H 0.5"]:
        assert column in table
    for row in ["kNN acc", "linear acc", "| U |", "| T |"]:
        assert row in table
    assert len((run / "table.csv").read_text().strip().splitlines()) == 5
    figures = ["uniformity_tolerance.png", "accuracy.png", "relative_penalty.png",
               "positive_vs_negatives_info_nce.png", "positive_vs_negatives_hard.png"]
    from matplotlib import image

    for name in figures:
        assert (run / name).read_bytes()[:8] == PNG_SIGNATURE
        assert image.imread(run / name).shape[0] > 100
    finished = (run / "info_nce_tau0.1" / "results.json").stat().st_mtime
    again = cli(*arguments)  # resumable: nothing is redone
    assert again.returncode == 0, again.stderr[-3000:]
    assert (run / "info_nce_tau0.1" / "results.json").stat().st_mtime == finished


def test_unknown_command_and_missing_checkpoint_fail_clearly(tmp_path):
    result = cli("train")
    assert result.returncode != 0 and "one of pretrain, sweep, evaluate, export, tune" in result.stderr
    result = cli("export", f"--checkpoint={tmp_path / 'none.keras'}")
    assert result.returncode != 0 and "--checkpoint must name a model.keras file" in result.stderr
