"""Temperatures beyond a fixed float: learnt, or scheduled over steps."""

from keras_contrastive.temperature.constant_temperature import ConstantTemperature
from keras_contrastive.temperature.cosine_temperature_schedule import (
    CosineTemperatureSchedule,
)
from keras_contrastive.temperature.learnable_temperature import LearnableTemperature
from keras_contrastive.temperature.temperature_schedule import TemperatureSchedule
