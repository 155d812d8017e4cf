"""release_free_memory gives pages that are free but still held by the C heap back to the OS."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from mnist_core.allocator import release_free_memory
from tests.conftest import REPO

# In a fresh interpreter: 300 blocks of 1 MiB from the heap (a 16 MiB free first raises glibc's mmap threshold),
# written to so their pages are resident, then all freed but the last, which pins the heap's top so glibc's
# automatic trimming cannot return them. Prints the RSS in MiB with the blocks freed, then after the call.
FRAGMENTED_HEAP = """
import ctypes, sys
import psutil
from mnist_core.allocator import release_free_memory
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(16 << 20))
blocks = [libc.malloc(1 << 20) for _ in range(300)]
for block in blocks:
    ctypes.memset(block, 1, 1 << 20)
for block in blocks[:-1]:
    libc.free(block)
rss = lambda: psutil.Process().memory_info().rss >> 20
before = rss()
assert release_free_memory()
print(before, rss())
"""


@pytest.mark.integration
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's; elsewhere the call is a no-op")
def test_freed_heap_pages_go_back_to_the_os():
    result = subprocess.run([sys.executable, "-c", FRAGMENTED_HEAP], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    before, after = map(int, result.stdout.split())
    assert before - after > 200, f"RSS {before} MiB with the blocks freed, {after} MiB after release_free_memory()"


def test_release_says_whether_it_could_run():
    assert release_free_memory() is (platform.libc_ver()[0] == "glibc")
