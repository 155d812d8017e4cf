"""TrainConfig validation: one set of rules for the form, the CLI and run files."""

from __future__ import annotations

import math

import pytest

from mnist_core.config import PRESETS, TrainConfig
from mnist_core.errors import ConfigError


def test_defaults_are_the_seed_recipe():
    config = TrainConfig()
    assert (config.epochs, config.batch_size, config.lr, config.optimizer, config.schedule, config.augment) == (
        10, 64, 1e-3, "adam", "constant", False,
    )  # fmt: skip
    assert TrainConfig.from_preset("seed") == config


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("epochs", -3),
        ("epochs", 2.5),
        ("batch_size", 0),
        ("lr", -0.1),
        ("lr", 0.0),
        ("lr", math.nan),
        ("lr", math.inf),
        ("lr", "0.01"),
        ("optimizer", "rmsprop"),
        ("schedule", "cosine"),
        ("augment", "yes"),
        ("label_smoothing", -0.1),
        ("label_smoothing", 1.0),
        ("label_smoothing", math.nan),
        ("label_smoothing", "0.1"),
        ("label_smoothing", True),
        ("train_subset", 0),
        ("device", "tpu"),
        ("threads", 0),
        ("seed", -1),
    ],
)
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{field: value})
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")


def test_from_dict_refuses_unknown_keys():
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"epochs": 2, "learning_rate": 0.1})
    assert info.value.field == "learning_rate"


def test_round_trip_through_dict():
    config = TrainConfig.from_preset("fast", seed=7, train_subset=500)
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_presets_are_valid_and_distinct():
    configs = {name: TrainConfig.from_preset(name) for name in PRESETS}
    assert configs["seed"] != configs["fast"]
    with pytest.raises(ConfigError):
        TrainConfig.from_preset("turbo")
