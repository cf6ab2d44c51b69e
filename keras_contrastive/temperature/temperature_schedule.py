"""The base class of temperature schedules over training steps."""

from keras_contrastive.api_export import register


@register
class TemperatureSchedule:
    """A temperature as a function of the optimizer step.

    Subclasses implement `__call__(step)` returning a float32 scalar tensor
    and `get_config()`; `ContrastiveModel` evaluates the schedule at
    `optimizer.iterations` every step and logs the value as `tau`.
    """

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)
