"""The paper's sweep: runs over losses, temperatures and seeds; Table 1 and figures."""

import csv
import io
import json
import os

import keras
import numpy as np

from keras_contrastive import distribute
from keras_contrastive.cli import paper_table
from keras_contrastive.cli.runs import RESULTS_FILE
from keras_contrastive.cli.runs import make_strategy
from keras_contrastive.cli.runs import pretrain
from keras_contrastive.cli.verdicts import verdicts
from keras_contrastive.evaluation.convergence_rule import COLLAPSED_UNIFORMITY
from keras_contrastive.evaluation.convergence_rule import convergence
from keras_contrastive.evaluation.evaluation_utils import log_key
from keras_contrastive.utils.files import replaced_atomically
from keras_contrastive.utils.files import write_text_atomically

LOSS_LABELS = {"info_nce": "C", "hard": "H", "simple": "Simple", "hard_simple": "HardSimple"}
# One column each, as in Table 1: tau only scales these losses (Adam does not
# see a scale; with SGD tau = 1 is the paper's simple loss).
TAU_FREE_LOSSES = ("simple", "hard_simple")
RUNS_FOLDER = "runs"
MEASURES = (
    ("kNN acc", "knn_accuracy", 4),
    ("linear acc", "linear_accuracy", 4),
    ("U", "uniformity", 3),
    ("T", "tolerance", 3),
)


def sweep_runs(losses, taus, seeds):
    """The runs of a sweep, seed by seed (so every column gets a first seed
    before any gets a second): a list of `(name, loss, tau, seed)`."""
    runs = []
    for seed in seeds:
        for loss in losses:
            for tau in [1.0] if loss in TAU_FREE_LOSSES else taus:
                runs.append((run_name(loss, tau, seed), loss, tau, seed))
    return runs


def run_name(loss, tau, seed):
    if loss in TAU_FREE_LOSSES:
        return f"{loss}_seed{seed}"
    return f"{loss}_tau{tau:g}_seed{seed}"


def sweep(config, runs, max_runs=0):
    """Runs `pretrain` for every run not finished yet; writes the report.

    A run is finished when `<output_dir>/runs/<name>/results.json` exists
    (written atomically, last): finished runs are never redone; an
    unfinished run resumes from its last whole epoch (`pretrain`'s backup).
    Under several workers every worker trains every run and only the chief
    writes; the output folder must be shared, so that all of them skip the
    same finished runs.

    Args:
        config: The `pretrain` config shared by the runs.
        runs: `sweep_runs(...)`.
        max_runs: Stop after training this many runs; 0 trains all.

    Returns:
        `(finished, pending)`: the results of the finished runs, in sweep
        order, and how many runs remain.
    """
    trained = 0
    for name, loss, tau, seed in runs:
        run_dir = os.path.join(config["output_dir"], RUNS_FOLDER, name)
        if os.path.exists(os.path.join(run_dir, RESULTS_FILE)):
            continue
        if max_runs and trained == max_runs:
            break
        keras.backend.clear_session()
        pretrain({
            **config,
            "loss": loss,
            "tau": tau,
            "seed": seed,
            "output_dir": run_dir,
            "export_dir": config["export_dir"] and os.path.join(config["export_dir"], name),
        })
        trained += 1
    finished = load_finished(config["output_dir"], runs)
    if finished and distribute.is_chief(make_strategy(config["strategy"])):
        write_report(finished, config["output_dir"])
    return finished, len(runs) - len(finished)


def load_finished(folder, runs):
    finished = []
    for name, *_ in runs:
        path = os.path.join(folder, RUNS_FOLDER, name, RESULTS_FILE)
        if os.path.exists(path):
            with open(path) as f:
                finished.append(json.load(f))
    return finished


def judged_convergence(results):
    """The stopping rule applied to a finished run's logged curve now, so that
    every run of a report is judged by the same (current) rule; `{}` for a
    run not evaluated during training."""
    if "convergence" not in results:
        return {}
    return convergence(results["curve"], results["config"]["epochs"], results["space"])


def columns(finished):
    """Table 1's columns: the finished runs grouped by (loss, tau).

    Returns:
        A list of dicts in sweep order: `loss`, `tau` (None for the tau-free
        losses), `label`, `runs` (their results), `seeds`, `converged` (how
        many seeds met the stopping rule), `collapsed` (how many collapsed),
        `space`, `epochs`, `dataset`, and
        for each measure its `mean` and `std` over the seeds (`<key>` and
        `<key>_std`; sample standard deviation, 0 for one seed).
    """
    groups = {}
    for results in finished:
        config = results["config"]
        tau = None if config["loss"] in TAU_FREE_LOSSES else config["tau"]
        groups.setdefault((config["loss"], tau), []).append(results)
    table = []
    for (loss, tau), runs in groups.items():
        label = LOSS_LABELS.get(loss, loss) + ("" if tau is None else f" {tau:g}")
        rules = [judged_convergence(r) for r in runs]
        column = {
            "loss": loss, "tau": tau, "label": label, "runs": runs, "seeds": len(runs),
            "converged": sum(rule.get("converged", False) for rule in rules),
            "collapsed": sum(rule.get("collapsed", False) for rule in rules),
            "space": runs[0]["space"], "epochs": runs[0]["config"]["epochs"],
            "dataset": runs[0]["config"].get("dataset"),
        }
        for _, key, _ in MEASURES:
            values = [r[key] for r in runs if r.get(key) is not None]
            column[key] = float(np.mean(values)) if values else None
            column[key + "_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        table.append(column)
    return table


def markdown_table(table):
    """Table 1's layout: a column per (loss, tau), rows acc, U, T, as mean ± std
    over seeds; a column with a collapsed seed is marked `†`, else one whose
    seeds did not all converge `*`. On CIFAR-10 the paper's own values
    follow, in rows of their own."""
    space = table[0]["space"]
    headers = [c["label"] + _mark(c) for c in table]
    lines = ["| metric | " + " | ".join(headers) + " |", "|---" * (len(table) + 1) + "|"]
    for label, key, digits in MEASURES:
        if all(c[key] is None for c in table):
            continue
        where = "features" if key == "linear_accuracy" else space
        values = [_mean_std(c[key], c[key + "_std"], c["seeds"], digits) for c in table]
        lines.append(f"| {label} ({where}) | " + " | ".join(values) + " |")
    lines.append("| seeds (converged) | " + " | ".join(f"{c['seeds']} ({c['converged']})" for c in table) + " |")
    published = paper_table.paper_rows(table)
    notes = [
        "",
        f"Mean ± standard deviation over seeds; {table[0]['epochs']} epochs. kNN, U and T on "
        f"the held-out split in the {space} space; linear probe on the encoder's features.",
    ]
    if any(_mark(c) == " *" for c in table):
        notes.append("`*`: not every seed of the column met the stopping rule (see runs.csv).")
    if any(c["collapsed"] for c in table):
        notes.append(
            f"`†`: a seed of the column collapsed (held-out U below {COLLAPSED_UNIFORMITY:g} at the last "
            "epoch: every embedding near one point; see runs.csv and the verdicts)."
        )
    if published:
        lines += published
        notes.append(paper_table.NOTE)
    return "\n".join(lines + notes) + "\n"


def _mark(column):
    if column["collapsed"]:
        return " †"
    return "" if column["converged"] == column["seeds"] else " *"


def _mean_std(mean, std, seeds, digits):
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if seeds > 1 else "")


RUN_FIELDS = (
    "loss", "tau", "seed", "epochs", "space", "knn_accuracy", "linear_accuracy", "uniformity",
    "tolerance", "converged", "collapsed", "uniformity_change", "knn_change", "seconds",
)


def runs_csv(finished):
    """One row per finished run, every measure and its convergence."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RUN_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in finished:
        config, verdict = r["config"], judged_convergence(r)
        writer.writerow({
            "loss": config["loss"], "tau": config["tau"], "seed": config["seed"],
            "epochs": config["epochs"], "space": r["space"],
            **{key: r.get(key) for _, key, _ in MEASURES},
            "converged": verdict.get("converged"),
            "collapsed": verdict.get("collapsed"),
            "uniformity_change": verdict.get("uniformity_change"),
            "knn_change": verdict.get("knn_change"),
            "seconds": round(r["seconds"]),
        })
    return buffer.getvalue()


def write_report(finished, folder):
    """`table.md` (Table 1, mean ± std, and the claims' verdicts), `runs.csv`
    (every run) and the figures."""
    table = columns(finished)
    report = markdown_table(table) + "\n## The paper's claims\n\n" + verdicts(table)
    write_text_atomically(os.path.join(folder, "table.md"), report)
    write_text_atomically(os.path.join(folder, "runs.csv"), runs_csv(finished))
    plot_figures(table, folder)


def plot_figures(table, folder):
    """Figures 3, 4-7, 8 and 9 of the paper, and the training curves."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    space = table[0]["space"]
    figure, axes = pyplot.subplots(1, 2, figsize=(10, 4))
    _measure_against_tau(axes[0], table, "uniformity", "")
    _measure_against_tau(axes[1], table, "tolerance", "")
    axes[0].set(title=f"uniformity U ({space})")
    axes[1].set(title=f"tolerance T ({space})")
    _save(pyplot, figure, folder, "uniformity_tolerance.png")

    figure, axis = pyplot.subplots(figsize=(6, 4.5))
    _measure_against_tau(axis, table, "knn_accuracy", f" kNN ({space})")
    if any(c["linear_accuracy"] is not None for c in table):
        _measure_against_tau(axis, table, "linear_accuracy", " linear (features)", style="--")
    axis.set(ylabel="accuracy", title="held-out accuracy against tau")
    _save(pyplot, figure, folder, "accuracy.png")

    _plot_curves(pyplot, table, folder)

    losses = list(dict.fromkeys(c["loss"] for c in table))
    for loss in losses:
        shown = [c for c in table if c["loss"] == loss]
        figure, axes = pyplot.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.5), squeeze=False)
        for axis, column in zip(axes[0], shown):
            similarity = column["runs"][0]["similarity_table"]
            boxes = [similarity["positive"]] + list(np.array(similarity["negatives"]).T)
            axis.boxplot(boxes, showfliers=False)
            names = ["pos"] + [f"n{i}" for i in range(1, len(boxes))]
            axis.set_xticks(range(1, len(boxes) + 1), names, fontsize=6)
            seed = column["runs"][0]["config"]["seed"]
            axis.set(title=f"{column['label']} (seed {seed})", ylim=(-0.5, 1.05))
        _save(pyplot, figure, folder, f"positive_vs_negatives_{loss}.png")

    figure, axis = pyplot.subplots(figsize=(5, 4))
    similarities = np.linspace(-1.0, 1.0, 201)
    for tau in sorted({c["tau"] for c in table if c["tau"] is not None}):
        penalty = np.exp((similarities - similarities.max()) / tau)
        axis.plot(similarities, penalty / penalty.sum(), label=f"tau {tau:g}")
    axis.set(xlabel="similarity of a negative s_ij", ylabel="relative penalty r_i(s_ij)",
             title="relative penalty (negatives uniform on [-1, 1])")
    axis.legend()
    _save(pyplot, figure, folder, "relative_penalty.png")


def _measure_against_tau(axis, table, key, suffix, style="-"):
    """Mean ± std against tau per loss; tau-free losses as a level with a band."""
    taus = sorted({c["tau"] for c in table if c["tau"] is not None}) or [1.0]
    for loss in dict.fromkeys(c["loss"] for c in table):
        shown = [c for c in table if c["loss"] == loss and c[key] is not None]
        if not shown:
            continue
        label = LOSS_LABELS.get(loss, loss) + suffix
        if shown[0]["tau"] is None:
            mean, std = shown[0][key], shown[0][key + "_std"]
            line = axis.axhline(mean, linestyle=":", label=label + " (no tau)")
            axis.axhspan(mean - std, mean + std, color=line.get_color(), alpha=0.15)
            continue
        axis.errorbar([c["tau"] for c in shown], [c[key] for c in shown],
                      yerr=[c[key + "_std"] for c in shown], fmt="o" + style, capsize=3, label=label)
    axis.set(xscale="log", xlabel="tau", xlim=(min(taus) / 1.3, max(taus) * 1.3))
    axis.legend(fontsize=7)


def _plot_curves(pyplot, table, folder):
    """Held-out kNN, U and T per epoch: a panel per (measure, loss), a colour
    per tau, a thin line per seed."""
    space = table[0]["space"]
    losses = list(dict.fromkeys(c["loss"] for c in table))
    measures = [("kNN acc", "knn_accuracy"), ("U", "uniformity"), ("T", "tolerance")]
    figure, axes = pyplot.subplots(
        len(measures), len(losses), figsize=(3.6 * len(losses), 2.8 * len(measures)), squeeze=False
    )
    colours = pyplot.rcParams["axes.prop_cycle"].by_key()["color"]
    for column_index, loss in enumerate(losses):
        shown = [c for c in table if c["loss"] == loss]
        for row, (label, name) in enumerate(measures):
            axis = axes[row][column_index]
            key = log_key(name, space)
            for index, column in enumerate(shown):
                for seed_index, run in enumerate(column["runs"]):
                    points = [p for p in run["curve"] if key in p]
                    axis.plot([p["epoch"] for p in points], [p[key] for p in points],
                              color=colours[index % len(colours)], linewidth=0.9,
                              label=column["label"] if seed_index == 0 else None)
            axis.set(title=f"{LOSS_LABELS.get(loss, loss)}: {label} ({space})", xlabel="epoch")
            if row == 0:
                axis.legend(fontsize=6)
    _save(pyplot, figure, folder, "curves.png")


def _save(pyplot, figure, folder, name):
    figure.tight_layout()
    with replaced_atomically(os.path.join(folder, name)) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    pyplot.close(figure)
