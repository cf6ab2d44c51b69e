"""Table 1's writers on synthetic runs: seeds, tau-free columns, convergence marks, verdicts."""

import numpy as np
import pytest

from keras_contrastive.cli import sweep
from keras_contrastive.cli.verdicts import verdicts

# (loss, tau): (U, T, linear accuracy) of seed 0; seed s adds s * 0.01 to each.
MEASURED = {
    ("info_nce", 0.07): (3.8, 0.05, 0.80), ("info_nce", 0.3): (3.5, 0.20, 0.84),
    ("info_nce", 1.0): (2.9, 0.40, 0.81), ("simple", 1.0): (1.7, 0.60, 0.70),
    ("hard", 0.07): (3.85, 0.04, 0.79), ("hard", 0.3): (3.86, 0.03, 0.84),
    ("hard", 1.0): (3.84, 0.03, 0.85), ("hard_simple", 1.0): (3.8, 0.03, 0.85),
}


EPOCHS = 8


def logged_curve(uniformity, tolerance, state):
    """An evaluation every other epoch: flat when `converged`, U still
    rising 5 % when `moving`, U near 0 when `collapsed`."""
    final = {"converged": uniformity, "moving": uniformity, "collapsed": 0.001}[state]
    rise = 0.05 * final if state == "moving" else 0.0
    return [
        {"epoch": epoch, "val_projection_uniformity": final - rise * (EPOCHS - epoch) / 2,
         "val_projection_knn_accuracy": 0.5, "val_projection_tolerance": tolerance}
        for epoch in range(2, EPOCHS + 1, 2)
    ]


def fake_run(loss, tau, seed, state="converged", gap=0.2):
    uniformity, tolerance, accuracy = (v + 0.01 * seed for v in MEASURED[(loss, tau)])
    return {
        "config": {"loss": loss, "tau": tau, "seed": seed, "epochs": EPOCHS},
        "space": "projection", "knn_accuracy": accuracy - 0.02, "linear_accuracy": accuracy,
        "uniformity": uniformity, "tolerance": tolerance, "seconds": 60.0,
        # As stored when the run finished; the report judges the curve anew.
        "convergence": {"converged": True},
        "similarity_table": {"positive": [0.5 + gap * (1 - tau)] * 4, "negatives": [[0.5] * 3] * 4},
        "curve": logged_curve(uniformity, tolerance, state),
    }


def all_runs(seeds=(0, 1, 2), unconverged=(), collapsed=()):
    return [
        fake_run(loss, tau, seed, state="collapsed" if (loss, tau, seed) in collapsed
                 else "moving" if (loss, tau, seed) in unconverged else "converged")
        for seed in seeds for (loss, tau) in MEASURED
    ]


def test_columns_average_seeds_and_keep_tau_free_losses_single():
    table = sweep.columns(all_runs())
    assert [c["label"] for c in table] == ["C 0.07", "C 0.3", "C 1", "Simple", "H 0.07", "H 0.3", "H 1", "HardSimple"]
    first = table[0]
    assert first["seeds"] == 3 and first["uniformity"] == pytest.approx(3.81)
    assert first["uniformity_std"] == pytest.approx(np.std([3.8, 3.81, 3.82], ddof=1))


def test_markdown_shows_mean_std_spaces_and_marks_unconverged_columns():
    text = sweep.markdown_table(sweep.columns(all_runs(unconverged={("hard", 0.3, 1)})))
    header, _, knn, linear, uniformity, tolerance, seeds = text.splitlines()[:7]
    assert "| H 0.3 * |" in header and "| C 0.3 |" in header
    assert knn.startswith("| kNN acc (projection) |") and linear.startswith("| linear acc (features) |")
    assert "| 3.810 ± 0.010 |" in uniformity and tolerance.startswith("| T (projection) |")
    assert seeds.split("|")[7].strip() == "3 (2)"  # H 0.3
    assert "`*`: not every seed" in text


def test_one_seed_shows_no_spread_and_a_converged_table_no_mark():
    text = sweep.markdown_table(sweep.columns(all_runs(seeds=(0,))))
    rows = text.split("\n\n")[0]
    assert "±" not in rows and "*" not in rows.splitlines()[0] and "`*`" not in text


def test_runs_csv_has_a_row_per_run():
    lines = sweep.runs_csv(all_runs()).strip().splitlines()
    assert lines[0].startswith("loss,tau,seed,epochs,space,knn_accuracy") and len(lines) == 1 + 24


def test_the_report_judges_every_run_by_the_current_rule():
    # Stored "converged" at the end of the run (an older rule), collapsed by
    # its curve: the report says collapsed, marks and names the column, and
    # does not take it for (vi)'s least uniform column.
    runs = all_runs(seeds=(0,), collapsed={("hard", 0.07, 0)})
    next(r for r in runs if r["config"]["loss"] == "hard")["uniformity"] = 0.001
    table = sweep.columns(runs)
    hard = next(c for c in table if c["label"] == "H 0.07")
    assert (hard["converged"], hard["collapsed"]) == (0, 1)
    text = sweep.markdown_table(table)
    header = text.splitlines()[0]
    assert "| H 0.07 † |" in header and "| H 0.3 |" in header and " * " not in header
    assert "`†`: a seed of the column collapsed" in text and "`*`" not in text
    row = next(line for line in sweep.runs_csv(runs).splitlines() if line.startswith("hard,0.07,"))
    assert ",False,True," in row  # converged, collapsed
    lines = verdicts(table).splitlines()
    assert lines[0] == "Collapsed: H 0.07."
    assert "partly: H's U >= C's at 2 of 3 taus" in lines[5]
    assert "holds: Simple U 1.700 (the lowest of the columns that did not collapse)" in lines[7]


def test_a_moving_seed_marks_its_column_not_converged():
    table = sweep.columns(all_runs(seeds=(0,), unconverged={("info_nce", 1.0, 0)}))
    column = next(c for c in table if c["label"] == "C 1")
    assert (column["converged"], column["collapsed"]) == (0, 0)
    assert "| C 1 * |" in sweep.markdown_table(table).splitlines()[0]


def test_sweep_order_gives_every_column_a_seed_first():
    runs = sweep.sweep_runs(["info_nce", "simple"], [0.1, 0.5], [0, 1])
    assert [name for name, *_ in runs] == [
        "info_nce_tau0.1_seed0", "info_nce_tau0.5_seed0", "simple_seed0",
        "info_nce_tau0.1_seed1", "info_nce_tau0.5_seed1", "simple_seed1",
    ]


def test_verdicts_follow_the_numbers():
    lines = verdicts(sweep.columns(all_runs())).splitlines()
    assert len(lines) == 7
    assert all(": holds" in line for line in lines), lines
    assert "ends beyond the seeds' spread" in lines[0]
    assert "best at tau 0.3" in lines[2]


def test_verdicts_say_when_a_claim_fails_or_is_unmeasured():
    runs = all_runs(seeds=(0,))
    for run in runs:
        if run["config"]["loss"] == "info_nce":
            run["uniformity"] = 3.0 + run["config"]["tau"]  # rises with tau
    lines = verdicts(sweep.columns(runs)).splitlines()
    assert ": fails;" in lines[0] and "spread unknown (one seed)" in lines[0]
    # An end of the sweep ahead of the best intermediate tau, by more or
    # less than the seeds' spread.
    for lead, side in [(0.001, "within"), (0.1, "beyond")]:
        runs = all_runs()
        for run in runs:
            if run["config"]["loss"] == "info_nce" and run["config"]["tau"] == 0.07:
                run["linear_accuracy"] = 0.845 + lead + 0.01 * run["config"]["seed"]
        peak = verdicts(sweep.columns(runs)).splitlines()[2]
        assert "fails: best at tau 0.07, an end of the sweep (vs the best intermediate tau 0.3: " in peak
        assert f"{side} the seeds' spread" in peak
    only_info_nce = [r for r in runs if r["config"]["loss"] == "info_nce"]
    lines = verdicts(sweep.columns(only_info_nce)).splitlines()
    assert lines[3].endswith("not measured yet") and lines[5].endswith("not measured yet")
    without_hard_simple = [r for r in all_runs() if r["config"]["loss"] != "hard_simple"]
    simple = verdicts(sweep.columns(without_hard_simple)).splitlines()[5]
    assert ": holds so far (HardSimple not measured yet): Simple U 1.710 ± 0.010 (the lowest)" in simple
