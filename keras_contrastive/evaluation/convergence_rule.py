"""The stopping rule of the reproduction: have held-out U and kNN stopped moving?"""

import math

from keras_contrastive.evaluation.evaluation_utils import check_space
from keras_contrastive.evaluation.evaluation_utils import log_key

# Held-out uniformity below this at the end of a run: it has collapsed.
COLLAPSED_UNIFORMITY = 0.1


def convergence(
    curve,
    epochs,
    space="projection",
    window=0.2,
    max_uniformity_change=0.02,
    max_accuracy_change=0.01,
    min_uniformity=COLLAPSED_UNIFORMITY,
):
    """Checks a run's logged curve against the reproduction's stopping rule.

    The rule: over the last `window` of the epochs, held-out uniformity moved
    by less than `max_uniformity_change` of its final value and held-out kNN
    accuracy by less than `max_accuracy_change` (one point). "Moved" is the
    range (max - min) of the evaluations inside the window, which starts at
    the last evaluation at or before epoch `epochs - ceil(window * epochs)`,
    so a run evaluated every few epochs is judged over at least the window.
    A curve that does not reach the last epoch, or has fewer than two
    evaluations in the window, or holds a NaN, has not converged.

    A flat curve is not enough: a run whose held-out uniformity ends below
    `min_uniformity` has collapsed (U = 0.1 means `E exp(-2 |x - y|^2)` =
    0.90, as if every two held-out embeddings were 0.22 apart, where random
    points of the sphere are about 1.4 apart): all embeddings equal is a
    fixed point of every contrastive loss, where its gradient vanishes. Such
    a run is reported as `collapsed`, never as converged.

    Args:
        curve: Per-epoch log dicts with `epoch` (counted from 1) and the
            `EvaluationCallback` keys of `space` (e.g.
            `val_projection_uniformity`, `val_projection_knn_accuracy`);
            epochs without them are skipped.
        epochs: The run's number of epochs.
        space: The space the curve measured. Defaults to `"projection"`.
        window: The judged fraction of the epochs. Defaults to `0.2`.
        max_uniformity_change: Largest relative range of U. Defaults to
            `0.02`.
        max_accuracy_change: Largest range of kNN accuracy. Defaults to
            `0.01`.
        min_uniformity: Below this final held-out U the run has collapsed.
            Defaults to `0.1`.

    Returns:
        A dict: `converged` (bool), `window_start` (epoch), `uniformity_change`
        (relative), `knn_change` (absolute), `evaluations` (in the window),
        `collapsed` (bool), and `reason` when it has not converged.

    Example:

    >>> curve = [{"epoch": e, "val_projection_uniformity": 3.0 + 0.001 * e,
    ...           "val_projection_knn_accuracy": 0.8} for e in range(1, 11)]
    >>> convergence(curve, epochs=10)["converged"]
    True
    """
    check_space(space)
    uniformity_key, knn_key = log_key("uniformity", space), log_key("knn_accuracy", space)
    points = [p for p in curve if uniformity_key in p and knn_key in p]
    start = epochs - max(1, math.ceil(round(window * epochs, 6)))
    before = [p for p in points if p["epoch"] <= start]
    judged = before[-1:] + [p for p in points if p["epoch"] > start]
    result = {"converged": False, "window_start": judged[0]["epoch"] if judged else start}
    if not points or points[-1]["epoch"] != epochs:
        return {**result, "reason": f"no evaluation at the last epoch ({epochs})"}
    if len(judged) < 2:
        return {**result, "reason": "fewer than two evaluations in the window"}
    uniformity = [p[uniformity_key] for p in judged]
    accuracy = [p[knn_key] for p in judged]
    if any(math.isnan(v) for v in uniformity + accuracy):
        return {**result, "reason": "NaN in the curve"}
    final = abs(uniformity[-1])
    result.update(
        uniformity_change=(max(uniformity) - min(uniformity)) / final if final else math.inf,
        knn_change=max(accuracy) - min(accuracy),
        evaluations=len(judged),
        collapsed=uniformity[-1] < min_uniformity,
    )
    if result["collapsed"]:
        return {**result, "reason": f"collapsed (held-out U {uniformity[-1]:.3f} < {min_uniformity:g})"}
    moving = []
    if result["uniformity_change"] >= max_uniformity_change:
        moving.append(f"U moved {100 * result['uniformity_change']:.1f} %")
    if result["knn_change"] >= max_accuracy_change:
        moving.append(f"kNN moved {100 * result['knn_change']:.1f} points")
    if moving:
        return {**result, "reason": ", ".join(moving)}
    return {**result, "converged": True}


def describe_convergence(result):
    """One line on a `convergence` result."""
    if "uniformity_change" not in result:
        return f"no: {result['reason']}"
    movement = (
        f"U moved {100 * result['uniformity_change']:.1f} %, kNN "
        f"{100 * result['knn_change']:.1f} points from epoch {result['window_start']}"
    )
    if result["collapsed"]:
        return f"NO, {result['reason']} ({movement})"
    return ("yes" if result["converged"] else "NO") + f" ({movement})"
