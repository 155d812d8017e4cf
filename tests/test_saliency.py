"""Saliency, embeddings, projection and nearest neighbours."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnist_core import embedding, evaluate, saliency
from mnist_core.data import normalize
from mnist_core.model import MnistCNN, prepare


@pytest.fixture
def model() -> MnistCNN:
    torch.manual_seed(0)
    return prepare(MnistCNN().eval(), torch.device("cpu"))


def _digit(seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[6:22, 12:16] = 255
    pixels[rng.integers(0, 28, 30), rng.integers(0, 28, 30)] = 120
    return normalize(torch.from_numpy(pixels)).view(1, 1, 28, 28)


def test_saliency_shape_and_dtype(model):
    result = saliency.saliency(model, _digit(), target=3)
    assert result.shape == (28, 28)
    assert result.dtype == np.float32
    assert np.isfinite(result).all()
    assert np.abs(result).sum() > 0


def test_saliency_of_black_image_is_zero(model):
    black = normalize(torch.zeros(1, 1, 28, 28, dtype=torch.uint8))
    assert np.array_equal(saliency.saliency(model, black, target=7), np.zeros((28, 28), dtype=np.float32))


def test_saliency_is_zero_where_there_is_no_ink(model):
    image = _digit()
    result = saliency.saliency(model, image, target=1)
    blank = (image.squeeze() <= saliency.BLACK + 1e-6).numpy()
    assert blank.any()
    assert np.all(result[blank] == 0)


def test_saliency_completeness(model):
    """Integrated gradients add up to the logit difference between the image and black."""
    image = _digit(1)
    target = 4
    result = saliency.saliency(model, image, target=target, steps=256)
    with torch.no_grad():
        black = torch.full_like(image, saliency.BLACK)
        delta = (model(image) - model(black))[0, target].item()
    assert result.sum() == pytest.approx(delta, rel=0.05, abs=1e-3)


def test_saliency_works_inside_inference_mode_and_keeps_mode(model):
    model.train()
    with torch.inference_mode():
        image = _digit()
        result = saliency.saliency(model, image, target=0)
    assert result.shape == (28, 28)
    assert model.training


def test_saliency_accepts_chw_and_rejects_bad_input(model):
    assert saliency.saliency(model, _digit()[0], target=2).shape == (28, 28)
    with pytest.raises(ValueError):
        saliency.saliency(model, torch.zeros(2, 1, 28, 28), target=2)
    with pytest.raises(ValueError):
        saliency.saliency(model, _digit(), target=10)


def test_embed_matches_forward(model):
    images = torch.stack([_digit(s)[0] for s in range(7)])
    features, logits = evaluate.embed(model, images, batch_size=3)
    assert features.shape == (7, 128) and logits.shape == (7, 10)
    with torch.no_grad():
        expected = model(images).numpy()
    assert np.allclose(logits, expected, atol=1e-5)
    empty_features, empty_logits = evaluate.embed(model, images[:0])
    assert empty_features.shape == (0, 128) and empty_logits.shape == (0, 10)


def test_pca_finds_the_direction_of_largest_spread():
    rng = np.random.default_rng(0)
    t = rng.normal(size=500)
    s = rng.normal(size=500)
    direction_1 = np.array([3.0, 4.0, 0.0]) / 5
    direction_2 = np.array([0.0, 0.0, 1.0])
    features = 10 * t[:, None] * direction_1 + 2 * s[:, None] * direction_2 + 7.0
    projection = embedding.pca_2d(features.astype(np.float32))
    assert projection.shape == (500, 2) and projection.dtype == np.float32
    assert abs(np.corrcoef(projection[:, 0], t)[0, 1]) > 0.999
    assert abs(np.corrcoef(projection[:, 1], s)[0, 1]) > 0.999
    assert np.allclose(projection.mean(axis=0), 0, atol=1e-4)
    # Deterministic signs: the same points in another order land in the same places.
    order = rng.permutation(500)
    assert np.allclose(embedding.pca_2d(features[order].astype(np.float32)), projection[order], atol=1e-3)
    assert embedding.pca_2d(np.empty((0, 128), np.float32)).shape == (0, 2)


def test_nearest_neighbours_hand_computed():
    bank = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0], [1.0, 0.0]])
    query = np.array([0.9, 0.1])
    assert embedding.nearest(query, bank, k=3).tolist() == [1, 4, 0]  # 1 and 4 tie: index order
    assert embedding.nearest(query, bank, k=2, candidates=np.array([True, False, True, True, False])).tolist() == [0, 2]
    assert embedding.nearest(query, bank, k=10, candidates=np.array([3, 2])).tolist() == [2, 3]
    assert embedding.nearest(query, bank, k=3, candidates=np.zeros(5, bool)).tolist() == []


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.trained import make_data, train_checkpoint

    folder = tmp_path_factory.mktemp("trained")
    data_dir = make_data(folder / "data")
    return data_dir, train_checkpoint(data_dir, folder / "model.pt")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    from mnist_core import analysis

    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(tmp_path / "cache"))
    analysis.clear_memory()
    yield tmp_path / "cache"
    analysis.clear_memory()


@pytest.mark.integration  # trains a model (seconds)
def test_analysis_matches_engine_evaluation(trained, cache):
    from mnist_core import analysis
    from mnist_core.checkpoint import load_checkpoint
    from mnist_core.data import load_split
    from mnist_core.evaluate import evaluate

    data_dir, path = trained
    checkpoint, split = load_checkpoint(path), load_split("test", data_dir)
    result = analysis.analyze(checkpoint, split)
    reference = evaluate(checkpoint.model, split.images, split.labels)
    assert len(result) == 200 and result.features.shape == (200, 128) and result.projection.shape == (200, 2)
    assert np.allclose(result.probabilities, reference.probabilities, atol=1e-5)
    assert result.evaluation.accuracy == reference.accuracy > 0.9
    assert result.evaluation.loss == pytest.approx(reference.loss, rel=1e-4)
    assert np.array_equal(result.labels, split.labels.numpy())
    assert np.allclose(result.confidence, result.probabilities.max(axis=1))


@pytest.mark.integration  # trains a model (seconds)
def test_analysis_is_computed_once_then_read_from_memory_and_disk(trained, cache, monkeypatch):
    from mnist_core import analysis
    from mnist_core.checkpoint import load_checkpoint
    from mnist_core.data import load_split

    data_dir, path = trained
    checkpoint, split = load_checkpoint(path), load_split("test", data_dir)
    calls = []
    real = analysis.analyze_images
    monkeypatch.setattr(analysis, "analyze_images", lambda *a: calls.append(1) or real(*a))
    assert not analysis.is_cached(checkpoint, split)
    first = analysis.analyze(checkpoint, split)
    assert analysis.analyze(checkpoint, split) is first and len(calls) == 1
    files = list((cache / "analysis").glob("*.npz"))
    assert len(files) == 1 and checkpoint.digest[:24] in files[0].name
    assert not list((cache / "analysis").glob("*.tmp"))

    analysis.clear_memory()  # a restarted server: the disk answers, the model does not run
    assert analysis.is_cached(checkpoint, split)
    again = analysis.analyze(checkpoint, split)
    assert len(calls) == 1 and np.array_equal(again.features, first.features)

    analysis.clear_memory()  # a corrupt cache file is recomputed, not trusted
    files[0].write_bytes(b"garbage")
    assert np.array_equal(analysis.analyze(checkpoint, split).probabilities, first.probabilities)
    assert len(calls) == 2

    other = load_split("train", data_dir)  # another split is another entry
    assert len(analysis.analyze(checkpoint, other)) == 600 and len(calls) == 3


@pytest.mark.integration  # trains a model (seconds)
def test_analysis_without_writable_cache_still_works(trained, tmp_path, monkeypatch):
    from mnist_core import analysis
    from mnist_core.checkpoint import load_checkpoint
    from mnist_core.data import load_split

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("MNIST_LAB_CACHE_DIR", str(blocker))
    analysis.clear_memory()
    data_dir, path = trained
    assert len(analysis.analyze(load_checkpoint(path), load_split("test", data_dir))) == 200
    analysis.clear_memory()


def test_disk_cache_keeps_only_the_newest_entries(tmp_path):
    import os

    from mnist_core import analysis

    folder = tmp_path / "analysis"
    folder.mkdir()
    for i in range(5):
        path = folder / f"v1-model{i}-test-data.npz"
        path.write_bytes(b"x")
        os.utime(path, ns=(i * 10**9, i * 10**9))
    (folder / "unrelated.txt").write_text("not ours")
    analysis._prune(folder, keep=2)
    assert sorted(p.name for p in folder.iterdir()) == ["unrelated.txt", "v1-model3-test-data.npz", "v1-model4-test-data.npz"]
