"""A per-trial summary of a temperature search: the dilemma in the tuner's results."""

SUMMARY_METRICS = ("val_uniformity", "val_tolerance")


def tuning_summary(tuner):
    """Lists every trial's tau, loss, objective, uniformity and tolerance.

    Args:
        tuner: A KerasTuner tuner that has run `search` with a
            `ContrastiveHyperModel`.

    Returns:
        A list of dicts, best objective first: `trial_id`, `status`, `tau`,
        `loss`, `num_negatives`, `learning_rate`, `objective` (the best value
        over the trial's epochs), and the last `val_uniformity` and
        `val_tolerance`.
    """
    objective = tuner.oracle.objective
    rows = []
    for trial in tuner.oracle.trials.values():
        values = trial.hyperparameters.values
        row = {
            "trial_id": trial.trial_id,
            "status": trial.status,
            "tau": values.get("tau"),
            "loss": values.get("loss"),
            "num_negatives": values.get("num_negatives"),
            "learning_rate": values.get("learning_rate"),
            "objective": trial.score,
        }
        for name in SUMMARY_METRICS:
            has_metric = trial.metrics.exists(name)
            row[name[len("val_"):]] = trial.metrics.get_last_value(name) if has_metric else None
        rows.append(row)
    reverse = objective.direction == "max"
    missing = float("-inf") if reverse else float("inf")
    return sorted(
        rows,
        key=lambda row: missing if row["objective"] is None else row["objective"],
        reverse=reverse,
    )


def format_summary(rows):
    """Formats `tuning_summary` rows as a Markdown table."""
    header = "| trial | status | loss | tau | K | objective | U | T |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]

    def number(value, digits):
        return "-" if value is None else f"{value:.{digits}f}"

    for row in rows:
        lines.append(
            f"| {row['trial_id']} | {row['status']} | {row['loss']} | "
            f"{number(row['tau'], 3)} | {row['num_negatives'] or '-'} | "
            f"{number(row['objective'], 4)} | {number(row['uniformity'], 3)} | "
            f"{number(row['tolerance'], 3)} |"
        )
    return "\n".join(lines)
