"""Export a checkpoint's model to ONNX, for running it outside PyTorch (onnxruntime, a browser, a phone).

The export uses torch.onnx's torch.export-based exporter, which needs the optional
packages onnx and onnxscript (`pip install -e ".[dev]"` has them); the app itself never does.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from mnist_core.checkpoint import Checkpoint
from mnist_core.errors import MnistLabError

INPUT_NAME, OUTPUT_NAME = "image", "logits"
OPSET = 18


def export_onnx(checkpoint: Checkpoint, path: str | os.PathLike) -> Path:
    """Write the model as ONNX: input `image` (batch, 1, 28, 28) normalized floats, output `logits` (batch, 10)."""
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise MnistLabError(f"ONNX export needs {' and '.join(missing)}: pip install onnx onnxscript (see requirements-dev.txt).")
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise MnistLabError(f"Cannot write {path}: the folder {path.parent} does not exist.")
    model = checkpoint.model.float().eval()
    example = torch.zeros(2, 1, 28, 28)
    program = torch.onnx.export(
        model,
        (example,),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        opset_version=OPSET,
        dynamo=True,
        verbose=False,
    )
    try:
        program.save(str(path))
    except OSError as exc:
        raise MnistLabError(f"Cannot write {path} ({exc.strerror}).") from exc
    return path
