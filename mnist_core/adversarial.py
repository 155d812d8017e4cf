"""The adversarial nudge: the smallest L-infinity change to a digit that makes the model say a chosen class.

For one epsilon the attack is a targeted FGSM step (every pixel moved by epsilon against
the gradient of the target's loss) followed by a few projected-gradient steps (Madry et al.)
that stay within epsilon of the original and within the ink range [0, 1]. Whether some
epsilon works is then found by bisection between 0 and a bound: the answer is the smallest
epsilon found that works, to within the bisection's tolerance.
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
BISECTIONS = 7  # the bound / 2^7: epsilon to within 0.004, about one grey level in 255


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


def attack(model: nn.Module, pixels: torch.Tensor, target: int, epsilon: float, steps: int = PGD_STEPS) -> torch.Tensor:
    """Targeted FGSM then `steps` projected-gradient steps within L-inf `epsilon` of ink (1, 1, 28, 28); returns the last image."""
    device = next(model.parameters()).device
    labels = torch.full((len(pixels),), int(target), dtype=torch.long, device=device)
    low, high = (pixels - epsilon).clamp(min=0.0), (pixels + epsilon).clamp(max=1.0)
    step_size = epsilon / 4
    x = pixels.clone()
    with torch.inference_mode(False), torch.enable_grad():
        for step in range(steps + 1):
            x = x.detach().requires_grad_(True)
            loss = F.cross_entropy(model(model_input(x).to(device)), labels)
            (grad,) = torch.autograd.grad(loss, x)
            size = epsilon if step == 0 else step_size  # the first step is FGSM's
            x = torch.minimum(torch.maximum(x.detach() - size * grad.sign(), low), high)
    return x.detach()


def _says(model: nn.Module, pixels: torch.Tensor, target: int) -> tuple[bool, np.ndarray]:
    probs = probabilities(model, pixels)[0]
    return int(probs.argmax()) == int(target), probs


def nudge(model: nn.Module, image, target: int, max_epsilon: float = MAX_EPSILON, bisections: int = BISECTIONS) -> Nudge:
    """Search for the smallest epsilon (up to `max_epsilon`) whose attack makes the model say `target`."""
    if not 0 <= int(target) < 10:
        raise ValueError(f"target must be a class 0-9, got {target}")
    target = int(target)
    pixels = as_pixels(image)
    was_training = model.training
    model.eval()
    try:
        ok, before = _says(model, pixels, target)
        original = pixels[0, 0].numpy()
        if ok:
            return Nudge(target, max_epsilon, 0.0, original, original.copy(), before, before)
        best = attack(model, pixels, target, max_epsilon)
        ok, after = _says(model, best, target)
        if not ok:
            return Nudge(target, max_epsilon, None, original, None, before, None)
        low, high = 0.0, float(max_epsilon)
        for _ in range(bisections):
            middle = (low + high) / 2
            candidate = attack(model, pixels, target, middle)
            ok, probs = _says(model, candidate, target)
            if ok:
                high, best, after = middle, candidate, probs
            else:
                low = middle
    finally:
        model.train(was_training)
    return Nudge(target, max_epsilon, high, original, best[0, 0].numpy(), before, after)


def perturbation_image(perturbation: np.ndarray, epsilon: float, scale: int = 6) -> np.ndarray:
    """The perturbation amplified to full colour at +-epsilon: red adds ink, blue removes it -> RGB uint8."""
    return grid_image(np.asarray(perturbation, dtype=np.float32)[None], columns=1, scale=scale, gap=0, signed=True, peak=epsilon)
