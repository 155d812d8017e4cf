"""Training speed: the seed-style loop against mnist_core's trainer, side by side in one process.

    python -m bench.train_speed [--data-dir ../shared/datasets] [--device auto|cpu|cuda|mps] [--full]

Prints seconds per epoch for both at the seed recipe (Adam 1e-3, batch 64) and the
ratio; then the `fast` preset's wall time to 99.0% test accuracy. With --full it
also runs the seed-style loop until it reaches 99.0% (up to 10 epochs) so the two
times-to-99% are measured rather than estimated. Figures, not asserts.
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

from mnist_core.config import TrainConfig  # noqa: E402
from mnist_core.data import MEAN, STD, load_split  # noqa: E402
from mnist_core.model import DEVICES, resolve_device  # noqa: E402
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
    parser.add_argument("--full", action="store_true", help="also run the seed loop to 99.0%% (minutes)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {device.type} ({where}), {os.cpu_count()} CPUs")

    train_split, test_split = load_split("train", args.data_dir), load_split("test", args.data_dir)

    seed_rows = list(seed_loop(args.data_dir, device, 10 if args.full else 1, TARGET if args.full else None))
    ours_rows = ours(TrainConfig.from_preset("seed", epochs=1, device=device.type), train_split, test_split)
    seed_epoch, our_epoch = seed_rows[0][1], ours_rows[0][1]
    print("\nOne epoch at the seed recipe (Adam 1e-3, batch 64), training time only:")
    print(f"  seed-style loop   {seed_epoch:7.1f} s   test acc {seed_rows[0][3]:.4f}")
    print(f"  mnist_core        {our_epoch:7.1f} s   test acc {ours_rows[0][3]:.4f}")
    print(f"  speed-up          {seed_epoch / our_epoch:7.2f} x")

    fast = ours(TrainConfig.from_preset("fast", device=device.type), train_split, test_split)
    fast_s, fast_epoch = time_to_target([(e, c, a) for e, _, c, a in fast])
    print(f"\nTime to {TARGET:.1%} test accuracy (training + per-epoch evaluation):")
    print(f"  fast preset       {_fmt(fast_s, fast_epoch)}   final acc {fast[-1][3]:.4f}")
    if args.full:
        seed_s, seed_at = time_to_target([(e, c, a) for e, _, c, a in seed_rows])
        print(f"  seed-style loop   {_fmt(seed_s, seed_at)}")
        if seed_s and fast_s:
            print(f"  ratio             {seed_s / fast_s:7.2f} x  (target: at least 6x)")


def _fmt(seconds: float | None, epoch: int | None) -> str:
    return f"{seconds:7.1f} s (epoch {epoch})" if seconds is not None else "    not reached"


if __name__ == "__main__":
    main()
