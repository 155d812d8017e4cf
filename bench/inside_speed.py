"""Server time of the "Inside the model" panel: a what-if interaction, the activations panel, an adversarial search.

    python -m bench.inside_speed [--repeats 30] [--threads 1] [--checkpoint PATH]

Each figure is the library work one rerun of the panel does, on drawings of all ten digits:
- what-if: apply the slider settings (rotate, scale, shift, stroke, noise, erase), predict, saliency;
- activations: every layer's maps plus the grid, strip and enlarged images the Layers view shows;
- adversarial: one "Make it a ..." search (FGSM + PGD with bisection on epsilon), to the next digit.
Targets on 2 CPU cores: what-if <= 100 ms, activations <= 150 ms, adversarial <= 1 s.
The app's server runs torch with one thread per call (streamlit_app.py), so the default here is 1.
Figures, not asserts: print them beside the load average (/proc/loadavg).
"""

from __future__ import annotations

import argparse
import os

from bench.predict_latency import summary, timings_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1, as the app's server)")
    parser.add_argument("--checkpoint", help="checkpoint to time (default: the bundled model)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from mnist_core import activations as layers
    from mnist_core import probes
    from mnist_core.adversarial import nudge
    from mnist_core.checkpoint import load_checkpoint
    from mnist_core.preprocess import preprocess
    from mnist_core.pretrained import load_pretrained
    from mnist_core.saliency import saliency, saliency_overlay
    from mnist_core.testing.drawing import canvas_rgba

    checkpoint = load_checkpoint(args.checkpoint) if args.checkpoint else load_pretrained()
    model = checkpoint.model
    digits = [preprocess(canvas_rgba(d)).pixels for d in range(10)]
    settings = probes.Transform(rotation=20, scale=0.9, shift_x=2, shift_y=-1, stroke=0.5, noise=0.1, erase=(10, 10, 6, 6))

    def what_if(pixels):
        changed = probes.transformed(pixels, settings)
        answer = layers.activations(model, changed).probabilities
        predicted = int(answer.argmax())
        attribution = saliency(model, layers.model_input(layers.as_pixels(changed)), predicted)
        saliency_overlay((changed * 255).astype("uint8"), attribution, scale=6)

    def activations_panel(pixels):
        acts = layers.activations(model, pixels)
        layers.grid_image(acts.conv1, columns=8, scale=2)
        layers.grid_image(acts.conv2, columns=8, scale=2)
        layers.strip_image(acts.fc1, columns=32, scale=14)
        layers.strip_image(acts.logits, columns=10, scale=28, signed=True)
        layers.enlarged(pixels, 196)
        layers.enlarged(acts.conv1[0], 196)
        layers.enlarged(layers.conv1_filters(model)[0], 196, signed=True)
        layers.grid_image(layers.conv1_filters(model), columns=16, scale=14, gap=3, signed=True)

    def sweep(pixels):
        probes.sweep(model, pixels, "rotation")

    def occlusion(pixels):
        probes.occlusion(model, pixels)

    def adversarial(pixels):
        target = (int(layers.activations(model, pixels).probabilities.argmax()) + 1) % 10
        nudge(model, pixels, target)

    print(f"threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print(f"load average before: {open('/proc/loadavg').read().strip()}")
    for name, function, repeats in (
        ("what-if (transform + predict + saliency)", what_if, args.repeats),
        ("activations panel (maps + images)", activations_panel, args.repeats),
        ("sweep (49 settings, one batch)", sweep, args.repeats),
        ("occlusion (144 patches, one batch)", occlusion, args.repeats),
        ("adversarial search", adversarial, max(10, args.repeats // 3)),
    ):
        print(f"{name:<42} {summary(timings_ms(function, digits, repeats))}", flush=True)
    print(f"load average after:  {open('/proc/loadavg').read().strip()}")


if __name__ == "__main__":
    main()
