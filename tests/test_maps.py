"""The 2-D map: t-SNE where openTSNE is installed, PCA otherwise, the files `analyze` writes, and what Explore draws."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest

from mnist_core import maps
from mnist_core.cli import main as cli_main
from mnist_core.embedding import pca_2d
from mnist_core.testing import synthetic_digits, write_idx


def _clusters(n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated blobs in 16 dimensions."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    centres = rng.normal(scale=10, size=(3, 16))
    return (centres[labels] + rng.normal(size=(n, 16))).astype(np.float32), labels


@pytest.mark.slow  # a real t-SNE of 1,000 points: 5-25 s on 2 cores, too long for the quick tier
def test_tsne_map_separates_clusters():
    features, labels = _clusters()
    points, method = maps.compute_map(features)
    assert method == maps.TSNE and points.shape == (1000, 2) and points.dtype == np.float32
    assert maps.knn_accuracy(points, labels) > 0.95


def test_without_opentsne_the_map_falls_back_to_pca(monkeypatch):
    real_import = builtins.__import__

    def no_opentsne(name, *args, **kwargs):
        if name.startswith("openTSNE"):
            raise ImportError("No module named 'openTSNE'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_opentsne)
    features, _ = _clusters()
    points, method = maps.compute_map(features)
    assert method == maps.PCA and np.array_equal(points, pca_2d(features))


def test_too_few_points_for_tsne_get_pca():
    features, _ = _clusters(n=maps.TSNE_MIN_POINTS - 1)
    assert maps.compute_map(features)[1] == maps.PCA


def test_read_map_refuses_missing_wrong_sized_and_broken_files(tmp_path):
    assert maps.read_map(tmp_path, 5) is None
    np.save(tmp_path / maps.MAP_FILE, np.zeros((5, 2), np.float32))
    assert maps.read_map(tmp_path, 5).shape == (5, 2)
    assert maps.read_map(tmp_path, 6) is None
    np.save(tmp_path / maps.MAP_FILE, np.full((5, 2), np.nan, np.float32))
    assert maps.read_map(tmp_path, 5) is None
    (tmp_path / maps.MAP_FILE).write_bytes(b"garbage")
    assert maps.read_map(tmp_path, 5) is None


def test_analyze_command_writes_the_three_arrays_and_prints_json(tmp_path, capsys):
    # 60 test images: below t-SNE's minimum (1,000), so this checks the files and the output, not t-SNE's speed.
    tiny_data = tmp_path / "data"
    write_idx(tiny_data / "MNIST" / "raw", "train", *synthetic_digits(60, seed=1))
    write_idx(tiny_data / "MNIST" / "raw", "test", *synthetic_digits(60, seed=2))
    out = tmp_path / "out"
    assert cli_main(["analyze", "--data-dir", str(tiny_data), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 60 and summary["map_method"] == maps.PCA and summary["split"] == "test"
    assert 0 <= summary["accuracy"] <= 1 and summary["seconds"] > 0
    probabilities = np.load(out / "probabilities.npy")
    assert probabilities.shape == (60, 10) and probabilities.dtype == np.float32
    assert np.load(out / "features.npy").shape == (60, 128) and np.load(out / "features.npy").dtype == np.float32
    assert np.load(out / "map.npy").shape == (60, 2) and np.load(out / "map.npy").dtype == np.float32
    from mnist_core.data import load_split

    labels = load_split("test", tiny_data).labels.numpy()
    assert summary["accuracy"] == pytest.approx((probabilities.argmax(1) == labels).mean())
    assert json.loads((out / "analysis.json").read_text()) == summary


def test_analyze_command_with_a_bad_checkpoint_is_one_line(tmp_path, capsys):
    assert cli_main(["analyze", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def _model_in_folder(folder, seed: int = 0):
    import torch

    from mnist_core.checkpoint import build_meta, load_checkpoint, save_checkpoint
    from mnist_core.model import MnistCNN

    torch.manual_seed(seed)
    path = save_checkpoint(folder / "model.pt", MnistCNN(), build_meta(run_id="stored"))
    return load_checkpoint(path)


def test_explore_reads_a_folders_stored_outputs_instead_of_running_the_model(tiny_data, tmp_path, monkeypatch):
    from mnist_core import analysis
    from mnist_core.data import load_split

    monkeypatch.setenv(analysis.CACHE_DIR_ENV, str(tmp_path / "cache"))
    analysis.clear_memory()
    folder = tmp_path / "run"
    checkpoint = _model_in_folder(folder)
    split = load_split("test", tiny_data)
    computed = analysis.analyze(checkpoint, split, use_disk=False)
    analysis.clear_memory()
    assert not analysis.is_cached(checkpoint, split)
    cli_main(["analyze", "--checkpoint", str(checkpoint.path), "--data-dir", str(tiny_data), "--out", str(folder)])
    assert analysis.is_cached(checkpoint, split)

    def no_pass(*args):
        raise AssertionError("the model ran although its outputs were stored")

    monkeypatch.setattr(analysis, "analyze_images", no_pass)
    stored = analysis.analyze(checkpoint, split)
    for name in ("probabilities", "features", "projection", "losses"):
        assert np.allclose(getattr(stored, name), getattr(computed, name), atol=1e-5), name
    assert np.array_equal(stored.labels, computed.labels) and stored.evaluation.accuracy == computed.evaluation.accuracy


def test_stored_outputs_of_another_checkpoint_or_other_data_are_not_used(tiny_data, tmp_path, monkeypatch):
    from mnist_core import analysis
    from mnist_core.data import load_split

    monkeypatch.setenv(analysis.CACHE_DIR_ENV, str(tmp_path / "cache"))
    analysis.clear_memory()
    folder = tmp_path / "run"
    first = _model_in_folder(folder, seed=0)
    cli_main(["analyze", "--checkpoint", str(first.path), "--data-dir", str(tiny_data), "--out", str(folder)])
    replaced = _model_in_folder(folder, seed=1)  # the folder's checkpoint is now another model
    split = load_split("test", tiny_data)
    assert not analysis.is_cached(replaced, split)
    answered = analysis.analyze(replaced, split).probabilities
    assert np.allclose(answered, analysis.analyze(replaced, split, use_disk=False).probabilities)
    assert not np.allclose(answered, np.load(folder / maps.PROBABILITIES_FILE))
    # The same checkpoint, other images of the same count: the data checksum tells them apart.
    other = tmp_path / "other"
    write_idx(other / "MNIST" / "raw", "train", *synthetic_digits(600, seed=1))
    write_idx(other / "MNIST" / "raw", "test", *synthetic_digits(200, seed=3))
    assert maps.stored_outputs(folder, first.digest, load_split("test", tiny_data)) is not None
    assert maps.stored_outputs(folder, first.digest, load_split("test", other)) is None
    assert maps.stored_outputs(folder, first.digest, load_split("train", tiny_data)) is None
