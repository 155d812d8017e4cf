"""Training precision: the setting's validation, what `auto` resolves to, and what a bf16 run leaves behind."""

from __future__ import annotations

import json

import pytest
import torch

from mnist_core import precision
from mnist_core.checkpoint import build_meta, load_checkpoint, save_checkpoint
from mnist_core.cli import build_parser, config_from_args, main
from mnist_core.config import TrainConfig
from mnist_core.data import load_split
from mnist_core.errors import ConfigError
from mnist_core.evaluate import predict_logits
from mnist_core.runs import Run
from mnist_core.train import train

AVX2_ONLY = {"fpu", "sse2", "avx", "avx2", "fma", "avx512f"}  # AVX-512 without its bf16 extension is not native bf16
NATIVE = AVX2_ONLY | {"avx512_bf16"}


def _no_probe(*args, **kwargs):
    raise AssertionError("auto must not probe where bf16 is not native")


@pytest.mark.parametrize("value", ["fp16", "FP32", "", None, 16])
def test_unknown_precision_is_refused_naming_the_field(value):
    with pytest.raises(ConfigError) as info:
        TrainConfig(precision=value)
    assert info.value.field == "precision" and "fp32, bf16, auto" in str(info.value)


def test_config_json_without_precision_loads_as_fp32():
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "precision"}
    assert TrainConfig.from_dict(old).precision == "fp32"


@pytest.mark.parametrize("value", ["bf16", "auto", "fp32"])
def test_precision_round_trips_through_the_flags(value):
    config = TrainConfig.from_preset("fast", precision=value)
    assert config_from_args(build_parser().parse_args(["train", *config.to_args()])) == config


def test_cpuinfo_flags_are_read(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 amx_bf16 amx_tile\n\n")
    assert precision.native_bf16(precision.cpu_flags(cpuinfo))
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma\n")
    assert not precision.native_bf16(precision.cpu_flags(cpuinfo))
    assert precision.cpu_flags(tmp_path / "absent") == set()


def test_cpu_model_names_the_first_cpu_and_falls_back_without_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\n\nprocessor\t: 1\nmodel name\t: Other\n")
    assert precision.cpu_model(cpuinfo) == "Some CPU @ 2.0GHz"
    assert precision.cpu_model(tmp_path / "absent")  # the platform's own name, never empty


def test_auto_is_fp32_where_bf16_is_not_native_without_probing(monkeypatch):
    monkeypatch.setattr(precision, "probe_seconds", _no_probe)
    assert precision.resolve_precision("auto", torch.device("cpu"), flags=AVX2_ONLY) == "fp32"
    monkeypatch.setattr(precision, "cpu_flags", lambda: AVX2_ONLY)
    assert precision.resolved(TrainConfig(precision="auto", device="cpu")).precision == "fp32"


@pytest.mark.parametrize(("bf16_s", "fp32_s", "expected"), [(0.005, 0.008, "bf16"), (0.030, 0.008, "fp32")])
def test_auto_on_native_bf16_follows_the_probe(monkeypatch, bf16_s, fp32_s, expected):
    monkeypatch.setattr(precision, "probe_seconds", lambda p, device, batch: bf16_s if p == "bf16" else fp32_s)
    assert precision.resolve_precision("auto", torch.device("cpu"), flags=NATIVE) == expected


def test_auto_is_bf16_on_cuda_and_explicit_choices_stand(monkeypatch):
    monkeypatch.setattr(precision, "probe_seconds", _no_probe)
    assert precision.resolve_precision("auto", torch.device("cuda"), flags=set()) == "bf16"
    assert precision.resolve_precision("bf16", torch.device("cpu"), flags=AVX2_ONLY) == "bf16"
    assert precision.resolve_precision("fp32", torch.device("cpu"), flags=NATIVE) == "fp32"


def test_probe_times_real_steps_and_leaves_the_seeded_draws_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    seconds = precision.probe_seconds("fp32", torch.device("cpu"), 8)
    assert 0 < seconds < float("inf") and torch.equal(torch.rand(3), expected)


def _bf16_run(data, seed=3):
    config = TrainConfig(epochs=1, batch_size=32, train_subset=64, seed=seed, device="cpu", threads=1, precision="bf16")
    return train(config, load_split("train", data), load_split("test", data))


@pytest.mark.integration  # trains a model (seconds)
def test_bf16_training_is_deterministic_and_really_bf16(tiny_data):
    first, second = _bf16_run(tiny_data), _bf16_run(tiny_data)
    for (name, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    fp32 = train(first.config.replace(precision="fp32"), load_split("train", tiny_data), load_split("test", tiny_data))
    assert not torch.equal(fp32.model.conv1.weight, first.model.conv1.weight)  # autocast changed the arithmetic
    assert first.model.conv1.weight.dtype == torch.float32  # the weights themselves stay fp32


@pytest.mark.integration  # trains a model (seconds)
def test_bf16_checkpoint_loads_and_answers_in_fp32(tiny_data, tmp_path):
    result = _bf16_run(tiny_data)
    path = save_checkpoint(tmp_path / "model.pt", result.model, build_meta(config=result.config.to_dict()))
    checkpoint = load_checkpoint(path)
    assert checkpoint.meta["config"]["precision"] == "bf16"
    assert all(p.dtype == torch.float32 for p in checkpoint.model.parameters())
    test = load_split("test", tiny_data)
    logits = predict_logits(checkpoint.model, test.images)
    assert logits.dtype == torch.float32
    assert torch.equal(logits.argmax(1), predict_logits(result.model, test.images).argmax(1))


def test_train_resolves_auto_and_reports_the_resolved_config(tiny_data, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: AVX2_ONLY)
    config = TrainConfig(epochs=1, train_subset=64, device="cpu", threads=1, precision="auto")
    result = train(config, load_split("train", tiny_data), load_split("test", tiny_data))
    assert result.config.precision == "fp32"


def test_cli_run_records_the_resolved_precision(tiny_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(precision, "cpu_flags", lambda: AVX2_ONLY)
    out = tmp_path / "run"
    argv = ["train", "--data-dir", str(tiny_data), "--epochs", "1", "--train-subset", "64", "--threads", "1"]
    assert main([*argv, "--precision", "auto", "--out", str(out)]) == 0
    run = Run(out)
    assert json.loads(run.config_path.read_text())["precision"] == "fp32"
    assert load_checkpoint(run.checkpoint_path).meta["config"]["precision"] == "fp32"
