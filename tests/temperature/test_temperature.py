"""Learnt and scheduled temperatures."""

import math

import keras
import numpy as np
import pytest

import keras_contrastive as kc


def test_cosine_schedule_formula():
    schedule = kc.CosineTemperatureSchedule(tau_min=0.1, tau_max=1.0, period=200)
    for step in [0, 50, 100, 150, 200, 333]:
        expected = 0.9 * (1 + math.cos(2 * math.pi * step / 200)) / 2 + 0.1
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-6)


def test_constant_schedule():
    assert float(kc.ConstantTemperature(0.3)(1234)) == pytest.approx(0.3)


def test_learnable_temperature_clamps():
    temperature = kc.LearnableTemperature(initial=0.07, minimum=0.05, maximum=0.5)
    assert float(temperature()) == pytest.approx(0.07, rel=1e-6)
    temperature.log_tau.assign(math.log(10.0))
    temperature.clamp()
    assert float(temperature()) == pytest.approx(0.5, rel=1e-6)
    temperature.log_tau.assign(math.log(1e-4))
    temperature.clamp()
    assert float(temperature()) == pytest.approx(0.05, rel=1e-6)


@pytest.mark.parametrize(
    "obj", [kc.CosineTemperatureSchedule(0.2, 0.8, 10), kc.ConstantTemperature(0.2), kc.LearnableTemperature(0.1)]
)
def test_serialisation_round_trip(obj):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
    assert type(restored) is type(obj)
    assert restored.get_config() == obj.get_config()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="tau_max` must be at least"):
        kc.CosineTemperatureSchedule(tau_min=1.0, tau_max=0.5)
    with pytest.raises(ValueError, match="Received: period=0"):
        kc.CosineTemperatureSchedule(period=0)
    with pytest.raises(ValueError, match="initial=2.0"):
        kc.LearnableTemperature(initial=2.0)
    with pytest.raises(ValueError, match="Received: tau=0"):
        kc.ConstantTemperature(0.0)
    assert np.isfinite(float(kc.LearnableTemperature()()))
