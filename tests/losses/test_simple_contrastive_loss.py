"""SimpleContrastiveLoss: InfoNCE's large-temperature limit."""

import numpy as np

from keras_contrastive import losses


def test_large_tau_limit_is_the_simple_loss(rng):
    """(n+1)/n * tau * (InfoNCE - log(n+1)) -> the simple loss, lam = 1/n."""
    y_pred = rng.normal(size=(8, 2, 16)).astype("float32")
    n = 14
    simple = np.asarray(losses.simple_contrastive_loss(None, y_pred))
    errors = []
    for tau in [10.0, 100.0, 1000.0]:
        info_nce = np.asarray(losses.info_nce(None, y_pred, tau=tau))
        limit = (n + 1) / n * tau * (info_nce - np.log(n + 1))
        errors.append(np.max(np.abs(limit - simple)))
    assert errors[0] > errors[1]
    assert errors[1] < 2e-2
