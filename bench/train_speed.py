"""Training speed: the seed-style loop against mnist_core's trainer, side by side in one process.

    python -m bench.train_speed [--data-dir ../shared/datasets] [--device auto|cpu|cuda|mps]
                                [--precision fp32|bf16|auto] [--full]

First this machine's limits: its fp32 and bf16 matrix-multiply rates (GFLOP/s), and
the model's training FLOPs per sample, counted by torch's FlopCounterMode over one
forward and backward pass. Then seconds per epoch for both loops at the seed recipe
(Adam 1e-3, batch 64), each with its achieved GFLOP/s (FLOPs per sample x samples/s)
and the ratio, mnist_core in fp32 and, where `--precision` (default auto) resolves to
bf16, in bf16 as well; then the `fast` preset's wall time to 99.0% test accuracy in
that precision. With
--full it also runs the seed-style loop until it reaches 99.0% (up to 10 epochs) so
the two times-to-99% are measured rather than estimated. Figures, not asserts; the
CPU's native-bf16 flags and the load average are printed beside them.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from mnist_core.config import PRECISIONS, TrainConfig  # noqa: E402
from mnist_core.data import MEAN, STD, load_split  # noqa: E402
from mnist_core.model import DEVICES, MnistCNN, as_input, prepare, resolve_device  # noqa: E402
from mnist_core.precision import NATIVE_BF16_FLAGS, cpu_flags, resolved  # noqa: E402
from mnist_core.train import train  # noqa: E402

TARGET = 0.99


class SeedNet(nn.Module):
    """The seed's model code as written there (ReLU before pooling, default memory layout)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(3136, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def seed_loop(data_dir: str, device: torch.device, max_epochs: int, stop_at: float | None):
    """The seed: torchvision transforms, DataLoader(batch 64, shuffle), Adam 1e-3; yields (epoch, train_s, cumulative_s, test_acc)."""
    torch.manual_seed(0)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    train_set = datasets.MNIST(data_dir, train=True, transform=transform)
    test_set = datasets.MNIST(data_dir, train=False, transform=transform)
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)
    model = SeedNet().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    started = time.perf_counter()
    for epoch in range(1, max_epochs + 1):
        epoch_started = time.perf_counter()
        model.train()
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the epoch's time includes the queued GPU work
        train_s = time.perf_counter() - epoch_started
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test_loader:
                correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
        accuracy = correct / len(test_set)
        yield epoch, train_s, time.perf_counter() - started, accuracy
        if stop_at is not None and accuracy >= stop_at:
            return


def matmul_gflops(dtype: torch.dtype, device: torch.device, n: int = 1024, seconds: float = 1.0) -> float:
    """This machine's rate for an n x n matrix multiply in `dtype`, repeated for about `seconds` after a warm-up."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    _sync(device)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        torch.mm(a, b)
        done += 1
    _sync(device)
    return 2 * n**3 * done / (time.perf_counter() - started) / 1e9


def training_flops_per_sample(device: torch.device) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs of one sample through MnistCNN, counted op by op on a batch of 64."""
    from torch.utils.flop_counter import FlopCounterMode

    model = prepare(MnistCNN(), device)
    x = as_input(torch.zeros(64, 1, 28, 28, dtype=torch.uint8), device)
    y = torch.zeros(64, dtype=torch.long, device=device)
    with FlopCounterMode(display=False) as forward:
        model(x)
    with FlopCounterMode(display=False) as both:
        F.cross_entropy(model(x), y).backward()
    return forward.get_total_flops() / 64, both.get_total_flops() / 64


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3]) if os.path.exists("/proc/loadavg") else "n/a"


def time_to_target(history) -> tuple[float | None, int | None]:
    """Cumulative wall time (train + evaluation) and epoch at which test accuracy first reached TARGET."""
    for epoch, cumulative, accuracy in history:
        if accuracy >= TARGET:
            return cumulative, epoch
    return None, None


def ours(config: TrainConfig, train_split, test_split):
    """mnist_core's trainer; returns [(epoch, train_s, cumulative_s, test_acc)]."""
    rows, started = [], time.perf_counter()
    train(
        config,
        train_split,
        test_split,
        on_epoch=lambda m, _: rows.append((m.epoch, m.epoch_s, time.perf_counter() - started, m.test_acc)),
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DATA_DIR", "../shared/datasets"))
    parser.add_argument("--device", default="auto", choices=DEVICES, help="where both loops train (default: auto)")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="mnist_core's precision beside fp32 (default: auto, the fast preset's)",
    )
    parser.add_argument("--full", action="store_true", help="also run the seed loop to 99.0%% (minutes)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {device.type} ({where}), {os.cpu_count()} CPUs, load average {_load()}")
    flags = cpu_flags()
    native = [flag for flag in NATIVE_BF16_FLAGS if flag in flags]
    print(f"CPU flags: avx2 {'avx2' in flags}, avx512f {'avx512f' in flags}, native bf16: {', '.join(native) or 'none'}")

    fp32_rate, bf16_rate = matmul_gflops(torch.float32, device), matmul_gflops(torch.bfloat16, device)
    forward_flops, train_flops = training_flops_per_sample(device)
    print("\nThis machine's limits:")
    print(f"  fp32 matmul 1024x1024   {fp32_rate:7.1f} GFLOP/s")
    print(f"  bf16 matmul 1024x1024   {bf16_rate:7.1f} GFLOP/s")
    print(
        f"  MnistCNN per sample     {forward_flops / 1e6:7.2f} MFLOP forward, {train_flops / 1e6:.2f} MFLOP forward+backward"
        f" (3x forward would be {3 * forward_flops / 1e6:.2f})"
    )

    train_split, test_split = load_split("train", args.data_dir), load_split("test", args.data_dir)

    seed_rows = list(seed_loop(args.data_dir, device, 10 if args.full else 1, TARGET if args.full else None))
    precision = resolved(TrainConfig(device=device.type, precision=args.precision)).precision
    # fp32 always runs, so a lower precision's gain is read against it in the same run.
    ours_rows = {
        p: ours(TrainConfig.from_preset("seed", epochs=1, device=device.type, precision=p), train_split, test_split)
        for p in dict.fromkeys(("fp32", precision))
    }
    seed_epoch = seed_rows[0][1]
    samples = len(train_split)
    print(f"\nOne epoch at the seed recipe (Adam 1e-3, batch 64), training time only; load average {_load()}:")
    rows = [("seed-style loop", seed_epoch, seed_rows[0][3])]
    rows += [(f"mnist_core {p}", r[0][1], r[0][3]) for p, r in ours_rows.items()]
    for name, seconds, accuracy in rows:
        rate = train_flops * samples / seconds / 1e9
        print(
            f"  {name:16s}  {seconds:7.1f} s   test acc {accuracy:.4f}   {rate:6.1f} GFLOP/s"
            f" ({rate / fp32_rate:.0%} of fp32 matmul, {rate / bf16_rate:.0%} of bf16)"
        )
    for p, r in ours_rows.items():
        print(f"  speed-up {p}     {seed_epoch / r[0][1]:7.2f} x   over the seed-style loop")
    if precision != "fp32":
        print(f"  {precision} over fp32     {ours_rows['fp32'][0][1] / ours_rows[precision][0][1]:7.2f} x")

    fast = ours(TrainConfig.from_preset("fast", device=device.type, precision=precision), train_split, test_split)
    fast_s, fast_epoch = time_to_target([(e, c, a) for e, _, c, a in fast])
    print(f"\nTime to {TARGET:.1%} test accuracy (training + per-epoch evaluation):")
    print(f"  fast preset       {_fmt(fast_s, fast_epoch)}   final acc {fast[-1][3]:.4f}   ({precision})")
    if args.full:
        seed_s, seed_at = time_to_target([(e, c, a) for e, _, c, a in seed_rows])
        print(f"  seed-style loop   {_fmt(seed_s, seed_at)}")
        if seed_s and fast_s:
            print(f"  ratio             {seed_s / fast_s:7.2f} x  (target: at least 15x)")
    else:
        print("  seed-style loop   not run (--full runs it to 99.0%, up to 10 epochs)")
    print(f"load average at the end: {_load()}")


def _fmt(seconds: float | None, epoch: int | None) -> str:
    return f"{seconds:7.1f} s (epoch {epoch})" if seconds is not None else "    not reached"


if __name__ == "__main__":
    main()
