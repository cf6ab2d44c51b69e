"""A constant temperature, as a schedule."""

from keras import ops

from keras_contrastive.api_export import register
from keras_contrastive.temperature.temperature_schedule import TemperatureSchedule
from keras_contrastive.utils import validation


@register
class ConstantTemperature(TemperatureSchedule):
    """`tau(step) = tau`.

    Args:
        tau: The temperature, a positive float.
    """

    def __init__(self, tau):
        self.tau = validation.check_positive_float("tau", tau)

    def __call__(self, step):
        del step
        return ops.convert_to_tensor(self.tau, "float32")

    def get_config(self):
        return {"tau": self.tau}
