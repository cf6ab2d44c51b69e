"""The paper's sweep: runs over losses and temperatures, Table 1 and the figures."""

import csv
import json
import os

import keras
import numpy as np

from keras_contrastive.cli.runs import RESULTS_FILE
from keras_contrastive.cli.runs import pretrain

LOSS_LABELS = {"info_nce": "C", "hard": "H", "simple": "Simple", "hard_simple": "HardSimple"}


def run_name(loss, tau):
    return f"{loss}_tau{tau:g}"


def sweep(config, losses, taus):
    """Runs `pretrain` for every (loss, tau) not already finished; writes the report.

    Each run's results go to `<output_dir>/<loss>_tau<tau>/results.json`; a run
    whose file exists is not redone, so an interrupted sweep resumes.

    Returns:
        The list of results dicts, in sweep order.
    """
    all_results = []
    for loss in losses:
        for tau in taus:
            name = run_name(loss, tau)
            run_dir = os.path.join(config["output_dir"], name)
            results_path = os.path.join(run_dir, RESULTS_FILE)
            if not os.path.exists(results_path):
                keras.backend.clear_session()
                pretrain(
                    {
                        **config,
                        "loss": loss,
                        "tau": tau,
                        "output_dir": run_dir,
                        "export_dir": os.path.join(config["export_dir"], name),
                    }
                )
            with open(results_path) as f:
                all_results.append(json.load(f))
    write_report(all_results, config["output_dir"])
    return all_results


def write_report(all_results, folder):
    """Table 1 as Markdown and CSV, and the paper's figures as PNG files."""
    rows = [
        {
            "loss": r["config"]["loss"],
            "tau": r["config"]["tau"],
            "knn_accuracy": r["knn_accuracy"],
            "linear_accuracy": r.get("linear_accuracy"),
            "uniformity": r["uniformity"],
            "tolerance": r["tolerance"],
            "epochs": r["config"]["epochs"],
        }
        for r in all_results
    ]
    with open(os.path.join(folder, "table.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(folder, "table.md"), "w") as f:
        f.write(markdown_table(rows))
    plot_figures(all_results, folder)


def markdown_table(rows):
    """The paper's Table 1 layout: one column per (loss, tau), rows acc, U, T."""
    columns = [f"{LOSS_LABELS.get(r['loss'], r['loss'])} {r['tau']:g}" for r in rows]
    metrics = [("kNN acc", "knn_accuracy", 4), ("linear acc", "linear_accuracy", 4),
               ("U", "uniformity", 3), ("T", "tolerance", 3)]
    lines = ["| metric | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label, key, digits in metrics:
        if all(r[key] is None for r in rows):
            continue
        values = ["-" if r[key] is None else f"{r[key]:.{digits}f}" for r in rows]
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def plot_figures(all_results, folder):
    """Figures 3, 4-7, 8 and 9 of the paper, from the measured runs."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    by_loss = {}
    for r in all_results:
        by_loss.setdefault(r["config"]["loss"], []).append(r)
    for runs in by_loss.values():
        runs.sort(key=lambda r: r["config"]["tau"])

    figure, axes = pyplot.subplots(1, 2, figsize=(10, 4))
    for loss, runs in by_loss.items():
        taus = [r["config"]["tau"] for r in runs]
        axes[0].plot(taus, [r["uniformity"] for r in runs], "o-", label=loss)
        axes[1].plot(taus, [r["tolerance"] for r in runs], "o-", label=loss)
    for axis, title in zip(axes, ["uniformity U", "tolerance T"]):
        axis.set(xscale="log", xlabel="tau", title=title)
        axis.legend()
    _save(pyplot, figure, folder, "uniformity_tolerance.png")

    figure, axis = pyplot.subplots(figsize=(5, 4))
    for loss, runs in by_loss.items():
        taus = [r["config"]["tau"] for r in runs]
        axis.plot(taus, [r["knn_accuracy"] for r in runs], "o-", label=f"{loss} kNN")
        if all("linear_accuracy" in r for r in runs):
            axis.plot(taus, [r["linear_accuracy"] for r in runs], "s--", label=f"{loss} linear")
    axis.set(xscale="log", xlabel="tau", ylabel="accuracy", title="accuracy against tau")
    axis.legend()
    _save(pyplot, figure, folder, "accuracy.png")

    for loss, runs in by_loss.items():
        figure, axes = pyplot.subplots(1, len(runs), figsize=(3.2 * len(runs), 3.5), squeeze=False)
        for axis, r in zip(axes[0], runs):
            table = r["similarity_table"]
            columns = [table["positive"]] + list(np.array(table["negatives"]).T)
            axis.boxplot(columns, showfliers=False)
            axis.set_xticks(range(1, len(columns) + 1), ["pos"] + [f"n{i}" for i in range(1, len(columns))], fontsize=6)
            axis.set(title=f"{loss}, tau {r['config']['tau']:g}", ylim=(-0.5, 1.05))
        _save(pyplot, figure, folder, f"positive_vs_negatives_{loss}.png")

    figure, axis = pyplot.subplots(figsize=(5, 4))
    similarities = np.linspace(-1.0, 1.0, 201)
    for tau in sorted({r["config"]["tau"] for r in all_results}):
        penalty = np.exp((similarities - similarities.max()) / tau)
        axis.plot(similarities, penalty / penalty.sum(), label=f"tau {tau:g}")
    axis.set(xlabel="similarity of a negative s_ij", ylabel="relative penalty r_i(s_ij)",
             title="relative penalty (negatives uniform on [-1, 1])")
    axis.legend()
    _save(pyplot, figure, folder, "relative_penalty.png")


def _save(pyplot, figure, folder, name):
    figure.tight_layout()
    figure.savefig(os.path.join(folder, name), dpi=100)
    figure.clear()
