"""The paper's CIFAR-10 row beside a sweep's table."""

import pytest

from keras_contrastive.cli import paper_table
from keras_contrastive.cli import sweep
from tests.cli.test_sweep_report import all_runs


def runs_on(dataset):
    runs = all_runs(seeds=(0,))
    for run in runs:
        run["config"]["dataset"] = dataset
    return runs


@pytest.mark.parametrize(
    "dataset, expected",
    [("cifar10", True), ("../shared/data/tfds/cifar10_jpg/1.0.0", True), ("cifar100", False),
     ("fashion_mnist", False), (None, False)],
)
def test_is_cifar10(dataset, expected):
    assert paper_table.is_cifar10(dataset) is expected


def test_paper_rows_put_table_1_under_the_matching_columns():
    table = sweep.columns(runs_on("../shared/data/tfds/cifar10_jpg/1.0.0"))
    assert [c["label"] for c in table] == ["C 0.07", "C 0.3", "C 1", "Simple", "H 0.07", "H 0.3", "H 1", "HardSimple"]
    accuracy, uniformity, tolerance = paper_table.paper_rows(table)
    assert accuracy == "| linear acc, paper | 0.7975 | 0.8327 | 0.8221 | 0.7483 | 0.7920 | 0.8363 | 0.8419 | 0.8484 |"
    assert uniformity == "| U, paper | 3.86 | 3.60 | 2.96 | 1.68 | 3.88 | 3.89 | 3.86 | 3.85 |"
    assert tolerance == "| T, paper | 0.040 | 0.178 | 0.372 | 0.610 | 0.034 | 0.027 | 0.030 | 0.030 |"


def test_unpublished_values_show_a_dash():
    runs = runs_on("cifar10")
    runs[0]["config"]["tau"] = 0.2  # C 0.2: notebooks' accuracy only
    runs[1]["config"]["tau"] = 0.5  # not in the paper at all
    accuracy, uniformity, _ = paper_table.paper_rows(sweep.columns(runs))
    assert accuracy.startswith("| linear acc, paper | 0.8378 | - |")
    assert uniformity.startswith("| U, paper | - | - |")


def test_markdown_table_adds_the_paper_on_cifar10_only():
    cifar = sweep.markdown_table(sweep.columns(runs_on("cifar10")))
    assert "| linear acc, paper |" in cifar and paper_table.NOTE in cifar
    rows = cifar.split("\n\n")[0].splitlines()
    assert rows[-4].startswith("| seeds (converged) |") and rows[-1].startswith("| T, paper |")
    fashion = sweep.markdown_table(sweep.columns(runs_on("fashion_mnist")))
    assert "paper" not in fashion
