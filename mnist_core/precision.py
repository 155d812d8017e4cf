"""Training precision: fp32, bf16 autocast, or `auto`, which measures before it chooses.

bf16 autocast is 1.6x faster per batch on a CPU with native bf16 (avx512_bf16 or
AMX) and 4-10x slower on one without (AVX2 only; docs/speed.md). So
`auto` takes bf16 on a CPU only where the flags say it is native and a short probe
of a few batches shows it faster; on CUDA it takes bf16. The weights stay fp32
either way (autocast only lowers the matrix multiplies), so a checkpoint from a
bf16 run loads and answers like any other. A run records the resolved value,
never `auto`, so the same config repeats the same arithmetic.
"""

from __future__ import annotations

import contextlib
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from mnist_core.config import TrainConfig
from mnist_core.model import MnistCNN, as_input, prepare, resolve_device
from mnist_core.optim import Adam

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
PROBE_BATCHES = 4
PROBE_WARMUP = 2


def _cpuinfo(keys: tuple[str, ...], cpuinfo: Path) -> str | None:
    """The first CPU's value for one of `keys` in /proc/cpuinfo, or None (no such file, as on macOS or Windows)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys:
            return value.strip()
    return None


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    return set((_cpuinfo(("flags", "Features"), cpuinfo) or "").split())


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name, which every speed figure is read beside."""
    return _cpuinfo(("model name",), cpuinfo) or platform.processor() or platform.machine() or "unknown CPU"


def native_bf16(flags: set[str]) -> bool:
    """Whether these CPU flags include a native bf16 matrix instruction set."""
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def autocast(precision: str, device: torch.device):
    """The context a training step runs in: bf16 autocast for "bf16", nothing for "fp32"."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def probe_seconds(precision: str, device: torch.device, batch_size: int) -> float:
    """The fastest of a few training steps of a throwaway model on random pixels, in seconds."""
    with torch.random.fork_rng(devices=[]):  # the run's own seeded draws stay as they are
        model = prepare(MnistCNN(), device)
        optimizer = Adam(model.parameters(), lr=1e-3)
        x = torch.randint(0, 256, (batch_size, 1, 28, 28), dtype=torch.uint8, device=device)
        y = torch.randint(0, 10, (batch_size,), device=device)
        best = float("inf")
        for step in range(PROBE_WARMUP + PROBE_BATCHES):
            started = time.perf_counter()
            with autocast(precision, device):
                loss = F.cross_entropy(model(as_input(x, device)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.detach().item()  # waits for the device, so the step's time is all in
            if step >= PROBE_WARMUP:
                best = min(best, time.perf_counter() - started)
    return best


def resolve_precision(precision: str, device: torch.device, batch_size: int = 64, flags: set[str] | None = None) -> str:
    """ "fp32" or "bf16": `precision` itself, or what `auto` picks on this device (see the module docstring)."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16"
    if device.type != "cpu" or not native_bf16(cpu_flags() if flags is None else flags):
        return "fp32"
    bf16_s = probe_seconds("bf16", device, batch_size)
    return "bf16" if bf16_s < probe_seconds("fp32", device, batch_size) else "fp32"


def resolved(config: TrainConfig, threads: int | None = None) -> TrainConfig:
    """`config` with its precision resolved for this machine, probed on `threads` CPU threads (what the run records)."""
    if config.precision != "auto":
        return config
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return config.replace(precision=resolve_precision("auto", resolve_device(config.device), config.batch_size))
    finally:
        torch.set_num_threads(previous)
