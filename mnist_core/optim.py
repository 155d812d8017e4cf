"""The trainer's optimizers and its one-cycle schedule, without `torch.optim`.

`torch.optim` imports `torch._dynamo` on an optimizer's first use (its methods are wrapped to
disable compilation), and that import takes longer than loading MNIST and building the model
together: about 2.5 s and 0.1 GB per process on the project's 2-core machine
(docs/speed.md, Start-up). The trainer compiles nothing, so it steps its own.

The arithmetic is torch's own, in the same order: `Adam` matches `torch.optim.Adam` (default
betas and eps, no weight decay), `NesterovSGD` matches `torch.optim.SGD(momentum=0.9,
nesterov=True)`, and `OneCycle` matches `torch.optim.lr_scheduler.OneCycleLR` with its defaults
(cosine annealing, 30% warm-up, momentum or Adam's beta1 cycled between 0.95 and 0.85).
tests/test_optim.py holds them to torch's results step by step: on a CPU the weights are the same
bit for bit, so runs and the bundled model's recipe train as before. The `_foreach` kernels update
all parameters in a few launches on a GPU; on a CPU they loop over the tensors like torch's
single-tensor path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction; `lr` and `momentum` (beta1) may change between steps."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, (self.momentum, self.beta2), self.eps = lr, betas, eps
        self.steps = 0
        self._exp_avg = [torch.zeros_like(p) for p in self.params]
        self._exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        grads = [p.grad for p in self.params]
        beta1, beta2 = self.momentum, self.beta2
        torch._foreach_lerp_(self._exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(self._exp_avg_sq, beta2)
        torch._foreach_addcmul_(self._exp_avg_sq, grads, grads, 1 - beta2)
        step_size = self.lr / (1 - beta1**self.steps)
        denominators = torch._foreach_sqrt(self._exp_avg_sq)
        torch._foreach_div_(denominators, (1 - beta2**self.steps) ** 0.5)
        torch._foreach_add_(denominators, self.eps)
        torch._foreach_addcdiv_(self.params, self._exp_avg, denominators, -step_size)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


class NesterovSGD:
    """SGD with Nesterov momentum; `lr` and `momentum` may change between steps."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, momentum: float = 0.9):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.momentum = lr, momentum
        self._buffers: list[torch.Tensor] | None = None

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad for p in self.params]
        if self._buffers is None:
            self._buffers = [g.clone() for g in grads]
        else:
            torch._foreach_mul_(self._buffers, self.momentum)
            torch._foreach_add_(self._buffers, grads)
        updates = torch._foreach_add(grads, self._buffers, alpha=self.momentum)
        torch._foreach_add_(self.params, updates, alpha=-self.lr)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


Optimizer = Adam | NesterovSGD


class OneCycle:
    """The one-cycle policy (Smith & Topin, 2017): lr warms up over 30% of the steps, then anneals; momentum moves opposite."""

    WARMUP, DIV, FINAL_DIV = 0.3, 25.0, 1e4
    MAX_MOMENTUM, BASE_MOMENTUM = 0.95, 0.85

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: int):
        if total_steps < 2:
            raise ValueError(f"a one-cycle schedule needs at least 2 steps, not {total_steps}")
        self.optimizer, self.total_steps = optimizer, total_steps
        initial = max_lr / self.DIV
        # Two phases, as torch's: (last step, start lr, end lr, start momentum, end momentum).
        self._phases = (
            (self.WARMUP * total_steps - 1, initial, max_lr, self.MAX_MOMENTUM, self.BASE_MOMENTUM),
            (total_steps - 1, max_lr, initial / self.FINAL_DIV, self.BASE_MOMENTUM, self.MAX_MOMENTUM),
        )
        self.steps = 0
        self._apply()

    def step(self) -> None:
        self.steps += 1
        self._apply()

    def _apply(self) -> None:
        start = 0.0
        for index, (end, lr_from, lr_to, momentum_from, momentum_to) in enumerate(self._phases):
            if self.steps <= end or index == len(self._phases) - 1:
                fraction = (self.steps - start) / (end - start)
                self.optimizer.lr = _cosine(lr_from, lr_to, fraction)
                self.optimizer.momentum = _cosine(momentum_from, momentum_to, fraction)
                return
            start = end


def _cosine(start: float, end: float, fraction: float) -> float:
    """From `start` (fraction 0) to `end` (fraction 1) along half a cosine."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
