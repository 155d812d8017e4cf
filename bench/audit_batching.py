"""Five fold models trained one after another, or together: training steps per second of each way.

    python -m bench.audit_batching [--models 5] [--batch 64] [--steps 30] [--threads N]

An audit trains K models of the same size. At batch 64 one model may not fill the CPU,
so K models stepped together could be faster: `torch.func.stack_module_state` + `vmap`
(one batched call for K sets of weights), or a grouped model (K models as one with
grouped convolutions). This measures the first against the loop the audit uses now:
forward, backward and an Adam step of K models on K batches of random digits.
It prints the figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, stack_module_state, vmap

from mnist_core.model import MnistCNN, prepare


def sequential(models, batches, labels, steps: int) -> float:
    """Seconds per round (every model one step), the audit's way: one model after another."""
    optimizers = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in models]
    for round_ in range(steps + 3):
        if round_ == 3:
            started = time.perf_counter()
        for model, optimizer, x, y in zip(models, optimizers, batches, labels):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return (time.perf_counter() - started) / steps


def together(models, batches, labels, steps: int) -> float:
    """Seconds per round with one vmapped gradient call over the stacked weights, then one Adam step on them."""
    params, buffers = stack_module_state(models)
    params = {k: v.detach().requires_grad_(False) for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")

    def loss_of(p, b, x, y):
        return F.cross_entropy(functional_call(base, (p, b), (x,)), y)

    gradients = vmap(grad(loss_of))
    tensors = list(params.values())
    optimizer = torch.optim.Adam(tensors, lr=1e-3)
    x, y = torch.stack(batches), torch.stack(labels)
    for round_ in range(steps + 3):
        if round_ == 3:
            started = time.perf_counter()
        grads = gradients(params, buffers, x, y)
        for tensor in tensors:
            tensor.grad = None
        for name, tensor in params.items():
            tensor.grad = grads[name]
        optimizer.step()
    return (time.perf_counter() - started) / steps


def main() -> None:
    """Measure both ways and print steps per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cpu = torch.device("cpu")
    models = [prepare(MnistCNN(), cpu) for _ in range(args.models)]
    batches = [torch.randn(args.batch, 1, 28, 28).contiguous(memory_format=torch.channels_last) for _ in models]
    labels = [torch.randint(0, 10, (args.batch,)) for _ in models]
    print(f"load average before: {' '.join(open('/proc/loadavg').read().split()[:3])}  threads: {torch.get_num_threads()}")
    one_by_one = sequential(models, batches, labels, args.steps)
    print(f"one after another: {one_by_one * 1000:.1f} ms per round of {args.models} steps")
    stacked = together([prepare(MnistCNN(), cpu) for _ in range(args.models)], batches, labels, args.steps)
    print(f"vmap together:     {stacked * 1000:.1f} ms per round of {args.models} steps ({one_by_one / stacked:.2f}x)")
    print(f"load average after:  {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
