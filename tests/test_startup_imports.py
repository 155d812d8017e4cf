"""What the command line imports before it needs it: `--help` runs without torch, training without torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.integration  # a fresh interpreter, to see what the parser imports
def test_train_help_does_not_import_torch():
    code = (
        "import sys, contextlib, io\n"
        "from mnist_core.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
        "    main(['train', '--help'])\n"
        "assert '--precision' in out.getvalue()\n"
        "print(sorted(name for name in ('torch', 'torchvision', 'pandas') if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.integration  # a fresh interpreter that trains, to see what training imports
def test_training_imports_neither_torch_dynamo_nor_torchvision(tiny_data):
    """torch.optim's optimizers would import torch._dynamo (seconds, per trainer process) and torchvision's loader is not needed
    for verified IDX files: a run's start pays for neither (mnist_core/optim.py, mnist_core/idx.py)."""
    code = (
        "import sys\n"
        "from mnist_core.cli import main\n"
        f"main(['train', '--data-dir', {str(tiny_data)!r}, '--out', 'run', '--epochs', '1', '--preset', 'fast'])\n"
        "print(sorted(name for name in ('torch._dynamo', 'torchvision') if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tiny_data)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
