"""A temperature learnt with the model, log-parameterised and clamped."""

import math

import keras
from keras import ops

from keras_contrastive.api_export import register
from keras_contrastive.utils import validation


@register
class LearnableTemperature(keras.layers.Layer):
    """A trainable temperature `tau = exp(log_tau)`, kept in `[minimum, maximum]`.

    As CLIP's learnt `logit_scale = log(1 / 0.07)` (clipped at 100, i.e.
    `tau >= 0.01`), parameterised in log space so steps are relative.
    `ContrastiveModel` trains it with the other weights, clamps it back into
    the range after every step and logs it as `tau`.

    Args:
        initial: The starting temperature. Defaults to `0.07`.
        minimum: The smallest allowed temperature. Defaults to `0.01`.
        maximum: The largest allowed temperature. Defaults to `1.0`.
        **kwargs: Base `Layer` arguments.

    Reference:
        - [Radford et al., 2021](https://arxiv.org/abs/2103.00020)
    """

    def __init__(self, initial=0.07, minimum=0.01, maximum=1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial = validation.check_positive_float("initial", initial)
        self.minimum = validation.check_positive_float("minimum", minimum)
        self.maximum = validation.check_positive_float("maximum", maximum)
        if not self.minimum <= self.initial <= self.maximum:
            raise ValueError(
                "`initial` must lie in [minimum, maximum]. Received: "
                f"initial={initial}, minimum={minimum}, maximum={maximum}"
            )
        self.log_tau = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.initial)),
            dtype="float32",
            name="log_tau",
        )

    def call(self, inputs=None):
        del inputs
        return ops.exp(ops.cast(self.log_tau, "float32"))

    def clamp(self):
        """Puts `log_tau` back inside `[log(minimum), log(maximum)]`."""
        self.log_tau.assign(
            ops.clip(self.log_tau, math.log(self.minimum), math.log(self.maximum))
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {"initial": self.initial, "minimum": self.minimum, "maximum": self.maximum}
        )
        return config
