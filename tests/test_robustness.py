"""The robustness report: corruptions on tensors, the cached report, its CLI and its chart."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mnist_core import robustness
from mnist_core.charts import robustness_figure
from mnist_core.checkpoint import build_meta, load_checkpoint, save_checkpoint
from mnist_core.cli import main
from mnist_core.data import load_split
from mnist_core.model import MnistCNN
from mnist_core.testing.drawing import centre_of_mass


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(robustness, "_memory", {})
    return tmp_path / "cache"


@pytest.fixture
def few_severities(monkeypatch):
    """Two corruptions, one severity each: for tests about caching and printing, not about the corruptions."""
    monkeypatch.setattr(robustness, "SEVERITIES", {"rotation": (15.0,), "noise": (0.2,)})


@pytest.fixture
def checkpoint_path(tmp_path):
    torch.manual_seed(1)
    return save_checkpoint(tmp_path / "model.pt", MnistCNN(), build_meta())


def _blob(row: int = 14, col: int = 14, radius: int = 3) -> torch.Tensor:
    rows, cols = np.indices((28, 28))
    return torch.from_numpy((((rows - row) ** 2 + (cols - col) ** 2) <= radius**2).astype(np.float32))


def test_every_corruption_has_three_or_more_severities():
    assert set(robustness.SEVERITIES) == {"rotation", "shift", "scale", "noise", "blur", "thickness", "occlusion"}
    assert all(len(levels) >= 3 for levels in robustness.SEVERITIES.values())
    assert set(robustness.UNITS) == set(robustness.SEVERITIES)


def test_shift_moves_each_image_by_the_severity_in_a_fixed_cycle_of_directions():
    ink = _blob().expand(4, 1, 28, 28)
    shifted = robustness.corrupt(ink, "shift", 3.0)
    moves = [np.subtract(centre_of_mass(shifted[k, 0].numpy()), (14, 14)) for k in range(4)]
    np.testing.assert_allclose(moves, [(0, 3), (3, 0), (0, -3), (-3, 0)], atol=1e-4)  # right, down, left, up (row, col)
    # The direction follows the index in the split, not the position in a chunk.
    np.testing.assert_allclose(robustness.corrupt(ink[:1], "shift", 3.0, first=1).numpy(), shifted[1:2].numpy())


def test_corruptions_damage_the_digit_and_stay_in_the_ink_range():
    ink = (_blob(radius=6) - _blob(radius=3)).expand(2, 1, 28, 28)
    for kind, levels in robustness.SEVERITIES.items():
        out = robustness.corrupt(ink, kind, levels[-1])
        assert out.shape == ink.shape, kind
        assert out.min() >= 0 and out.max() <= 1, kind
        assert not torch.equal(out, ink), kind
    with pytest.raises(ValueError, match="unknown corruption"):
        robustness.corrupt(ink, "melt", 1.0)


def test_cli_json_has_the_documented_shape_and_clean_equals_evaluate(tiny_data, checkpoint_path, cache, capsys):
    assert main(["evaluate", "--checkpoint", str(checkpoint_path), "--data-dir", str(tiny_data)]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert main(["robustness", "--checkpoint", str(checkpoint_path), "--data-dir", str(tiny_data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"clean", "corruptions"}
    assert report["clean"] == evaluated["accuracy"]
    assert set(report["corruptions"]) == set(robustness.SEVERITIES)
    for kind, rows in report["corruptions"].items():
        assert [row["severity"] for row in rows] == list(robustness.SEVERITIES[kind])
        assert all(set(row) == {"severity", "accuracy"} and 0 <= row["accuracy"] <= 1 for row in rows)


def test_cli_table_and_a_missing_checkpoint(tiny_data, checkpoint_path, cache, few_severities, capsys, tmp_path):
    assert main(["robustness", "--checkpoint", str(checkpoint_path), "--data-dir", str(tiny_data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("clean ") and len(lines) == 1 + len(robustness.SEVERITIES)
    assert lines[1].startswith("rotation ") and "15: " in lines[1]
    assert main(["robustness", "--checkpoint", str(tmp_path / "nope.pt"), "--data-dir", str(tiny_data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


def test_the_report_is_cached_per_checkpoint_on_disk(tiny_data, checkpoint_path, cache, few_severities, monkeypatch):
    checkpoint, split = load_checkpoint(checkpoint_path), load_split("test", tiny_data)
    assert robustness.cached_report(checkpoint, split) is None
    first = robustness.robustness_report(checkpoint, split)
    assert robustness.cache_path(checkpoint.digest, split).is_file()

    def no_recompute(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(robustness, "compute_report", no_recompute)
    monkeypatch.setattr(robustness, "_memory", {})  # a restarted server: only the disk remembers
    assert robustness.robustness_report(checkpoint, split) == first
    torch.manual_seed(2)
    other = load_checkpoint(save_checkpoint(checkpoint_path.parent / "other.pt", MnistCNN(), build_meta()))
    assert robustness.cached_report(other, split) is None  # another model's report is its own


def test_weakest_lists_the_worst_corruptions_first():
    report = {"clean": 0.99, "corruptions": {"a": [{"severity": 1, "accuracy": 0.9}, {"severity": 2, "accuracy": 0.5}],
                                             "b": [{"severity": 1, "accuracy": 0.7}], "c": [{"severity": 3, "accuracy": 0.95}]}}  # fmt: skip
    assert robustness.weakest(report, 2) == [("a", 2.0, 0.5), ("b", 1.0, 0.7)]


def test_robustness_figure_has_a_bar_per_severity_and_the_clean_line():
    report = {"clean": 0.98, "corruptions": {"rotation": [{"severity": 15.0, "accuracy": 0.9}, {"severity": 30.0, "accuracy": 0.6}],
                                             "noise": [{"severity": 0.1, "accuracy": 0.4}]}}  # fmt: skip
    figure = robustness_figure(report, title="bundled")
    (bars,) = figure.data
    assert [list(level) for level in bars.x] == [["rotation", "rotation", "noise"], ["15°", "30°", "sd 0.1"]]
    assert list(bars.y) == [0.9, 0.6, 0.4]
    assert figure.layout.shapes[0].y0 == 0.98 and list(figure.layout.yaxis.range) == [0, 1.1]


def test_every_severity_has_its_own_axis_label():
    # Plotly's two-level axis merges equal labels across kinds and then misorders the bars.
    report = {"clean": 0.99, "corruptions": {k: [{"severity": s, "accuracy": 0.5} for s in v] for k, v in robustness.SEVERITIES.items()}}  # fmt: skip
    labels = list(robustness_figure(report).data[0].x[1])
    assert len(labels) == len(set(labels)) == sum(map(len, robustness.SEVERITIES.values()))
