"""Retraining on cleaned labels: the config that records it, the cleaned split, verdicts to indices, the CLI run."""

from __future__ import annotations

import json

import pytest

from mnist_core.audit import AuditConfig
from mnist_core.cleaning import cleaned_split, cleaning_from_verdicts
from mnist_core.cli import build_parser, config_from_args, main
from mnist_core.config import TrainConfig
from mnist_core.data import load_split
from mnist_core.errors import ConfigError, RunError
from mnist_core.runs import Run, RunStore
from mnist_core.verdicts import set_verdict

CLEANED = {"audit": "20261201-120000-audit", "clean": "relabel", "changed_indices": (4, 9), "changed_labels": (7, 1)}


def test_a_cleaned_config_round_trips_through_json_and_flags():
    config = TrainConfig.from_preset("fast", **CLEANED)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    args = build_parser().parse_args(["train", *config.to_args()])
    assert config_from_args(args) == config
    assert TrainConfig().to_args() == TrainConfig.from_dict(TrainConfig().to_dict()).to_args()  # no cleaning, no flags


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"clean": "wash"}, "clean"),
        ({"audit": None}, "audit"),
        ({"changed_indices": ()}, "changed_indices"),
        ({"changed_indices": (4, 4), "changed_labels": (1, 2)}, "changed_indices"),
        ({"changed_labels": (7,)}, "changed_labels"),
        ({"changed_labels": (7, 10)}, "changed_labels"),
        ({"clean": None}, "clean"),
        ({"changed_indices": (-1, 2)}, "changed_indices"),
    ],
)
def test_bad_cleaning_names_the_field(changes, field):
    with pytest.raises(ConfigError) as caught:
        TrainConfig(**{**CLEANED, **changes})
    assert caught.value.field == field


def test_cleaned_split_drops_or_relabels_exactly_the_listed_samples(tiny_data):
    split = load_split("train", tiny_data)
    dropped = cleaned_split(split, TrainConfig(audit="a", clean="drop", changed_indices=(0, 599)))
    assert len(dropped) == 598 and dropped.labels.tolist() == split.labels[1:599].tolist()
    assert dropped.checksum != split.checksum
    relabelled = cleaned_split(split, TrainConfig(**CLEANED))
    assert relabelled.labels[4] == 7 and relabelled.labels[9] == 1
    others = [i for i in range(600) if i not in (4, 9)]
    assert relabelled.labels[others].tolist() == split.labels[others].tolist()
    assert cleaned_split(split, TrainConfig()) is split
    with pytest.raises(ConfigError, match="beyond the 600"):
        cleaned_split(split, TrainConfig(audit="a", clean="drop", changed_indices=(600,)))


def test_only_training_samples_marked_wrong_are_changed(tmp_path):
    audit = RunStore(tmp_path / "runs").create(AuditConfig(TrainConfig.from_preset("fast")), "audit")
    with pytest.raises(RunError, match="marked 'label wrong'"):
        cleaning_from_verdicts(audit, "drop")
    set_verdict(audit, "train", 12, given=3, suggested=5, verdict="wrong")
    set_verdict(audit, "train", 7, given=1, suggested=7, verdict="wrong")
    set_verdict(audit, "train", 8, given=1, suggested=7, verdict="right")
    set_verdict(audit, "test", 2, given=4, suggested=9, verdict="wrong")
    set_verdict(audit, "train", 9, given=0, suggested=6, verdict="unsure")
    assert cleaning_from_verdicts(audit, "relabel") == {
        "audit": audit.id, "clean": "relabel", "changed_indices": (7, 12), "changed_labels": (7, 5),
    }  # fmt: skip
    assert cleaning_from_verdicts(audit, "drop")["changed_labels"] == ()


@pytest.mark.integration  # trains a model (seconds)
def test_a_cleaned_training_run_records_the_audit_and_the_changed_indices(tiny_data, tmp_path):
    out = tmp_path / "cleaned"
    flags = ["--epochs", "1", "--batch-size", "64", "--threads", "1", "--audit", "some-audit", "--clean", "drop"]
    assert main(["train", "--data-dir", str(tiny_data), *flags, "--changed-indices", "3,5,8", "--out", str(out)]) == 0
    run = Run(out)
    recorded = json.loads(run.config_path.read_text())
    assert recorded["kind"] == "train" and recorded["audit"] == "some-audit" and recorded["changed_indices"] == [3, 5, 8]
    assert run.progress()["status"] == "finished" and run.progress()["train_size"] == 597
