"""The C library's allocator, set for XLA on a CPU (glibc on Linux; elsewhere nothing is changed).

Each run of a compiled XLA:CPU program allocates its temporary buffers as one block, tens of MB for a training step,
and frees it at the end. glibc serves a block that large with a fresh mmap and returns it to the system when freed,
so every step pays page faults for the memory it touches. A generative transfer's step, whose vocabulary projection
makes it a run of short programs over large arrays, loses much of its time there (bench/allocator.py times it both
ways in one run); the SigLIP training step does not, so only the transfer package sets it. Here blocks of any size
come from the heap, which keeps what is freed (never trimmed, grown 256 MiB at a time), so a step reuses the pages of
the one before. The cost: the process holds the most memory it has ever used until it ends. Numbers do not change,
only where memory comes from (bench/allocator.py checks every step's loss both ways).

`import vlscale.transfer` applies it once a process; the environment variable VLSCALE_SYSTEM_MALLOC=1 leaves the
allocator as it is.
"""
from __future__ import annotations

import ctypes
import os
import sys

OPT_OUT = "VLSCALE_SYSTEM_MALLOC"
# mallopt(3) options and their values: no allocation is mmapped, the heap is never trimmed, and it grows by 256 MiB
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = {M_MMAP_THRESHOLD: 2**31 - 1, M_TRIM_THRESHOLD: 2**31 - 1, M_TOP_PAD: 256 * 2**20}

_state: dict = {}


def keep_freed_memory() -> bool:
    """Set glibc's allocator as the module docstring says, once per process. Returns whether it is set (False on a
    system without glibc's mallopt, or with VLSCALE_SYSTEM_MALLOC=1)."""
    if "set" not in _state:
        _state["set"] = _set()
    return _state["set"]


def _set() -> bool:
    if os.environ.get(OPT_OUT) == "1" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(option, value) == 1 for option, value in SETTINGS.items())
