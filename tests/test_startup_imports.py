"""What the command line imports before it needs it: `--help` runs without torch."""

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
