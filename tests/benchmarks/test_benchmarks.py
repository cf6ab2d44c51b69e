"""The benchmark scripts run in their quick mode, so they cannot rot."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import loss_benchmark  # noqa: E402
import run_all  # noqa: E402


def run(script, *arguments):
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", *arguments],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )


# The paths that `run_all.py --quick` (below) does not run: each subprocess
# takes about 11 s, so the others are not run twice.
PATHS_OUTSIDE_RUN_ALL = ["hard_k4095_masked", "info_nce_jax", "info_nce_blocked_jax", "hard_k4095_jax"]


def test_run_all_and_the_loss_benchmark_cover_every_path():
    covered = set(run_all.loss_paths(accelerator=False)) | set(PATHS_OUTSIDE_RUN_ALL)
    assert covered == set(loss_benchmark.PATHS)


@pytest.mark.slow
def test_loss_benchmark_quick_mode():
    result = run("loss_benchmark.py", f"--paths={','.join(PATHS_OUTSIDE_RUN_ALL)}")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 256 ")]
    assert [row.split("|")[2].strip() for row in rows] == PATHS_OUTSIDE_RUN_ALL  # one size
    for row in rows:
        ratio = float(row.split("|")[5])
        assert ratio > 0


@pytest.mark.slow
def test_selection_benchmark_quick_mode():
    result = run("loss_benchmark.py", "--selection")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| 256 | 254 |" in result.stdout


@pytest.mark.slow
def test_throughput_benchmark_quick_mode():
    result = run("throughput_benchmark.py")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| small_cnn | 32 |" in result.stdout


@pytest.mark.slow
def test_throughput_breakdown_quick_mode():
    result = run("throughput_benchmark.py", "--breakdown")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| small_cnn, B = 32 |") and len(rows) == 8
    assert rows[1].startswith("| supervised step, batch B (the baseline) |") and rows[1].endswith("| 1.00 |")
    for row in rows[1:]:
        assert float(row.split("|")[2]) > 0  # ms


@pytest.mark.slow
def test_throughput_ops_quick_mode():
    result = run("throughput_benchmark.py", "--ops")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| small_cnn, B = 32: op |") and rows[-1].startswith("| all ops |")
    assert any("Conv2D" in row for row in rows[1:-1])  # the encoder's convolutions were profiled
    assert float(rows[-1].split("|")[3]) > float(rows[-1].split("|")[2]) > 0  # 2B takes longer


@pytest.mark.slow
def test_run_all_writes_one_report(tmp_path):
    output = tmp_path / "report.md"
    result = run("run_all.py", f"--output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    report = output.read_text()
    assert report == result.stdout.rstrip("\n") + "\n"
    for heading in ["# Benchmarks on CPU", "## Losses at 512 views", "## Blocked InfoNCE, memory",
                    "## Training throughput"]:
        assert heading in report
    assert "| hard (K = 4095) / InfoNCE (XLA) |" in report and "| blocked / dense |" in report
    assert "| 2048 | info_nce_blocked |" in report and "| small_cnn | 32 |" in report
    assert "failed" not in report
