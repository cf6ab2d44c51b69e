"""The reproduction's stopping rule, computed from logged curves."""

import math

import pytest

from keras_contrastive.evaluation.convergence_rule import convergence
from keras_contrastive.evaluation.convergence_rule import describe_convergence


def curve(uniformity, accuracy, every=1, space="projection"):
    return [
        {"epoch": every * (i + 1), "loss": 1.0,
         f"val_{space}_uniformity": u, f"val_{space}_knn_accuracy": a}
        for i, (u, a) in enumerate(zip(uniformity, accuracy))
    ]


def saturating(final, scale, epochs, rate):
    return [final - scale * math.exp(-rate * e) for e in range(1, epochs + 1)]


def test_a_saturated_curve_has_converged():
    result = convergence(curve(saturating(3.5, 2.0, 20, 0.5), saturating(0.85, 0.4, 20, 0.5)), 20)
    assert result["converged"] and result["window_start"] == 16 and result["evaluations"] == 5
    assert result["uniformity_change"] < 0.02 and result["knn_change"] < 0.01
    assert describe_convergence(result).startswith("yes (U moved")


def test_accuracy_still_rising_by_a_point_is_not_converged():
    accuracy = [0.5 + 0.003 * e for e in range(1, 21)]  # 1.2 points over epochs 16-20
    result = convergence(curve([3.0] * 20, accuracy), 20)
    assert not result["converged"] and result["reason"] == "kNN moved 1.2 points"
    assert describe_convergence(result).startswith("NO (")


def test_uniformity_moving_two_percent_is_not_converged():
    uniformity = [3.0] * 15 + [3.0, 3.02, 3.04, 3.06, 3.08]
    result = convergence(curve(uniformity, [0.8] * 20), 20)
    assert result["uniformity_change"] == pytest.approx(0.08 / 3.08)
    assert not result["converged"] and result["reason"].startswith("U moved 2.6 %")


def test_the_window_is_the_last_fifth_and_its_baseline():
    # Movement before the window does not count; inside it, it does.
    early = curve([1.0] * 7 + [3.0] * 3, [0.1] * 7 + [0.8] * 3)
    assert convergence(early, 10)["converged"]  # window: epochs 8-10
    late = curve([1.0] * 8 + [3.0] * 2, [0.1] * 8 + [0.8] * 2)
    assert not convergence(late, 10)["converged"]  # epoch 8 starts the window


def test_sparse_evaluations_take_the_last_one_before_the_window():
    points = curve([2.0, 2.5, 3.0, 3.01, 3.02, 3.02], [0.5, 0.7, 0.8, 0.801, 0.802, 0.802], every=2)
    result = convergence(points, 12)  # window from epoch 9: baseline 8, then 10, 12
    assert result["window_start"] == 8 and result["evaluations"] == 3 and result["converged"]


def test_an_unfinished_or_broken_curve_has_not_converged():
    points = curve([3.0] * 8, [0.8] * 8)
    assert convergence(points, 10)["reason"] == "no evaluation at the last epoch (10)"
    assert convergence(curve([3.0], [0.8], every=10), 10)["reason"] == "fewer than two evaluations in the window"
    assert convergence(curve([3.0] * 9 + [float("nan")], [0.8] * 10), 10)["reason"] == "NaN in the curve"
    assert describe_convergence(convergence([], 10)) == "no: no evaluation at the last epoch (10)"


def test_the_space_selects_the_keys():
    points = curve([3.0] * 10, [0.8] * 10, space="features")
    assert convergence(points, 10, space="features")["converged"]
    assert not convergence(points, 10)["converged"]
    with pytest.raises(ValueError, match="Received: space='pixels'"):
        convergence(points, 10, space="pixels")


def test_a_collapsed_run_is_flat_but_never_converged():
    result = convergence(curve([0.02, 0.003] + [0.001] * 8, [0.43] * 10), 10)
    assert result["collapsed"] and not result["converged"]
    assert result["uniformity_change"] == 0.0 and result["reason"] == "collapsed (held-out U 0.001 < 0.1)"
    assert describe_convergence(result) == (
        "NO, collapsed (held-out U 0.001 < 0.1) (U moved 0.0 %, kNN 0.0 points from epoch 8)"
    )
    # Just above the bound it is judged by movement alone; the bound is an argument.
    assert convergence(curve([0.101] * 10, [0.43] * 10), 10)["converged"]
    assert convergence(curve([0.3] * 10, [0.43] * 10), 10, min_uniformity=0.5)["collapsed"]
