"""Hosted-mode caps: read from the environment, enforced at every entry point, never lifted by a typo."""

from __future__ import annotations

import dataclasses

import pytest

from mnist_core.config import TrainConfig
from mnist_core.errors import ConfigError
from mnist_core.launch import max_concurrent_runs, start_run
from mnist_core.limits import (
    HOSTED_DEFAULTS,
    Limits,
    check_config,
    current_limits,
    fit_config,
    public_message,
    redact_paths,
)


def test_local_default_has_no_caps_but_one_run_at_a_time():
    limits = current_limits({})
    assert limits == Limits(hosted=False, max_runs=1)
    assert check_config(TrainConfig(epochs=200, batch_size=8192, threads=64), limits).epochs == 200


@pytest.mark.parametrize("flag", ["1", "true", "YES", "on", "anything"])
def test_hosted_flag_turns_on_every_default_cap(flag):
    limits = current_limits({"MNIST_LAB_HOSTED": flag})
    assert limits.hosted
    assert (limits.max_epochs, limits.max_train_subset, limits.max_batch_size, limits.max_runs) == (5, 20_000, 512, 1)


@pytest.mark.parametrize("flag", ["", "0", "false", "No", " off "])
def test_hosted_flag_off(flag):
    assert not current_limits({"MNIST_LAB_HOSTED": flag}).hosted


def test_each_cap_can_be_set_alone_and_overrides_the_hosted_default():
    limits = current_limits({"MNIST_LAB_MAX_EPOCHS": "3"})
    assert not limits.hosted and limits.max_epochs == 3 and limits.max_train_subset is None
    limits = current_limits({"MNIST_LAB_HOSTED": "1", "MNIST_LAB_MAX_TRAIN_SUBSET": "60000", "MNIST_LAB_MAX_RUNS": "2"})
    assert limits.max_train_subset == 60_000 and limits.max_runs == 2 and limits.max_epochs == 5


@pytest.mark.parametrize("raw", ["five", "0", "-3", "2.5"])
def test_a_bad_value_falls_back_to_the_hosted_cap_never_to_none(raw):
    limits = current_limits({"MNIST_LAB_MAX_EPOCHS": raw, "MNIST_LAB_MAX_RUNS": raw})
    assert limits.max_epochs == HOSTED_DEFAULTS["max_epochs"] and limits.max_runs == 1


HOSTED = Limits(hosted=True, max_epochs=5, max_train_subset=20_000, max_batch_size=512, max_threads=2, max_runs=1)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"epochs": 6}, "epochs"),
        ({"train_subset": None}, "train_subset"),
        ({"train_subset": 20_001}, "train_subset"),
        ({"batch_size": 513}, "batch_size"),
        ({"threads": 3}, "threads"),
    ],
)
def test_check_config_names_the_field_over_its_cap(changes, field):
    config = TrainConfig(epochs=5, train_subset=20_000, batch_size=512, threads=2).replace(**changes)
    with pytest.raises(ConfigError) as raised:
        check_config(config, HOSTED)
    assert raised.value.field == field and str(raised.value).startswith(f"{field}: ")
    assert "this server" in str(raised.value)


def test_check_config_passes_a_config_at_the_caps():
    config = TrainConfig(epochs=5, train_subset=20_000, batch_size=512, threads=2)
    assert check_config(config, HOSTED) is config
    unthreaded = config.replace(threads=None)
    assert check_config(unthreaded, HOSTED) == unthreaded  # torch's default thread count is fine


def test_fit_config_brings_every_preset_within_the_caps():
    for preset in ("seed", "fast"):
        config = TrainConfig.from_preset(preset, threads=8)
        fitted = fit_config(config, HOSTED)
        assert check_config(fitted, HOSTED) is fitted
        assert fitted.preset == preset and fitted.lr == config.lr and fitted.optimizer == config.optimizer
    assert fit_config(TrainConfig.from_preset("seed"), HOSTED).epochs == 5
    within = TrainConfig(epochs=2, train_subset=500, threads=1)
    assert fit_config(within, HOSTED) == within
    local = TrainConfig.from_preset("seed")
    assert fit_config(local, Limits()) is local  # locally a config naming no threads keeps one per core


def test_a_hosted_trainer_keeps_one_thread_per_core_and_a_chosen_count_within_the_thread_cap():
    limits = dataclasses.replace(HOSTED, max_threads=2)
    # No count named: the trainer takes one per physical core (train.default_threads), as locally, since its
    # process and session group run niced behind the server's (launch._lower_priority; docs/performance.md).
    assert fit_config(TrainConfig(train_subset=500), limits).threads is None
    assert fit_config(TrainConfig(train_subset=500, threads=1), limits).threads == 1  # a choice is kept
    assert fit_config(TrainConfig(train_subset=500, threads=8), limits).threads == 2  # and brought within the cap


def test_summary_lists_the_caps():
    assert HOSTED.summary() == (
        "This server trains at most 5 epoch(s), on at most 20,000 training images, with batches of at most 512, 1 run(s) at a time."
    )


def test_launcher_uses_the_same_limits(monkeypatch, runs_dir, tiny_data):
    monkeypatch.setenv("MNIST_LAB_HOSTED", "1")
    monkeypatch.setenv("MNIST_LAB_MAX_RUNS", "3")
    assert max_concurrent_runs() == 3
    with pytest.raises(ConfigError, match="^epochs: is 10 but this server trains at most 5"):
        start_run(TrainConfig(train_subset=100), data_dir=tiny_data)
    assert not runs_dir.exists() or not any(runs_dir.iterdir())  # refused before any run folder exists


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MNIST is not in /srv/app/data and could not be downloaded.", "MNIST is not in …/data and could not be downloaded."),
        ("Put the files in /srv/app/data/MNIST/raw/, or set it.", "Put the files in …/raw/, or set it."),
        (
            "[Errno 28] No space left on device: '/srv/runs/x/.model.pt.abc.tmp'",
            "[Errno 28] No space left on device: '…/.model.pt.abc.tmp'",
        ),
        ('File "/usr/lib/python3.11/x.py", line 3', 'File "…/x.py", line 3'),
        ("run: /work/main/runs/20260101-000000-seed", "run: …/20260101-000000-seed"),
        ("(/tmp/a)", "(…/a)"),
        ("MNIST from `/srv/data`: see Home.", "MNIST from `…/data`: see Home."),
        (
            "see https://example.org/mnist/x.gz and runs/relative/path",
            "see https://example.org/mnist/x.gz and runs/relative/path",
        ),
        ("epochs: must be between 1 and 200, got 0.", "epochs: must be between 1 and 200, got 0."),
        ("a/b 1/2 and / alone", "a/b 1/2 and …/ alone"),
    ],
)
def test_redact_paths(text, expected):
    assert redact_paths(text) == expected
    assert redact_paths(expected) == expected  # idempotent


def test_public_message_redacts_only_when_hosted():
    error = RuntimeError("Cannot read /srv/secret/place/model.pt.")
    assert public_message(error, Limits(hosted=False)) == "Cannot read /srv/secret/place/model.pt."
    assert public_message(error, Limits(hosted=True)) == "Cannot read …/model.pt."


def test_cli_train_obeys_the_same_caps(monkeypatch, runs_dir, tiny_data, capsys):
    from mnist_core.cli import main

    monkeypatch.setenv("MNIST_LAB_HOSTED", "1")
    assert main(["train", "--data-dir", str(tiny_data), "--epochs", "2"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: train_subset: is the full training set but this server trains on at most 20,000"
    )
    assert main(["train", "--data-dir", str(tiny_data), "--epochs", "9", "--train-subset", "100"]) == 2
    assert capsys.readouterr().err.startswith("error: epochs: is 9 but this server trains at most 5")
    assert not runs_dir.exists() or not any(runs_dir.iterdir())
