"""The adversarial nudge: the smallest L-infinity change to a digit that makes the model say a chosen class.

For one epsilon the attack is a targeted FGSM step (every pixel moved by epsilon against
the gradient of the target's loss) followed by a few projected-gradient steps (Madry et al.)
that stay within epsilon of the original and within the ink range [0, 1]. Ten epsilons up to
a bound are tried in one batch; bisection then narrows the gap below the smallest that works.
The answer is the smallest epsilon found that works, to within the bisection's tolerance
(a stronger attack might need less: it is an upper bound on the true smallest epsilon).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnist_core.activations import as_pixels, grid_image, model_input
from mnist_core.probes import probabilities

MAX_EPSILON = 0.5  # in units of full ink: half the pixel range
PGD_STEPS = 5
GRID = 10  # epsilons tried at once in the first batch
BISECTIONS = 4  # then the gap between two grid points (0.05) is halved 4 times: epsilon to within 0.003


@dataclass(frozen=True)
class Nudge:
    """The outcome of "make it a <target>"."""

    target: int
    max_epsilon: float
    epsilon: float | None  # the smallest working epsilon found, None when none up to max_epsilon works
    original: np.ndarray  # (28, 28) ink in [0, 1]
    image: np.ndarray | None  # (28, 28) the nudged digit
    before: np.ndarray  # (10,) probabilities of the original
    after: np.ndarray | None  # (10,) probabilities of the nudged digit

    @property
    def found(self) -> bool:
        """Whether some epsilon up to the bound makes the model say the target."""
        return self.epsilon is not None

    @property
    def perturbation(self) -> np.ndarray | None:
        """The nudged image minus the original (each value within +-epsilon)."""
        return None if self.image is None else self.image - self.original

    def message(self) -> str:
        """One line for people: what it took, or that nothing up to the bound did."""
        if not self.found:
            return f"No epsilon up to {self.max_epsilon:g} makes the model say {self.target}."
        if self.epsilon == 0:
            return f"The model already says {self.target}."
        return (
            f"Changing each pixel by at most {self.epsilon:.3f} ({self.epsilon * 255:.0f} of 255 grey levels) "
            f"makes the model say {self.target} with {self.after[self.target]:.1%}."
        )


def attack(model: nn.Module, pixels: torch.Tensor, target: int, epsilon, steps: int = PGD_STEPS) -> torch.Tensor:
    """Targeted FGSM then `steps` projected-gradient steps within L-inf `epsilon` of ink (N, 1, 28, 28); returns the last images.

    `epsilon` is one number or one per image (N,): a batch tries several at the cost of about one.
    """
    device = next(model.parameters()).device
    epsilon = torch.as_tensor(epsilon, dtype=torch.float32).reshape(-1, 1, 1, 1)
    labels = torch.full((len(pixels),), int(target), dtype=torch.long, device=device)
    low, high = (pixels - epsilon).clamp(min=0.0), (pixels + epsilon).clamp(max=1.0)
    x = pixels.clone()
    with torch.inference_mode(False), torch.enable_grad():
        for step in range(steps + 1):
            x = x.detach().requires_grad_(True)
            # Summed, not averaged: each image's gradient is its own (only its sign is used anyway).
            loss = F.cross_entropy(model(model_input(x).to(device)), labels, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x)
            size = epsilon if step == 0 else epsilon / 4  # the first step is FGSM's
            x = torch.minimum(torch.maximum(x.detach() - size * grad.cpu().sign(), low), high)
    return x.detach()


def nudge(
    model: nn.Module,
    image,
    target: int,
    max_epsilon: float = MAX_EPSILON,
    grid: int = GRID,
    bisections: int = BISECTIONS,
) -> Nudge:
    """Search for the smallest epsilon (up to `max_epsilon`) whose attack makes the model say `target`.

    A first batch tries `grid` evenly spaced epsilons up to the bound; bisection then narrows the gap
    between the largest failing one below the smallest success and that success.
    """
    if not 0 <= int(target) < 10:
        raise ValueError(f"target must be a class 0-9, got {target}")
    target = int(target)
    pixels = as_pixels(image)
    original = pixels[0, 0].numpy()
    was_training = model.training
    model.eval()
    try:
        before = probabilities(model, pixels)[0]
        if int(before.argmax()) == target:
            return Nudge(target, max_epsilon, 0.0, original, original.copy(), before, before)
        epsilons = np.linspace(max_epsilon / grid, max_epsilon, grid, dtype=np.float32)
        tried = attack(model, pixels.expand(grid, 1, 28, 28), target, epsilons)
        probs = probabilities(model, tried)
        hits = np.flatnonzero(probs.argmax(axis=1) == target)
        if len(hits) == 0:
            return Nudge(target, max_epsilon, None, original, None, before, None)
        first = int(hits[0])
        high, best, after = float(epsilons[first]), tried[first : first + 1], probs[first]
        low = float(epsilons[first - 1]) if first > 0 else 0.0
        for _ in range(bisections):
            middle = (low + high) / 2
            candidate = attack(model, pixels, target, middle)
            candidate_probs = probabilities(model, candidate)[0]
            if int(candidate_probs.argmax()) == target:
                high, best, after = middle, candidate, candidate_probs
            else:
                low = middle
    finally:
        model.train(was_training)
    return Nudge(target, max_epsilon, high, original, best[0, 0].numpy(), before, after)


def perturbation_image(perturbation: np.ndarray, epsilon: float, scale: int = 6) -> np.ndarray:
    """The perturbation amplified to full colour at +-epsilon: red adds ink, blue removes it -> RGB uint8."""
    return grid_image(np.asarray(perturbation, dtype=np.float32)[None], columns=1, scale=scale, gap=0, signed=True, peak=epsilon)
