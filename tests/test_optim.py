"""The trainer's own optimizers and one-cycle schedule follow torch.optim's, step by step (mnist_core/optim.py).

torch.optim is the reference: the same model, seed and batches trained both ways must end with the
same weights (bit for bit on a CPU), and the schedule must give the same learning rate and momentum at every step.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mnist_core.model import MnistCNN
from mnist_core.optim import Adam, NesterovSGD, OneCycle

STEPS = 12


def _batches(n: int = STEPS, size: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(3)
    return [
        (torch.randn(size, 1, 28, 28, generator=generator), torch.randint(0, 10, (size,), generator=generator)) for _ in range(n)
    ]


def _train(make_optimizer, make_schedule=None, lr_of=None) -> tuple[list[torch.Tensor], list[float]]:
    """Train a fresh seeded model on fixed batches; returns its final weights and the lr used at each step."""
    torch.manual_seed(0)
    model = MnistCNN()
    optimizer = make_optimizer(model)
    schedule = make_schedule(optimizer) if make_schedule else None
    lrs = []
    for x, y in _batches():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        lrs.append(lr_of(optimizer))
        optimizer.step()
        if schedule is not None:
            schedule.step()
    return [p.detach().clone() for p in model.parameters()], lrs


def _assert_same_weights(ours: list[torch.Tensor], reference: list[torch.Tensor]) -> None:
    """Bit for bit: on a CPU the same operations in the same order give the same floats."""
    for mine, theirs in zip(ours, reference, strict=True):
        assert torch.equal(mine, theirs)


def test_adam_takes_torch_adams_steps():
    ours, _ = _train(lambda m: Adam(m.parameters(), lr=1e-3), lr_of=lambda o: o.lr)
    reference, _ = _train(lambda m: torch.optim.Adam(m.parameters(), lr=1e-3), lr_of=lambda o: o.param_groups[0]["lr"])
    _assert_same_weights(ours, reference)


def test_nesterov_sgd_takes_torch_sgds_steps():
    ours, _ = _train(lambda m: NesterovSGD(m.parameters(), lr=0.05, momentum=0.9), lr_of=lambda o: o.lr)
    reference, _ = _train(
        lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True), lr_of=lambda o: o.param_groups[0]["lr"]
    )
    _assert_same_weights(ours, reference)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_one_cycle_gives_torchs_learning_rates_momenta_and_weights(optimizer):
    if optimizer == "adam":
        ours_opt, theirs_opt = (lambda m: Adam(m.parameters(), lr=1e-3)), (lambda m: torch.optim.Adam(m.parameters(), lr=1e-3))
        their_momentum = lambda o: o.param_groups[0]["betas"][0]  # noqa: E731
    else:
        ours_opt = lambda m: NesterovSGD(m.parameters(), lr=0.05)  # noqa: E731
        theirs_opt = lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True)  # noqa: E731
        their_momentum = lambda o: o.param_groups[0]["momentum"]  # noqa: E731
    ours, our_schedule = _train(
        ours_opt, lambda o: OneCycle(o, max_lr=3e-3, total_steps=STEPS), lr_of=lambda o: (o.lr, o.momentum)
    )
    reference, their_schedule = _train(
        theirs_opt,
        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=3e-3, total_steps=STEPS),
        lr_of=lambda o: (o.param_groups[0]["lr"], their_momentum(o)),
    )
    flat = lambda pairs: [value for pair in pairs for value in pair]  # noqa: E731
    assert flat(our_schedule) == pytest.approx(flat(their_schedule), rel=1e-12)
    # The schedule really moves: warm-up to the peak, then down to far below the start.
    lrs = [lr for lr, _ in our_schedule]
    assert max(lrs) == pytest.approx(3e-3, rel=0.05) and lrs[-1] < lrs[0] / 10
    _assert_same_weights(ours, reference)


def test_one_cycle_refuses_a_single_step():
    with pytest.raises(ValueError, match="at least 2 steps"):
        OneCycle(Adam([torch.zeros(1, requires_grad=True)], lr=1e-3), max_lr=1e-3, total_steps=1)
