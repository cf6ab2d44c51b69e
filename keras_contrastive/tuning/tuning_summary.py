"""A per-trial summary of a temperature search: the dilemma in the tuner's results."""

from keras_contrastive.evaluation.evaluation_utils import SPACES
from keras_contrastive.evaluation.evaluation_utils import log_key

SUMMARY_METRICS = ("uniformity", "tolerance")


def tuning_summary(tuner):
    """Lists every trial's tau, loss, objective, uniformity and tolerance.

    Args:
        tuner: A KerasTuner tuner that has run `search` with a
            `ContrastiveHyperModel`.

    Returns:
        A list of dicts, best objective first: `trial_id`, `status`, `tau`,
        `loss`, `num_negatives`, `learning_rate`, `objective` (the best value
        over the trial's epochs), and the last `val_uniformity` and
        `val_tolerance` in the space the trials measured (`space`).
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
        row.update(_last_measures(trial))
        rows.append(row)
    reverse = objective.direction == "max"
    missing = float("-inf") if reverse else float("inf")
    return sorted(
        rows,
        key=lambda row: missing if row["objective"] is None else row["objective"],
        reverse=reverse,
    )


def _last_measures(trial):
    for space in SPACES:
        keys = [log_key(name, space) for name in SUMMARY_METRICS]
        if all(trial.metrics.exists(key) for key in keys):
            measures = {
                name: trial.metrics.get_last_value(key)
                for name, key in zip(SUMMARY_METRICS, keys)
            }
            return {"space": space, **measures}
    return {"space": None, **dict.fromkeys(SUMMARY_METRICS)}


def format_summary(rows):
    """Formats `tuning_summary` rows as a Markdown table."""
    header = "| trial | status | loss | tau | K | objective | U | T | space |"
    lines = [header, "|---" * 9 + "|"]

    def number(value, digits):
        return "-" if value is None else f"{value:.{digits}f}"

    for row in rows:
        lines.append(
            f"| {row['trial_id']} | {row['status']} | {row['loss']} | "
            f"{number(row['tau'], 3)} | {row['num_negatives'] or '-'} | "
            f"{number(row['objective'], 4)} | {number(row['uniformity'], 3)} | "
            f"{number(row['tolerance'], 3)} | {row['space'] or '-'} |"
        )
    return "\n".join(lines)
