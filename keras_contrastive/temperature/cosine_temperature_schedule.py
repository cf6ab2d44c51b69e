"""The cosine temperature schedule of Kukleva et al. (2023)."""

import math

from keras import ops

from keras_contrastive.api_export import register
from keras_contrastive.temperature.temperature_schedule import TemperatureSchedule
from keras_contrastive.utils import validation


@register
class CosineTemperatureSchedule(TemperatureSchedule):
    """A temperature oscillating between `tau_max` and `tau_min`.

    Alternating between uniformity (small tau) and tolerance (large tau)
    phases, a direct use of the paper's dilemma.

    Formula:

    ```python
    tau(step) = (tau_max - tau_min) * (1 + cos(2 * pi * step / period)) / 2 + tau_min
    ```

    Args:
        tau_min: The smallest temperature. Defaults to `0.1`.
        tau_max: The largest temperature, at step 0. Defaults to `1.0`.
        period: Steps in one full cosine period (Kukleva et al.: 200
            epochs, so `200 * steps_per_epoch`).

    Reference:
        - [Kukleva et al., 2023](https://arxiv.org/abs/2303.13664)
    """

    def __init__(self, tau_min=0.1, tau_max=1.0, period=1000):
        self.tau_min = validation.check_positive_float("tau_min", tau_min)
        self.tau_max = validation.check_positive_float("tau_max", tau_max)
        if self.tau_max < self.tau_min:
            raise ValueError(
                "`tau_max` must be at least `tau_min`. Received: "
                f"tau_min={tau_min}, tau_max={tau_max}"
            )
        self.period = validation.check_optional_positive_int("period", period)
        if self.period is None:
            raise ValueError(f"`period` must be a positive integer. Received: period={period}")

    def __call__(self, step):
        phase = 2.0 * math.pi * ops.cast(step, "float32") / self.period
        return (self.tau_max - self.tau_min) * (1.0 + ops.cos(phase)) / 2.0 + self.tau_min

    def get_config(self):
        return {"tau_min": self.tau_min, "tau_max": self.tau_max, "period": self.period}
